"""The store's schema over time: Alembic revisions (`rp_eval/store/migrations/versions/`), applied on open.

`upgrade(engine)` runs when a `Store` opens, under a lock (PostgreSQL: an advisory lock; SQLite: the write lock
of `BEGIN IMMEDIATE`), so two processes opening one database at once migrate it once:
- a new database gets every revision, from the baseline (the schema of 2026-12-07) on;
- a database made before migrations (tables, no `alembic_version`) first gets the columns of `ADDED_COLUMNS` it
  lacks (how the schema grew until then), is stamped with the baseline, then gets the later revisions;
- a migrated database gets the revisions it has not had yet.
A change to an existing table is a new revision (`alembic revision` with this folder as its script location;
see `migrations/versions/0002_card_owner.py`). `ADDED_COLUMNS` still works as before (a column listed there is
added at open when missing) and `create_all` still makes a table no revision has created yet, so a feature that
came with either keeps working; new work should add a revision instead.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

FOLDER = Path(__file__).with_name("migrations")
BASELINE = "0001_baseline"
_LOCK_KEY = 290_729  # PostgreSQL advisory lock id for rp_eval's migrations


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(FOLDER))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this code knows."""
    config = Config()
    config.set_main_option("script_location", str(FOLDER))
    return ScriptDirectory.from_config(config).get_current_head()


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: not migrated yet)."""
    with engine.connect() as c:
        return MigrationContext.configure(c).get_current_revision()


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # waits (busy_timeout) for another process's migration


def upgrade(engine: Engine, ours: set[str], add_columns) -> str:
    """Bring the database at `engine` to the newest revision; `ours` are the names of rp_eval's tables (to tell a
    database made before migrations from an empty one), `add_columns(engine)` applies `ADDED_COLUMNS`. The
    revision it is at after."""
    tables = set(inspect(engine).get_table_names())
    if "alembic_version" not in tables and tables & ours:
        add_columns(engine)  # made before migrations: up to the baseline's columns first
    with engine.begin() as connection:
        _lock(connection)
        config = _config(connection)
        tables = set(inspect(connection).get_table_names())
        if "alembic_version" not in tables and tables & ours:
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")
        return MigrationContext.configure(connection).get_current_revision()
