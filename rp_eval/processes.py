"""The run lifecycle shared by evaluation, evolution, fine-tuning and merging: who runs a long job, whether that
job is gone, and marking what a gone job left "running" as interrupted.

A run records `owner()`: host, pid, the process's start time (so a reused pid is not mistaken for it) and a job
token. Inside `running()` the token is live; when the job ends in any way (done, failed, its generator closed
because the page was left) the token is dropped. A run is gone when its process is gone (killed, crashed, the
machine restarted) or, for a run of this very process, when its token is no longer live. `sweep()` (called at
server start and by each job before it starts) marks every gone run of every kind as interrupted.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_LIVE: set[str] = set()  # job tokens running in this process
_LOCK = threading.Lock()


def owner(job: str | None = None) -> dict:
    """This host, this process and when it started; with `job`, the token of a job of this process."""
    who = {"host": socket.gethostname(), "pid": os.getpid(), "started": process_start(os.getpid())}
    return {**who, "job": job} if job else who


@contextmanager
def running() -> Iterator[dict]:
    """The owner record of one job of this process, live until the block ends (however it ends)."""
    token = uuid.uuid4().hex
    with _LOCK:
        _LIVE.add(token)
    try:
        yield owner(token)
    finally:
        with _LOCK:
            _LIVE.discard(token)


def process_start(pid: int) -> str:
    try:  # field 22 of /proc/PID/stat: the start time in clock ticks since boot (Linux)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return True


def gone(who: dict | None) -> bool:
    """True when `who` (from `owner()`) names a process of this host that no longer runs, or a job of this
    process that has ended. A process of another host (a shared PostgreSQL store) can not be seen from here:
    never gone."""
    who = who or {}
    pid = who.get("pid")
    if who.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    if pid == os.getpid() and who.get("started") == process_start(pid) and who.get("job"):
        with _LOCK:
            return who["job"] not in _LIVE
    if not pid_alive(pid):
        return True
    started = process_start(pid)
    return bool(who.get("started") and started and started != who["started"])


def sweep() -> dict[str, list]:
    """Mark interrupted every run of every kind whose job is gone, and remove merges' half-written folders;
    what was marked, by kind."""
    from rp_eval import settings
    from rp_eval.evaluate.runner import mark_interrupted as evaluations
    from rp_eval.evolve.search import mark_interrupted as evolutions
    from rp_eval.finetune.job import mark_interrupted as finetunes
    from rp_eval.merge.run import sweep_leftovers
    from rp_eval.store import get_store

    return {
        "evaluate": evaluations(get_store()),
        "evolve": evolutions(),
        "finetune": finetunes(),
        "merge": sweep_leftovers(settings.models_dir() / "merged"),
    }
