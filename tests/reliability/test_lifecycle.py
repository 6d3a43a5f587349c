"""One run lifecycle (rp_eval.processes) for every long job: a killed evaluation is shown interrupted once the
server starts again, and so is one whose generator was left half way inside a live process."""

from __future__ import annotations

import shutil

from rp_eval import processes, store
from tests.conftest import running_app, use_workspace
from tests.reliability.test_crash import _kill_when, _spawn


def _eval_runs(workspace, monkeypatch):
    use_workspace(workspace, monkeypatch)
    from rp_eval.store import evaluation as evals

    runs = evals.list_runs(store.get_store())
    store.get_store().engine.dispose()
    store._open.cache_clear()
    return runs


def test_a_killed_evaluation_is_shown_interrupted_after_the_server_starts(demo_build, tmp_path, monkeypatch):
    workspace = tmp_path / "workspace"
    shutil.copytree(demo_build, workspace)
    args = ["--models", "demo-llama-a", "--limit", "8", "--batch-size", "2", "--max-new-tokens", "16"]
    log = tmp_path / "eval.log"
    proc = _spawn(workspace, log, "eval", "run", *args)

    def started() -> bool:
        try:
            runs = _eval_runs(workspace, monkeypatch)
        except Exception:  # noqa: BLE001 - the tables may not exist yet
            return False
        return bool(runs)

    _kill_when(proc, log, started)
    (run,) = _eval_runs(workspace, monkeypatch)
    assert run.status == "running"  # what a restart finds before anything looks at it
    with running_app(workspace, tmp_path / "app.log"):
        (run,) = _eval_runs(workspace, monkeypatch)
    assert run.status == "failed" and run.error.startswith("interrupted"), (run.status, run.error)
    assert "evaluate: 1 run(s) left unfinished" in (tmp_path / "app.log").read_text()


def test_an_evaluation_left_half_way_in_a_live_process_is_interrupted_not_running(demo_workspace, monkeypatch):
    from rp_eval.evaluate.runner import EvalConfig, GenerationSettings, run_evaluation
    from rp_eval.store import evaluation as evals

    use_workspace(demo_workspace, monkeypatch)
    config = EvalConfig(models=["demo-llama-a"], limit=4, batch_size=2, generation=GenerationSettings(max_new_tokens=8))
    steps = run_evaluation(config)
    next(steps), next(steps)  # loading, then the first batch stored
    (run,) = evals.list_runs(store.get_store())
    assert run.status == "running"
    assert processes.sweep()["evaluate"] == []  # still going: left alone
    steps.close()  # the page was closed: nothing will finish this run
    assert processes.sweep()["evaluate"] == [run.id]
    (run,) = evals.list_runs(store.get_store())
    assert run.status == "failed" and run.error.startswith("interrupted")
