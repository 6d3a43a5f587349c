"""A fine-tuning run: LoRA (or QLoRA) with peft and transformers' Trainer, in a background thread.

`start(settings)` checks the request, records a run in the store and starts training; `follow(run_id)` is a
generator of `Progress` snapshots (step, epoch, ETA, losses, log) for the tab and the CLI; `cancel(run_id)` asks
the Trainer to save a checkpoint and stop; `resume(run_id)` continues from the last checkpoint. A finished
adapter is written to a temporary folder, moved into `models/adapters/<name>` and registered as kind "adapter"
with its base as parent and the run in `made_by`; a failed run is marked failed with its log and registers
nothing.

A run records its owner (host, pid, process start time). A run left "running" by a process that is gone (killed,
crashed, the machine restarted) is marked failed, its log kept and a line added saying it was interrupted, the
next time the runs are read (`mark_interrupted`, called by `start`, `resume`, the CLI's `runs` and the tab's
table); `resume` then continues it from its last complete checkpoint.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rp_eval import processes
from rp_eval import settings as paths
from rp_eval.errors import RpEvalError, Said, pack, unpack
from rp_eval.finetune.config import TARGET_MODULES, FinetuneSettings
from rp_eval.finetune.plan import PlanError, plan_data
from rp_eval.models import registry
from rp_eval.store import finetune as runs
from rp_eval.store import get_store


class FinetuneError(RpEvalError):
    """A fine-tuning request that can not run, with a message meant for a person."""


@dataclass
class Progress:
    run_id: int
    status: str  # running | done | failed | cancelled
    step: int = 0
    total: int = 0
    epoch: float = 0.0
    eta_seconds: float | None = None
    losses: list[dict] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    adapter: str = ""
    metrics: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status != "running"


@dataclass
class _Job:
    progress: Progress
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    started: float = field(default_factory=time.perf_counter)
    first_step: int = 0

    def say(self, line: str) -> None:
        self.progress.log.append(line)
        runs.update_run(get_store(), self.progress.run_id, log_lines=[pack(line)])  # a `Said` keeps its key


_jobs: dict[int, _Job] = {}


def run_folder(run_id: int) -> Path:
    return paths.home() / "finetune" / f"run-{run_id}"


def adapters_dir() -> Path:
    path = paths.models_dir() / "adapters"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _check(s: FinetuneSettings, adapter_name: str) -> None:
    base = registry.get_model(s.base_model)
    if base.kind == "adapter":
        raise FinetuneError(key="err_ft_adapter_base", model=s.base_model)
    if registry.get_store().get_model(adapter_name) is not None:
        raise FinetuneError(key="err_ft_name_taken", name=adapter_name)
    if s.qlora:
        import torch

        if not torch.cuda.is_available():
            raise FinetuneError(key="err_ft_qlora_gpu")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as err:
            raise FinetuneError(key="err_ft_bitsandbytes") from err


def start(s: FinetuneSettings) -> int:
    """Check the request, record the run and start training in a background thread; returns the run id."""
    mark_interrupted()
    try:  # bad data or a warm-up as long as the run fails here, before a run is recorded
        plan_data(s)
    except PlanError as err:
        raise FinetuneError(key="err_as_is", error=err) from err
    _check(s, s.adapter_name or f"{s.base_model}-rp-lora-new")
    if s.merge_full and s.adapter_name and registry.get_store().get_model(f"{s.adapter_name}-merged"):
        raise FinetuneError(key="err_merge_name_taken", name=f"{s.adapter_name}-merged")
    run = runs.create_run(get_store(), s.base_model, s.model_dump(mode="json"))
    runs.update_run(get_store(), run.id, folder=str(run_folder(run.id)), metrics={"owner": processes.owner()})
    return _launch(run.id, s, resume=False)


def resume(run_id: int) -> int:
    """Continue a cancelled or failed run from its last checkpoint."""
    mark_interrupted()
    run = runs.get_run(get_store(), run_id)
    if run is None:
        raise FinetuneError(key="err_ft_no_run", run=run_id)
    if run.status == "running":
        who = run.metrics.get("owner") or {}
        raise FinetuneError(key="err_ft_still_running", run=run_id, pid=who.get("pid", "?"), host=who.get("host", "?"))
    if run.status == "done":
        raise FinetuneError(key="err_ft_finished", run=run_id, adapter=run.adapter)
    checkpoint = _last_checkpoint(run_id)
    if checkpoint is None:
        raise FinetuneError(key="err_ft_no_checkpoint", run=run_id)
    line = f"resuming from the last checkpoint ({Path(checkpoint).name})"
    runs.update_run(get_store(), run_id, status="running", log_lines=[line], metrics={"owner": processes.owner()})
    return _launch(run_id, FinetuneSettings(**run.settings), resume=True)


def _launch(run_id: int, s: FinetuneSettings, resume: bool) -> int:
    job = _Job(Progress(run_id, "running"))
    if resume:
        stored = runs.get_run(get_store(), run_id)
        job.progress.losses = list(stored.losses)
        job.progress.log = [unpack(line) for line in stored.log.splitlines()]
    _jobs[run_id] = job
    job.thread = threading.Thread(target=_run, args=(job, s, resume), name=f"finetune-{run_id}", daemon=True)
    job.thread.start()
    return run_id


def cancel(run_id: int) -> bool:
    """Ask a running job to save a checkpoint and stop; False when it is not running here."""
    job = _jobs.get(run_id)
    if job is None or job.progress.finished:
        return False
    job.cancel.set()
    return True


def follow(run_id: int, poll_seconds: float = 0.5) -> Iterator[Progress]:
    """Snapshots of a run until it finishes (the last one is final). A run of another process: one snapshot."""
    job = _jobs.get(run_id)
    if job is None:
        yield stored_progress(run_id)
        return
    while True:
        p = job.progress
        snapshot = Progress(**{**p.__dict__, "losses": list(p.losses), "log": list(p.log)})
        yield snapshot
        if snapshot.finished:  # the snapshot's state, not the live one: a run that ends while the caller holds a
            return  # "running" snapshot gets one more, final snapshot (the page and the CLI's exit code read it)
        time.sleep(poll_seconds)


def stored_progress(run_id: int) -> Progress:
    mark_interrupted()
    run = runs.get_run(get_store(), run_id)
    if run is None:
        raise FinetuneError(key="err_ft_no_run", run=run_id)
    steps = [x["step"] for x in run.losses]
    return Progress(
        run_id,
        run.status,
        step=max(steps, default=0),
        total=run.metrics.get("total_steps", 0),
        losses=list(run.losses),
        log=[unpack(line) for line in run.log.splitlines()],
        adapter=run.adapter,
        metrics=dict(run.metrics),
    )


def wait(run_id: int) -> Progress:
    *_, last = follow(run_id, poll_seconds=0.2)
    return last


def _last_checkpoint(run_id: int) -> str | None:
    """The newest complete checkpoint. Written by hand rather than transformers' `get_last_checkpoint`, which
    also returns a folder half-written when the process was killed: the Trainer writes trainer_state.json last."""
    folder = run_folder(run_id) / "checkpoints"
    done = [
        p
        for p in folder.glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return str(max(done, key=lambda p: int(p.name.split("-")[-1]))) if done else None


def _alive(who: dict, run_id: int) -> bool:
    """A run of this process is alive while its thread is; another process's while that process is."""
    if who.get("pid") == os.getpid():
        job = _jobs.get(run_id)
        return job is not None and job.thread is not None and job.thread.is_alive()
    return not processes.gone(who)


