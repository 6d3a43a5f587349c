"""Who runs a long job, and whether that process is gone: how a run left "running" by a killed process is told
apart from one still going, so it can be shown as interrupted (and resumed) instead of running forever."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def owner() -> dict:
    """This host, this process and when it started (so a reused pid is not mistaken for it)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": process_start(os.getpid())}


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
    """True when `who` (from `owner()`) names a process of this host that no longer runs. A process of another
    host (a shared PostgreSQL store) can not be seen from here: never gone."""
    who = who or {}
    pid = who.get("pid")
    if who.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    if not pid_alive(pid):
        return True
    started = process_start(pid)
    return bool(who.get("started") and started and started != who["started"])
