"""The store's Alembic migrations (rp_eval.store.migrate): a database made by the code before migrations (main on
2026-12-07, `tests/data/store_before_migrations.sql`: its `sqlite3 .dump`, made by that day's `Store` with 40
votes of three raters, a chat and an imported card) upgrades on open with nothing lost, and a lab server started
on it finds every vote."""

from __future__ import annotations

import csv
import shutil
import sqlite3
import threading
import uuid
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from rp_eval.store import Base, Store, migrate
from tests.conftest import ROOT, running_app

DUMP = ROOT / "tests" / "data" / "store_before_migrations.sql"


def _old_database(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.executescript(DUMP.read_text(encoding="utf-8"))
    db.close()
    return path


def _rows(path: Path, query: str) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


VOTES = "SELECT item_id, rater, model_a, model_b, winner, prompt FROM rating_votes ORDER BY id"


def test_a_database_made_before_migrations_upgrades_without_loss(tmp_path):
    path = _old_database(tmp_path / "rp_eval.sqlite")
    votes, turns = _rows(path, VOTES), _rows(path, "SELECT * FROM chat_conversations")
    assert len(votes) == 40 and "alembic_version" not in str(_rows(path, "SELECT name FROM sqlite_master"))
    store = Store(f"sqlite:///{path}")
    assert store.revision == migrate.head() == migrate.current(store.engine)
    with store.engine.connect() as c:  # the upgraded schema is exactly today's models
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
    store.engine.dispose()
    assert _rows(path, VOTES) == votes
    assert _rows(path, "SELECT * FROM chat_conversations") == turns
    assert _rows(path, "SELECT persona_id, owner FROM persona_cards") == [("old-card", "")]
    again = Store(f"sqlite:///{path}")  # a second open changes nothing
    assert again.revision == migrate.head() and _rows(path, VOTES) == votes
    again.engine.dispose()


def test_a_new_database_opened_by_four_at_once_gets_every_revision_once(database_url):
    """Four stores opening one empty database at the same moment (the app, a CLI command ...): each ends at the
    newest revision, the schema is today's models, and the migration ran once (the lock)."""
    stores: list[Store] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_one() -> None:
        start.wait()
        try:
            stores.append(Store(database_url))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "the opens are still waiting on each other (no lock?)"
    assert not errors, errors
    assert [s.revision for s in stores] == [migrate.head()] * 4
    with stores[0].engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
        assert c.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
    for s in stores:
        s.engine.dispose()


def test_a_lab_server_started_on_a_database_made_before_migrations_finds_every_vote(demo_build, tmp_path):
    """The demo workspace with its database replaced by the old one; `python app.py --auth`; the admin exports
    the raw votes as CSV from the Leaderboard tab: all 40, as they were; the old card is still a persona."""
    from tests.reliability.test_lab_safety import _endpoints, _event
    from tests.reliability.test_lab_trust import _login, _users

    workspace = tmp_path / "workspace"
    shutil.copytree(demo_build, workspace)
    for old in workspace.glob("rp_eval.sqlite*"):
        old.unlink()
    db = _old_database(workspace / "rp_eval.sqlite")
    before = _rows(db, VOTES)
    users = _users(tmp_path / "users.yaml")
    with running_app(workspace, tmp_path / "app.log", "--auth", str(users)) as url:
        sato = _login(url, "sato", "/admin")
        fns, session = _endpoints(sato, "/admin"), uuid.uuid4().hex
        _, done = _event(sato, fns["leaderboard_export"], ["raw", "csv", "", "", [], "", "", 1000], session, "/admin")
        assert done.get("success"), done
        files = [Path(f["path"]) for f in done["output"]["data"][0]]
        votes = next(p for p in files if p.name == "votes.csv")
        rows = list(csv.DictReader(votes.open(encoding="utf-8")))
    assert sorted((r["rater"], r["model_a"], r["model_b"], r["winner"], r["prompt"]) for r in rows) == sorted(
        (rater, a, b, winner, prompt) for _, rater, a, b, winner, prompt in before
    )
    assert _rows(db, VOTES) == before
    assert _rows(db, "SELECT version_num FROM alembic_version") == [(migrate.head(),)]


def test_the_revisions_alone_make_todays_schema(tmp_path):
    """Every table and column of today's models comes from a revision, not only from `create_all` (which the
    store runs after the upgrade and would hide a table no revision makes: chat_preferences had none at first)."""
    from importlib import import_module

    from sqlalchemy import create_engine

    from rp_eval.store import TABLE_MODULES

    for module in TABLE_MODULES:
        import_module(f"rp_eval.store.{module}")
    engine = create_engine(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    assert migrate.upgrade(engine, set(Base.metadata.tables), lambda _engine: None) == migrate.head()
    with engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
    engine.dispose()
