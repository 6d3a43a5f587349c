"""A training process killed mid-run (SIGKILL): its run is marked failed with its log kept, and resumes from the
last complete checkpoint. The job runs in a thread of the process that started it, so the CLI process is killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from rp_eval import processes
from rp_eval.finetune import job
from rp_eval.models import registry
from rp_eval.store import finetune as runs
from rp_eval.store import get_store

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(predicate, seconds: float, what: str):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_run_is_marked_interrupted_and_resumes_from_its_checkpoint(tiny_base, tmp_path):
    cmd = [sys.executable, "-m", "rp_eval", "finetune", "run", "--base", tiny_base, "--max-steps", "30",
           "--save-steps", "5", "--logging-steps", "1", "--batch-size", "8", "--grad-accum", "1",
           "--eval-fraction", "0", "--stop-check-prompts", "0", "--max-length", "256"]  # fmt: skip
    with open(tmp_path / "err.txt", "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, env=os.environ.copy())
        try:
            run_id = _wait_for(lambda: [r.id for r in runs.list_runs(get_store())], 120, "the run to be recorded")[0]
            checkpoint = _wait_for(lambda: job._last_checkpoint(run_id), 120, "a checkpoint")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    row = runs.get_run(get_store(), run_id)
    assert row.status == "running" and row.metrics["owner"]["pid"] == proc.pid  # what the killed process left

    assert job.mark_interrupted() == [run_id]
    row = runs.get_run(get_store(), run_id)
    assert row.status == "failed" and row.finished_at is not None
    assert "LoRA r=16" in row.log  # the log is kept ...
    last_line = row.log.strip().splitlines()[-1]  # ... and says what happened
    assert f"interrupted: the process that ran it (pid {proc.pid}) is gone" in last_line
    assert "resume continues from checkpoint-" in last_line and row.metrics["error"] == last_line
    assert job.mark_interrupted() == []  # once
    assert registry.get_store().get_model(f"{tiny_base}-rp-lora-{run_id}") is None

    killed_at = max(x["step"] for x in row.losses)
    saved_at = int(Path(job._last_checkpoint(run_id)).name.split("-")[1])
    assert saved_at >= int(Path(checkpoint).name.split("-")[1]) and saved_at <= killed_at
    job.resume(run_id)
    done = job.wait(run_id)
    assert done.status == "done", done.log
    assert f"resuming from the last checkpoint (checkpoint-{saved_at})" in "\n".join(done.log)
    steps = [x["step"] for x in runs.get_run(get_store(), run_id).losses]
    resumed = steps[steps.index(killed_at) + 1 :]
    assert resumed[0] == saved_at + 1 and resumed[-1] == 30  # continued from the checkpoint, not from step 0
    assert registry.get_model(done.adapter).parents == [tiny_base]


def test_runs_of_live_processes_and_other_hosts_are_left_alone(tiny_base):
    from rp_eval.finetune.config import FinetuneSettings

    store = get_store()
    settings = FinetuneSettings(base_model=tiny_base).model_dump(mode="json")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owners = {
            "live": {"host": socket.gethostname(), "pid": live.pid, "started": processes.process_start(live.pid)},
            "elsewhere": {"host": "another-machine", "pid": 1},
            "pid reused": {"host": socket.gethostname(), "pid": live.pid, "started": "1"},
            "this process, no thread": {"host": socket.gethostname(), "pid": os.getpid()},
        }
        ids = {}
        for what, who in owners.items():
            ids[what] = runs.create_run(store, tiny_base, settings).id
            runs.update_run(store, ids[what], metrics={"owner": who})
        assert sorted(job.mark_interrupted()) == sorted([ids["pid reused"], ids["this process, no thread"]])
        assert runs.get_run(store, ids["live"]).status == "running"
        assert runs.get_run(store, ids["elsewhere"]).status == "running"
        assert "no checkpoint was saved" in runs.get_run(store, ids["pid reused"]).metrics["error"]
    finally:
        live.kill()
        live.wait()
    assert job.mark_interrupted() == [ids["live"]]