def mark_interrupted() -> list[int]:
    """Mark failed every run recorded as running on this host whose process is gone; returns their ids.
    Runs of another host (a shared PostgreSQL store) are left alone: their processes can't be seen from here."""
    marked = []
    store = get_store()
    for run in runs.running_runs(store):
        who = run.metrics.get("owner") or {}
        if who.get("host") != socket.gethostname() or not isinstance(who.get("pid"), int) or _alive(who, run.id):
            continue
        checkpoint = _last_checkpoint(run.id)
        then = f"resume continues from {Path(checkpoint).name}" if checkpoint else "no checkpoint was saved"
        reason = f"interrupted: the process that ran it (pid {who['pid']}) is gone; {then}"
        if runs.fail_if_running(store, run.id, reason):
            marked.append(run.id)
    return marked


def _run(job: _Job, s: FinetuneSettings, resume: bool) -> None:
    """The thread body: train, then save and register; any failure marks the run failed with its reason."""
    run_id = job.progress.run_id
    store = get_store()
    try:
        from rp_eval.finetune.train import train

        train(job, s, _last_checkpoint(run_id) if resume else None)
    except Exception as err:  # noqa: BLE001 - every failure must land in the run's record, not kill the thread
        reason = _explain(err)
        job.say(Said("ft_log_failed", reason=reason))
        if not isinstance(err, RpEvalError):
            job.say(traceback.format_exc(limit=4))
        job.progress.metrics["error"] = reason
        runs.update_run(store, run_id, status="failed", metrics={"error": reason})
        job.progress.status = "failed"


def _explain(err: Exception) -> str:
    import torch

    if isinstance(err, torch.OutOfMemoryError):
        return "out of GPU memory: lower the batch size or the cut-off length, raise accumulation, or use QLoRA"
    if isinstance(err, MemoryError):
        return "out of memory: lower the batch size or the cut-off length"
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return f"out of disk space while writing ({err.filename or 'the workspace'}): free some space and resume"
    if isinstance(err, OSError) and err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        where = err.filename or "the workspace"
        return f"can not write to {where}: the folder is read-only or not yours; make it writable and resume"
    return str(err) if isinstance(err, RpEvalError) else f"{type(err).__name__}: {err}"


def default_targets(model_type: str) -> tuple[str, ...] | str:
    return TARGET_MODULES.get(model_type, "all-linear")


def install(tmp: Path, name: str) -> Path:
    """Move a finished adapter folder into place (a rename on the same disk)."""
    final = adapters_dir() / name
    if final.exists():
        raise FinetuneError(key="err_ft_folder_exists", name=name, path=final)
    tmp.rename(final)
    return final


def remove_tmp(tmp: Path) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
