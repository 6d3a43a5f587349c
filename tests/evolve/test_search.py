"""The CMA-ES search: a short run on the demo models, resume after a kill, and bad inputs."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import pytest

from rp_eval.evolve.genome import Genome, save_genome
from rp_eval.evolve.search import SearchError, SearchSettings, _load_checkpoint, checkpoint_path, evolve, export_best
from rp_eval.store import evolve as db
from rp_eval.store import get_store
from tests.conftest import ROOT, use_workspace

FAST = dict(population=4, budget=8, dev_limit=2, max_new_tokens=6, test_limit=2, sigma0=0.3)


def _family_genome(tiny_family, **extra) -> Genome:
    return Genome(
        name="family", models=[str(tiny_family["a"]), str(tiny_family["b"])], base_model=str(tiny_family["base"]),
        method="dare_ties", layer_granularity=2, dtype="float32", **extra,
    )  # fmt: skip


def _trace(run: str) -> list[tuple]:
    row = db.get_run(get_store(), run)
    return [(c.generation, c.index, c.genotype, c.fitness) for c in db.candidates(get_store(), row.id)]


def test_short_search_on_the_demo_models_and_export(demo_workspace, monkeypatch, tmp_path):
    use_workspace(demo_workspace, monkeypatch)
    monkeypatch.setenv("RP_EVAL_RECIPES", str(tmp_path / "merges"))
    genome = Genome(models=["demo-llama-b"], base_model="demo-llama-a", method="slerp", dtype="float32")
    start = time.perf_counter()
    events = list(evolve(genome, SearchSettings(**FAST), "demo-search"))
    seconds = time.perf_counter() - start
    last = events[-1]
    assert last.done and last.evaluated == 8 and len(last.history) == 2
    assert last.history[1][1] >= last.history[0][1]  # the best so far never drops
    cands = db.candidates(get_store(), db.get_run(get_store(), "demo-search").id)
    assert all(c.status == "ok" and 0 <= c.fitness <= 1 for c in cands)
    assert sum(c.test_fitness is not None for c in cands) == 1  # only the best is scored on test
    assert seconds < 60, seconds
    steps = list(export_best("demo-search", "demo-evolved"))
    assert steps[-1].stage == "done" and get_store().get_model("demo-evolved").kind == "merged"
    assert (demo_workspace / "merges" / "demo-evolved.yaml").exists()  # in the workspace, not the checkout
    assert not (tmp_path / "merges" / "demo-evolved.yaml").exists()


def test_a_killed_run_resumes_with_the_same_results(tiny_family, workspace, tmp_path):
    genome = _family_genome(tiny_family)
    path = tmp_path / "family.yaml"
    path.write_text(genome.to_yaml())
    settings = SearchSettings(**{**FAST, "budget": 12})
    args = ["--population", "4", "--budget", "12", "--dev-limit", "2", "--max-new-tokens", "6", "--test-limit", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rp_eval", "evolve", "run", "--genome", str(path), "--run", "killed", "--sigma0", "0.3",
         *args], cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline:
        row = db.get_run(get_store(), "killed")
        if row is not None and len(db.candidates(get_store(), row.id)) >= 6:  # inside the second generation
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n = len(_trace("killed"))
    assert 6 <= n < 12, n
    assert db.get_run(get_store(), "killed").status == "running"  # killed: nothing had a chance to say so
    resumed = list(evolve(None, settings, "killed", resume=True))
    assert resumed[-1].done
    list(evolve(genome, settings, "straight"))
    assert _trace("killed") == _trace("straight")
    assert len(_trace("straight")) == 12


def test_bad_inputs(tiny_family, workspace, monkeypatch, tmp_path):
    monkeypatch.setenv("RP_EVAL_RECIPES", str(tmp_path / "merges"))
    genome = _family_genome(tiny_family)
    with pytest.raises(SearchError, match="budget is 0"):
        list(evolve(genome, SearchSettings(**{**FAST, "budget": 0}), "zero"))

    calls = []

    def sometimes_nan(resident, split, limit, seed):
        calls.append(split)
        return (float("nan"), {}) if len(calls) == 2 else (0.5 + len(calls) / 100, {"m": 1.0})

    events = list(evolve(genome, SearchSettings(**FAST), "nan", fitness_fn=sometimes_nan))
    assert events[-1].done
    cands = db.candidates(get_store(), db.get_run(get_store(), "nan").id)
    failed = [c for c in cands if c.status == "failed"]
    assert len(cands) == 8 and len(failed) == 1 and "not a number" in failed[0].error
    assert all(math.isfinite(c.fitness) for c in cands if c.status == "ok")

    other = _family_genome(tiny_family, split_attention_mlp=True)
    with pytest.raises(SearchError, match="another genome"):
        list(evolve(other, SearchSettings(**FAST), "nan", resume=True))
    with pytest.raises(SearchError, match="belongs to another genome"):
        _load_checkpoint(checkpoint_path("nan"), other, SearchSettings(**FAST))
    with pytest.raises(SearchError, match="exists already"):
        list(evolve(genome, SearchSettings(**FAST), "nan"))
    assert save_genome(genome).name == "family.yaml"
