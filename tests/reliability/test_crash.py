"""Crashes without loss (issue 12, part 2): each long job is started as its own process on the demo models,
SIGKILLed once it is demonstrably in the middle, and then this process checks what a restart would find: the
database passes its integrity check, no half-written model is registered, an unfinished run is resumable or
shown failed, and every vote the writer acknowledged is stored exactly once.

What was tried and what survived is printed at the end (`pytest -s`) for the closing note.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rp_eval import store
from rp_eval.models import registry
from tests.conftest import ROOT, use_workspace

TALLY: list[tuple[str, str, bool]] = []  # (job, where it was killed, survived)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print("\ncrash survival (SIGKILL mid-job):")
    for job, where, ok in TALLY:
        print(f"  {job:10} killed {where}: {'survived' if ok else 'LOST SOMETHING'}")
    print(f"  {sum(ok for *_, ok in TALLY)}/{len(TALLY)} survived")


def _spawn(workspace: Path, log: Path, *args: str, script: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "RP_EVAL_HOME": str(workspace), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("RP_EVAL_MODELS", None)
    cmd = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "rp_eval", *args]
    with open(log, "w") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _kill_when(proc: subprocess.Popen, log: Path, ready: Callable[[], bool], timeout: float = 120) -> None:
    """SIGKILL `proc` as soon as `ready()` holds; fail if the job ends or stalls first."""
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, f"the job ended before it could be killed:\n{log.read_text()[-3000:]}"
        assert time.time() < deadline, f"the job did not get to its middle in {timeout} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _restart(workspace: Path, monkeypatch) -> store.Store:
    """What a restarted app sees: a fresh engine on the same files, whose integrity check passes."""
    use_workspace(workspace, monkeypatch)
    db = store.get_store()
    assert db.integrity_ok()
    return db


def test_merge_killed_mid_write_registers_nothing_and_leaves_nothing(demo_workspace, tmp_path, monkeypatch):
    from rp_eval.merge.run import merge_all, output_folder

    monkeypatch.setenv("RP_EVAL_RECIPES", str(tmp_path / "merges"))
    recipe = tmp_path / "mix.yaml"
    recipe.write_text(
        "models:\n- model: demo-llama-a\n- model: demo-llama-b\n"
        "merge_method: slerp\nbase_model: demo-llama-a\nparameters: {t: 0.4}\n"
    )
    merged = demo_workspace / "models" / "merged"
    log = tmp_path / "merge.log"
    proc = _spawn(demo_workspace, log, "merge", "run", str(recipe), "--name", "crash-mix")
    # the temporary output folder appears when mergekit starts writing; the merge itself takes about 0.4 s
    _kill_when(proc, log, lambda: merged.exists() and any(p.name.startswith(".tmp-") for p in merged.iterdir()))
    left = sorted(p.name for p in merged.iterdir())

    db = _restart(demo_workspace, monkeypatch)
    assert db.get_model("crash-mix") is None
    assert "crash-mix" not in [r.name for r in registry.list_models()]
    assert not output_folder("crash-mix").exists()  # only a hidden temporary folder may be left
    assert left and all(name.startswith(".tmp-crash-mix-") for name in left), left
    # the next merge (after a restart) sweeps the dead process's leftovers and succeeds under the same name
    last = merge_all(recipe.read_text(), "crash-mix")
    assert last.stage == "done" and db.get_model("crash-mix").kind == "merged"
    assert sorted(p.name for p in merged.iterdir()) == ["crash-mix"]
    TALLY.append(("merge", f"while writing ({left[0]} on disk)", True))


def test_evaluation_killed_between_batches_is_resumed_from_stored_replies(demo_workspace, tmp_path, monkeypatch):
    from rp_eval.evaluate.runner import EvalConfig, GenerationSettings, evaluate
    from rp_eval.store import evaluation as evals

    db = _restart(demo_workspace, monkeypatch)
    args = ["--models", "demo-llama-a", "--limit", "12", "--batch-size", "2", "--max-new-tokens", "24", "--seed", "3"]
    log = tmp_path / "eval.log"
    proc = _spawn(demo_workspace, log, "eval", "run", *args)

    def stored() -> int:
        runs = evals.list_runs(db)
        return len(evals.replies(db, runs[0].id)) if runs else 0

    _kill_when(proc, log, lambda: stored() >= 4)
    db = _restart(demo_workspace, monkeypatch)
    (run,) = evals.list_runs(db)
    before = {r.item_id: (r.id, r.text) for r in evals.replies(db, run.id)}
    assert 4 <= len(before) < 12, len(before)  # whole batches only: a batch in flight is lost, never half-stored
    assert len(before) % 2 == 0
    assert run.status == "running"
    from rp_eval.evaluate.runner import mark_interrupted

    assert mark_interrupted(db) == [run.id]  # the killed run is shown as interrupted, not running forever
    (run,) = evals.list_runs(db)
    assert run.status == "failed" and run.error.startswith("interrupted")
    config = EvalConfig(
        models=["demo-llama-a"],
        limit=12,
        batch_size=2,
        seed=3,
        generation=GenerationSettings(max_new_tokens=24, temperature=0.7, top_p=0.9),
    )
    result = evaluate(config)
    assert not result.failed and len(result.rows) == 12
    (again,) = evals.list_runs(db)
    assert again.id == run.id and again.status == "done"
    after = {r.item_id: (r.id, r.text) for r in evals.replies(db, run.id)}
    assert len(after) == 12 and all(after[k] == v for k, v in before.items())  # stored replies reused, not redone
    TALLY.append(("evaluate", f"after {len(before)}/12 replies", True))


def test_evolution_killed_mid_generation_resumes(demo_workspace, tmp_path, monkeypatch):
    from rp_eval.evolve.genome import Genome
    from rp_eval.evolve.search import SearchSettings, evolve
    from rp_eval.store import evolve as runs

    monkeypatch.setenv("RP_EVAL_RECIPES", str(tmp_path / "merges"))
    db = _restart(demo_workspace, monkeypatch)
    genome = tmp_path / "g.yaml"
    genome.write_text(
        Genome(models=["demo-llama-b"], base_model="demo-llama-a", method="slerp", dtype="float32").to_yaml()
    )
    fast = dict(population=3, budget=6, dev_limit=1, max_new_tokens=4, test_limit=1, sigma0=0.3)
    args = [f"--{k.replace('_', '-')}={v}" for k, v in fast.items()]
    log = tmp_path / "evolve.log"
    proc = _spawn(demo_workspace, log, "evolve", "run", "--genome", str(genome), "--run", "crash", *args)

    def evaluated() -> int:
        row = runs.get_run(db, "crash")
        return len(runs.candidates(db, row.id)) if row else 0

    _kill_when(proc, log, lambda: evaluated() >= 4)  # inside the second generation
    db = _restart(demo_workspace, monkeypatch)
    row = runs.get_run(db, "crash")
    n = len(runs.candidates(db, row.id))
    assert 4 <= n < 6 and row.status == "running"
    from rp_eval.evolve.search import mark_interrupted

    assert mark_interrupted() == ["crash"]  # shown as stopped (interrupted) and resumable, not running forever
    row = runs.get_run(db, "crash")
    assert row.status == "stopped" and row.message.startswith("interrupted")
    assert all(r.kind != "merged" for r in registry.list_models())  # no candidate was ever registered
    *_, last = evolve(None, SearchSettings(**fast), "crash", resume=True)
    assert last.done and last.evaluated == 6
    cands = runs.candidates(db, row.id)
    assert len(cands) == 6 and len({(c.generation, c.index) for c in cands}) == 6  # none run twice
    assert runs.get_run(db, "crash").status == "done"
    TALLY.append(("evolve", f"after {n}/6 candidates", True))


def test_finetune_killed_after_a_checkpoint_is_shown_failed_then_resumes(demo_workspace, tmp_path, monkeypatch):
    from rp_eval.finetune import job
    from rp_eval.store import finetune as runs

    db = _restart(demo_workspace, monkeypatch)
    args = ["--base", "demo-llama-a", "--adapter-name", "crash-lora", "--max-steps", "6", "--save-steps", "2",
            "--batch-size", "2", "--grad-accum", "1", "--max-length", "128", "--logging-steps", "1",
            "--stop-check-prompts", "0"]  # fmt: skip
    log = tmp_path / "finetune.log"
    proc = _spawn(demo_workspace, log, "finetune", "run", *args)

    def checkpointed() -> bool:
        listed = runs.list_runs(db)
        return bool(listed) and job._last_checkpoint(listed[0].id) is not None

    _kill_when(proc, log, checkpointed, timeout=180)
    db = _restart(demo_workspace, monkeypatch)
    (run,) = runs.list_runs(db)
    assert run.status == "running"
    assert job.mark_interrupted() == [run.id]
    run = runs.get_run(db, run.id)
    assert run.status == "failed" and "interrupted" in run.log and run.log.count("\n") > 1  # its log is kept
    assert db.get_model("crash-lora") is None
    assert not (demo_workspace / "models" / "adapters" / "crash-lora").exists()
    checkpoint = Path(job._last_checkpoint(run.id)).name
    job.resume(run.id)
    last = job.wait(run.id)
    assert last.status == "done", last.log[-5:]
    assert db.get_model("crash-lora").kind == "adapter"
    TALLY.append(("finetune", f"after {checkpoint}", True))


WRITER = """
import sys, uuid
from rp_eval.store import get_store
from rp_eval.store import ratings as table
db = get_store()
for i in range(100000):
    item = table.open_item(db, table.RatingItemRow(kind="pair", rater="burst", models=["demo-llama-a", "demo-llama-b"],
        conversations=[[], []], finish_reasons=[[], []]))
    table.add_vote(db, table.VoteRow(item_id=item.id, rater="burst", model_a="demo-llama-a", model_b="demo-llama-b",
        winner="model_a", conversation_a=[], conversation_b=[], finish_a=[], finish_b=[], item_key=str(i)))
    print("ack", item.id, flush=True)
