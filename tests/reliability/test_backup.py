"""`rp-eval backup` copies the SQLite store through SQLite's backup API while another process writes to it:
every copy is whole, and the writer loses nothing."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from rp_eval import store
from rp_eval.store.backup import BackupError, backup
from tests.conftest import ROOT
from tests.reliability.test_crash import WRITER, _spawn


def _count(path, query: str = "SELECT count(*) FROM rating_votes") -> int:
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return con.execute(query).fetchone()[0]
    finally:
        con.close()


def test_backups_taken_while_votes_are_written_are_whole_and_lose_nothing(workspace, tmp_path):
    store.get_store()  # the schema
    store.get_store().engine.dispose()
    log = tmp_path / "writer.log"
    writer = _spawn(workspace, log, script=WRITER)
    env = {**os.environ, "RP_EVAL_HOME": str(workspace)}
    counts = []
    try:
        deadline = time.time() + 120
        while len([x for x in log.read_text().splitlines() if x.startswith("ack")]) < 5:
            assert writer.poll() is None and time.time() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        for i in range(4):
            out = tmp_path / "backups" / f"copy-{i}.sqlite"
            cmd = [sys.executable, "-m", "rp_eval", "backup", str(out)]
            done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            counts.append(_count(out))
    finally:
        writer.terminate()
        writer.wait(timeout=30)
    acked = [x for x in log.read_text().splitlines() if x.startswith("ack")]
    assert counts == sorted(counts) and counts[0] >= 5
    assert _count(workspace / "rp_eval.sqlite") >= len(acked) >= counts[-1]
    assert not list((tmp_path / "backups").glob(".*.part"))


def test_backup_refuses_what_it_can_not_copy(workspace, tmp_path, monkeypatch):
    with pytest.raises(BackupError, match="no database"):
        backup(tmp_path / "out.sqlite")
    store.get_store()
    with pytest.raises(BackupError, match="the database itself"):
        backup(workspace / "rp_eval.sqlite")
    monkeypatch.setenv("RP_EVAL_DATABASE_URL", "postgresql+psycopg://rp@localhost/rp_eval")
    with pytest.raises(BackupError, match="pg_dump"):
        backup(tmp_path / "out.sqlite")
