"""Worker processes on one machine (`LocalPool`, no Ray): the same run as in-process evaluation, where the time
went per candidate, and clear errors when a worker can not start, fails or dies."""

from __future__ import annotations

import os
import signal
import time
from functools import partial
from pathlib import Path

import pytest

from rp_eval.evolve.genome import Genome
from rp_eval.evolve.pool import InProcess, Job, LocalPool, PoolError, PoolSettings, make_evaluator
from rp_eval.evolve.search import SearchSettings, evolve, role_play_fitness
from rp_eval.store import evolve as db
from rp_eval.store import get_store

FAST = dict(population=4, budget=8, dev_limit=2, max_new_tokens=6, test_limit=2, sigma0=0.3, seed=5)


def _genome(tiny_family) -> Genome:
    # DARE-TIES in two layer groups: a seeded random mask that each worker must draw the same way
    return Genome(
        name="family", models=[str(tiny_family["a"]), str(tiny_family["b"])], base_model=str(tiny_family["base"]),
        method="dare_ties", layer_granularity=2, dtype="float32",
    )  # fmt: skip


def _stored(run: str) -> list:
    return db.candidates(get_store(), db.get_run(get_store(), run).id)


def _fitness(settings: SearchSettings):
    return partial(role_play_fitness, max_new_tokens=settings.max_new_tokens)


def test_two_worker_processes_give_the_in_process_run(tiny_family, workspace):
    genome, settings = _genome(tiny_family), SearchSettings(**FAST)
    local = list(evolve(genome, settings, "in-process"))
    pool = LocalPool(genome, _fitness(settings), workers=2)
    try:
        pooled = list(evolve(genome, settings, "pooled", evaluator=pool))
        assert len(pool.processes) == 2 and all(p.is_alive() for p in pool.processes)  # the caller's to close
        assert all(b > 0 for b in pool.busy)  # both workers took candidates
    finally:
        pool.close()
    assert not pool.processes

    assert local[-1].done and pooled[-1].done and pooled[-1].evaluated == local[-1].evaluated == 8
    a, b = _stored("in-process"), _stored("pooled")
    assert [(c.generation, c.index) for c in a] == [(c.generation, c.index) for c in b]
    assert [c.genotype for c in a] == [c.genotype for c in b] and len(a[0].genotype) == 8
    assert [c.fitness for c in a] == [c.fitness for c in b]
    assert [c.recipe for c in a] == [c.recipe for c in b]
    assert [c.test_fitness for c in a] == [c.test_fitness for c in b]
    assert sum(c.test_fitness is not None for c in b) == 1
    assert len({c.fitness for c in a}) > 1  # candidates differ, so equal lists say something
    assert pooled[-1].history == local[-1].history


def test_outcomes_say_where_the_time_went_and_come_back_in_order(tiny_family, workspace):
    genome, settings = _genome(tiny_family), SearchSettings(**FAST)
    pool = LocalPool(genome, _fitness(settings), workers=2)
    try:
        x0 = genome.x0(pool.num_layers)
        xs = [[float(v) + 0.05 * i * (-1) ** k for k, v in enumerate(x0)] for i in range(5)]
        jobs = [Job(x, seed=i, split="dev", limit=2, data_seed=0) for i, x in enumerate(xs)]
        pooled = list(pool.map(jobs))
        # a second map right after an early stop gets its own outcomes, not the stopped one's leftovers
        first = pool.map(jobs)
        next(first)
        first.close()
        again = list(pool.map(jobs[:2]))
    finally:
        pool.close()
    alone = list(InProcess(genome, _fitness(settings)).map(jobs))
    assert [o.fitness for o in pooled] == [o.fitness for o in alone]
    assert [o.fitness for o in again] == [o.fitness for o in alone[:2]]
    assert {o.worker for o in pooled} == {0, 1}
    for o in pooled:
        assert {"generation", "metrics", "transfer", "queued"} <= set(o.stages), o.stages
        assert o.stages["generation"] > 0 and o.stages["generation"] + o.stages["metrics"] <= o.eval_seconds + 1e-6
        assert 0 <= o.stages["transfer"] < 5
    assert max(o.stages["queued"] for o in pooled) > 0  # five jobs on two workers: some waited for a free one