"""


def test_rating_burst_killed_keeps_every_acknowledged_vote_once(demo_workspace, tmp_path, monkeypatch):
    from sqlalchemy import func, select

    from rp_eval.store.ratings import RatingItemRow, VoteRow

    log = tmp_path / "burst.log"
    proc = _spawn(demo_workspace, log, script=WRITER)

    def acked() -> list[str]:
        return [line.split()[1] for line in log.read_text().splitlines() if line.startswith("ack ")]

    _kill_when(proc, log, lambda: len(acked()) >= 60)
    acknowledged = acked()
    db = _restart(demo_workspace, monkeypatch)
    with db.transaction() as s:
        votes = list(s.execute(select(VoteRow.item_id, func.count()).group_by(VoteRow.item_id)))
        open_items = s.scalar(select(func.count()).select_from(RatingItemRow).where(RatingItemRow.closed.is_(False)))
    counts = dict(votes)
    assert all(counts.get(i) == 1 for i in acknowledged)
    assert all(n == 1 for n in counts.values())
    assert len(counts) - len(acknowledged) <= 1  # at most the vote committed but not yet printed
    assert open_items <= 1  # at most the item opened but not yet voted on
    TALLY.append(("ratings", f"after {len(acknowledged)} acknowledged votes ({len(counts)} stored)", True))


CRASH_TESTS = {  # each long job and the test above that kills it mid-way
    "merge": test_merge_killed_mid_write_registers_nothing_and_leaves_nothing,
    "evaluate": test_evaluation_killed_between_batches_is_resumed_from_stored_replies,
    "evolve": test_evolution_killed_mid_generation_resumes,
    "finetune": test_finetune_killed_after_a_checkpoint_is_shown_failed_then_resumes,
    "ratings": test_rating_burst_killed_keeps_every_acknowledged_vote_once,
}


def test_all_five_jobs_were_tried(workspace):
    """Every kind of run a restart sweeps (processes.sweep), and the ratings, has a crash test in this module.
    Independent of the order tests run in: it reads no result of the tests above (their own asserts do that)."""
    from rp_eval import processes

    swept = set(processes.sweep())
    assert swept | {"ratings"} == set(CRASH_TESTS), f"a kind of run has no crash test: {swept - set(CRASH_TESTS)}"
    here = {name for name, value in globals().items() if name.startswith("test_") and callable(value)}
    assert all(test.__name__ in here for test in CRASH_TESTS.values())
