"""The one place that touches SQL: schema, engine and transactions.

The registry's `ModelRow` lives here; each later feature adds one module in this package with its tables
(declared on `Base`) and the functions that read and write them, taking a `Store`, and names that module in
`TABLE_MODULES` so its tables are created on open. Nothing outside `rp_eval.store` builds a query.
Every write runs in a transaction (`Store.transaction`): either all of it lands or none of it does.
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from importlib import import_module

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Integer, String, Text, create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from rp_eval import settings
from rp_eval.errors import RpEvalError


class Base(DeclarativeBase):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


class ModelRow(Base):
    """A registered model: a base (hub id or folder), a LoRA adapter on a base, a merge, or a demo model."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, index=True)
    kind: Mapped[str] = mapped_column(String(20))  # base | adapter | merged | demo
    source: Mapped[str] = mapped_column(Text)  # hub id or local folder
    parents: Mapped[list] = mapped_column(JSON, default=list)  # names of the models it was made from
    made_by: Mapped[dict] = mapped_column(JSON, default=dict)  # how it was made: recipe, training run, ...
    architecture: Mapped[str] = mapped_column(String(200), default="")
    model_type: Mapped[str] = mapped_column(String(100), default="")
    parameters: Mapped[int] = mapped_column(BigInteger, default=0)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    prompt_format: Mapped[str] = mapped_column(String(50), default="auto")
    trust_remote_code: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


# One line per feature module of this package that declares tables (e.g. "ratings").
TABLE_MODULES: list[str] = [
    "ratings",
    "chat",
    "evaluation",
    "finetune",
    "evolve",
    "preferences",
]


class Store:
    """A database (SQLite file by default) with the rp_eval schema created on open."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(
            url, json_serializer=lambda v: json.dumps(v, ensure_ascii=False), pool_pre_ping=True
        )
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        for module in TABLE_MODULES:
            import_module(f"rp_eval.store.{module}")
        from rp_eval.store import migrate

        # the schema by Alembic revisions (rp_eval.store.migrate); then any table or ADDED_COLUMNS entry that no
        # revision has made yet
        self.revision = migrate.upgrade(self.engine, set(Base.metadata.tables), _add_columns)
        try:
            Base.metadata.create_all(self.engine)
        except (IntegrityError, ProgrammingError, OperationalError):
            # another process created the same tables a moment earlier (PostgreSQL): they exist now
            Base.metadata.create_all(self.engine)
        _add_columns(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # a forked child (a ZeroGPU call under `spaces.GPU`, a worker) must not share the parent's pooled
        # connections: it opens its own, and leaves the parent's alone (SQLAlchemy's advice for fork)
        if hasattr(os, "register_at_fork"):
            own = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: (store := own()) is not None and store._forked())

    def _forked(self) -> None:
        self.engine.dispose(close=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose changes commit together at the end, or roll back on any error (a full disk as
        `StoreFull`, whose message says so in the person's language)."""
        try:
            with self._sessions.begin() as session:
                yield session
        except OperationalError as err:
            if _disk_full(err):
                raise StoreFull(key="err_store_full") from err
            raise

    # -- models ------------------------------------------------------------------------------------

    def list_models(self) -> list[ModelRow]:
        with self.transaction() as s:
            return list(s.scalars(select(ModelRow).order_by(ModelRow.id)))

    def get_model(self, name: str) -> ModelRow | None:
        with self.transaction() as s:
            return s.scalar(select(ModelRow).where(ModelRow.name == name))

    def add_model(self, row: ModelRow) -> ModelRow:
        with self.transaction() as s:
            s.add(row)
        return row

    def remove_model(self, name: str) -> bool:
        with self.transaction() as s:
            row = s.scalar(select(ModelRow).where(ModelRow.name == name))
            if row is None:
                return False
            s.delete(row)
            return True

    def integrity_ok(self) -> bool:
        """SQLite's own integrity check; other databases keep their own guarantees."""
        if not self.url.startswith("sqlite"):
            return True
        with self.engine.connect() as c:
            return c.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


# Columns added to a table after its first release, before the store had migrations: (table, column, SQL type and
# default). A database made before gets them on open; the baseline revision has them. A new change to a table is
# an Alembic revision (rp_eval/store/migrations/versions/), not a line here.
ADDED_COLUMNS: list[tuple[str, str, str]] = [
    ("chat_conversations", "owner", "VARCHAR(200) NOT NULL DEFAULT ''"),
    ("chat_turns", "waited_seconds", "FLOAT NOT NULL DEFAULT 0"),
    ("chat_turns", "dropped_turns", "INTEGER NOT NULL DEFAULT 0"),
]


def _add_columns(engine: Engine) -> None:
    from sqlalchemy import inspect

    for table, column, kind in ADDED_COLUMNS:
        if column in {c["name"] for c in inspect(engine).get_columns(table)}:
            continue
        try:
            with engine.begin() as c:
                c.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        except (OperationalError, ProgrammingError):  # another process added it a moment earlier
            pass


class StoreFull(RpEvalError):
    """The database's disk is full: nothing of the action was stored."""


def _disk_full(err: OperationalError) -> bool:
    # SQLite's SQLITE_FULL; PostgreSQL's disk_full (SQLSTATE 53100)
    return "database or disk is full" in str(err) or getattr(err.orig, "sqlstate", None) == "53100"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer (several raters at once)
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@cache
def _open(url: str) -> Store:
    return Store(url)


def get_store() -> Store:
    """The store for the current settings (one per database URL per process)."""
    return _open(settings.database_url())