def test_a_worker_that_can_not_load_the_sources_is_reported(tiny_family, workspace, tmp_path):
    # the configs check passes in the driver; the weights are missing, which only the worker finds out
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_family["b"].iterdir():
        if not f.name.endswith(".safetensors"):
            (broken / f.name).write_bytes(f.read_bytes())
    genome = Genome(models=[str(tiny_family["a"]), str(broken)], base_model=str(tiny_family["base"]),
                    method="ties", dtype="float32")  # fmt: skip
    with pytest.raises(PoolError, match="worker process 0 could not load the sources: .*"):
        LocalPool(genome, _fitness(SearchSettings(**FAST)), workers=1)


def test_a_fitness_that_can_not_be_pickled_is_refused_before_any_worker_starts(tiny_family, workspace):
    with pytest.raises(PoolError, match="can not be sent to worker processes"):
        LocalPool(_genome(tiny_family), lambda r, split, limit, seed: (0.5, {}), workers=1)


def test_a_killed_worker_stops_the_run_with_a_message_and_the_run_resumes(tiny_family, workspace):
    genome, settings = _genome(tiny_family), SearchSettings(**FAST)
    pool = LocalPool(genome, _fitness(settings), workers=2)
    try:
        events = evolve(genome, settings, "killed", evaluator=pool)
        for event in events:
            if "candidate" in event.message:
                os.kill(pool.processes[1].pid, signal.SIGKILL)
                break
        with pytest.raises(PoolError, match=r"worker process 1 ended \(exit code -9.*can be resumed"):
            list(events)
    finally:
        pool.close()
    assert db.get_run(get_store(), "killed").status == "failed"
    done = list(evolve(None, settings, "killed", resume=True))  # in this process now
    assert done[-1].done and done[-1].evaluated == 8


def test_the_default_is_this_process_on_a_machine_without_several_gpus(tiny_family, workspace, monkeypatch):
    import rp_eval.evolve.pool as pool_module

    genome, settings = _genome(tiny_family), SearchSettings(**FAST)
    evaluator = make_evaluator(genome, _fitness(settings))
    try:
        assert isinstance(evaluator, InProcess)
    finally:
        evaluator.close()
    monkeypatch.setattr(pool_module, "_gpu_count", lambda: 2)
    with pytest.raises(PoolError, match="3 worker processes asked for, but this machine has 2 GPUs"):
        make_evaluator(genome, _fitness(settings), PoolSettings(workers=3))


def _turn_taking_worker(conn, index, *_):
    """A stand-in for a worker process that logs when its compiles would start and end."""
    log = Path(os.environ["RP_EVAL_TEST_WARM_LOG"])
    conn.send(("loaded", None))
    if conn.recv() != "warm":
        return
    with log.open("a") as f:
        f.write(f"start {index}\n")
    time.sleep(0.5)
    with log.open("a") as f:
        f.write(f"end {index}\n")
    conn.send(("ready", None))
    while conn.recv() is not None:
        pass


def test_workers_compile_one_after_the_first(tiny_family, workspace, tmp_path, monkeypatch):
    """Worker 0 compiles alone, the others after it (from the caches it filled): two processes that compile
    side by side can choose kernels differently, and then the same candidate scores differently."""
    log = tmp_path / "warm.log"
    monkeypatch.setenv("RP_EVAL_TEST_WARM_LOG", str(log))
    monkeypatch.setattr(LocalPool, "target", staticmethod(_turn_taking_worker))
    pool = LocalPool(_genome(tiny_family), _fitness(SearchSettings(**FAST)), workers=3)
    pool.close()
    lines = log.read_text().split("\n")[:-1]
    assert lines[:2] == ["start 0", "end 0"], lines
    assert sorted(lines[2:]) == ["end 1", "end 2", "start 1", "start 2"], lines
    assert lines[2:4] == ["start 1", "start 2"] or lines[2:4] == ["start 2", "start 1"], lines  # side by side


def test_a_worker_that_fails_its_compiles_is_reported(tiny_family, workspace, monkeypatch):
    monkeypatch.setattr(LocalPool, "target", staticmethod(_failing_warm_up))
    with pytest.raises(PoolError, match="worker process 0 could not compile its fast path: RuntimeError: no kernel"):
        LocalPool(_genome(tiny_family), _fitness(SearchSettings(**FAST)), workers=2)


def _failing_warm_up(conn, index, *_):
    conn.send(("loaded", None))
    if conn.recv() == "warm":
        conn.send(("failed", "RuntimeError: no kernel"))
