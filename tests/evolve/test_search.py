"""The CMA-ES search: a short run on the demo models, resume after a kill, and bad inputs."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

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


def _cand(id_, generation, fitness, **metrics):
    return SimpleNamespace(id=id_, generation=generation, index=id_, status="ok", fitness=fitness, test_fitness=None,
                           metrics=metrics)  # fmt: skip


def test_the_gaming_guard_flags_marker_or_repetition_jumps_the_judge_does_not_vouch_for():
    from rp_eval.evolve import audit

    first = [_cand(1, 0, 0.6, marker_rate=2.0, repeated_ngrams=0.05, judge=0.5),
             _cand(2, 0, 0.6, marker_rate=3.0, repeated_ngrams=0.07, judge=0.6)]  # fmt: skip
    later = [
        _cand(3, 1, 0.8, marker_rate=5.0, repeated_ngrams=0.06, judge=0.55),  # markers doubled, judge flat: flagged
        _cand(4, 1, 0.8, marker_rate=5.0, repeated_ngrams=0.06, judge=0.7),  # markers up and the judge agrees
        _cand(5, 1, 0.7, marker_rate=2.6, repeated_ngrams=0.30, judge=0.5),  # repetition up: flagged
        _cand(6, 1, 0.7, marker_rate=3.5, repeated_ngrams=0.08, judge=0.5),  # within the median + max(1, 50%)
    ]
    flags = audit.gaming_flags(first + later)
    assert set(flags) == {3, 5}
    assert "marker rate 2.50→5.00" in flags[3] and "judge +0.000" in flags[3]
    assert "repetition 0.06→0.30" in flags[5]
    no_judge = [_cand(1, 0, 0.5, marker_rate=1.0, repeated_ngrams=0.0), _cand(2, 1, 0.9, marker_rate=4.0)]
    assert "no judge in the fitness" in audit.gaming_flags(no_judge)[2]
    best = audit.best_table(first + later, top=2)
    assert best["dev_fitness"].tolist() == [0.8, 0.8] and best["flag"].str.len().tolist()[0] > 0


def test_the_search_reports_its_fitness_meta_accuracy_and_best_dev_and_test(tiny_family, workspace, monkeypatch):
    from rp_eval.evaluate import meta
    from rp_eval.evolve import audit

    monkeypatch.setattr(meta, "DEFAULT_PAIRS", ROOT / "tests" / "evaluate" / "data" / "meta_pairs.jsonl")
    audit.default_fitness_meta.cache_clear()
    try:
        events = list(evolve(_family_genome(tiny_family), SearchSettings(**FAST), "reported"))
    finally:
        audit.default_fitness_meta.cache_clear()
    first, last = events[0], events[-1]
    assert first.meta["pairs"] == 8 and first.meta["accuracy"] == 1.0 and first.meta["weights"] == "default"
    assert "prefers the better reply in 100.0% of 8 meta-evaluation pairs" in first.message
    assert last.done and last.meta == first.meta
    best = max((c for c in db.candidates(get_store(), db.get_run(get_store(), "reported").id)), key=lambda c: c.fitness)
    assert f"best dev fitness {best.fitness:.4f}, test {best.test_fitness:.4f}" in last.message
    assert audit.load_meta(checkpoint_path("reported").parent) == first.meta  # kept beside the checkpoint
    from rp_eval.ui.evolve_tab import candidates_frame

    table = candidates_frame("reported")
    assert len(table) == 8 and "flag" in table and "marker_rate" in table
    assert "not available (pairs file" in audit.describe_meta(audit.fitness_meta(pairs=ROOT / "no-such.jsonl"))


def test_a_judge_or_weights_that_can_not_be_used_stop_the_search_before_it_is_stored(tiny_family, workspace):
    from rp_eval.evaluate.judge import JudgeError
    from rp_eval.evaluate.score import WeightsError

    genome = _family_genome(tiny_family)
    with pytest.raises(JudgeError, match="no registered model named 'nobody'"):
        list(evolve(genome, SearchSettings(**FAST, judge_model="nobody"), "judged"))
    with pytest.raises(WeightsError, match="not found"):
        list(evolve(genome, SearchSettings(**FAST, weights="no-such-weights"), "weighted"))
    assert db.get_run(get_store(), "judged") is None and db.get_run(get_store(), "weighted") is None
    assert not checkpoint_path("judged").parent.exists()
