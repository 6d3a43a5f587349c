"""An online copy of the SQLite store, safe while the app writes to it (`rp-eval backup OUT`).

SQLite's backup API copies a consistent snapshot page by page through SQLite's own locking, so a copy taken
while raters vote is a database as it was at one moment, and the running server's locks and write-ahead log
are left alone. Copying the file with `cp`, or opening it with any other tool inside the server process, is
not safe: SQLite's POSIX locks belong to the process, and closing any descriptor of the file drops them.

The copy is written to a temporary file beside OUT, checked with `PRAGMA integrity_check`, then moved into
place, so OUT is either the old file or a whole new backup. A PostgreSQL store is backed up with `pg_dump`.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from rp_eval import settings
from rp_eval.errors import RpEvalError


class BackupError(RpEvalError):
    pass


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///...` URL, or BackupError for another database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise BackupError(
            f"the store is a {parsed.get_backend_name()} database: back it up with its own tools (pg_dump for "
            "PostgreSQL), not rp-eval backup"
        )
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("the store is an in-memory SQLite database: there is no file to back up")
    return Path(parsed.database)


def backup(out: str | Path, url: str | None = None) -> Path:
    """Copy the store to `out` (a file, or a folder to put a dated file in); the path written."""
    source = sqlite_path(url or settings.database_url())
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    folder_named = str(out).endswith(("/", os.sep))
    out = Path(out).expanduser()
    if folder_named:
        out.mkdir(parents=True, exist_ok=True)
    if out.is_dir():
        out = out / f"rp_eval-{datetime.now(UTC):%Y%m%d-%H%M%S}.sqlite"
    if out.resolve() == source.resolve():
        raise BackupError(f"{out} is the database itself: name another file")
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.part")
    part.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=rw", uri=True, timeout=30)  # never creates a new, empty store
    try:
        dst = sqlite3.connect(part)
        try:
            src.backup(dst)  # one step: a snapshot of a single moment; in WAL mode the app keeps writing meanwhile
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            dst.close()
    except sqlite3.Error as err:
        part.unlink(missing_ok=True)
        raise BackupError(f"backup of {source} failed: {err}") from err
    finally:
        src.close()
    if check != "ok":
        part.unlink(missing_ok=True)
        raise BackupError(f"the copy of {source} failed its integrity check: {check}")
    os.replace(part, out)
    return out
