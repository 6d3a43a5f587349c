"""Evaluation runs and their per-reply rows.

A run is one model over the task under one set of generation settings; its `key` (model, task version,
settings) makes it a cache: a later evaluation with the same key reuses every reply already stored and only
generates the rest, so a crash loses at most the batch in flight.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from rp_eval.store import Base, Store, _now


class EvalRunRow(Base):
    __tablename__ = "eval_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    model: Mapped[str] = mapped_column(String(200), index=True)
    task_version: Mapped[str] = mapped_column(String(40))
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="running")  # running | done | failed
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class EvalReplyRow(Base):
    __tablename__ = "eval_replies"
    __table_args__ = (UniqueConstraint("run_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("eval_runs.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text, default="")
    raw_text: Mapped[str] = mapped_column(Text, default="")
    finish_reason: Mapped[str] = mapped_column(String(20))
    cut_mid_sentence: Mapped[bool] = mapped_column(Boolean, default=False)
    new_tokens: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)  # as measured when stored
    extras: Mapped[dict] = mapped_column(JSON, default=dict)  # optional model-based metrics (judge, ...)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


def open_run(
    store: Store, key: str, model: str, task_version: str, settings: dict, owner: dict | None = None
) -> EvalRunRow:
    """The run with this key, created if new; its status goes back to running, under `owner` (the process)."""
    with store.transaction() as s:
        run = s.scalar(select(EvalRunRow).where(EvalRunRow.key == key))
        if run is None:
            run = EvalRunRow(key=key, model=model, task_version=task_version, settings=settings)
            s.add(run)
        run.settings = {**settings, "owner": owner or {}}
        run.status, run.error, run.updated_at = "running", "", _now()
        s.flush()
        return run


def finish_run(store: Store, run_id: int, error: str = "") -> None:
    with store.transaction() as s:
        run = s.get(EvalRunRow, run_id)
        run.status, run.error, run.updated_at = ("failed" if error else "done"), error, _now()


def fail_running(store: Store, is_gone, reason: str) -> list[int]:
    """Mark failed with `reason` every running run whose owner `is_gone(owner)`; returns their ids."""
    marked = []
    with store.transaction() as s:
        for run in s.scalars(select(EvalRunRow).where(EvalRunRow.status == "running")):
            if is_gone((run.settings or {}).get("owner")):
                run.status, run.error, run.updated_at = "failed", reason, _now()
                marked.append(run.id)
    return marked


def add_replies(store: Store, run_id: int, replies: list[dict]) -> None:
    """Store one batch of replies together (all or none)."""
    with store.transaction() as s:
        s.add_all(EvalReplyRow(run_id=run_id, **r) for r in replies)


def set_extras(store: Store, run_id: int, extras: dict[str, dict]) -> None:
    """Merge optional metric values into replies, by item id."""
    with store.transaction() as s:
        for row in s.scalars(select(EvalReplyRow).where(EvalReplyRow.run_id == run_id)):
            if row.item_id in extras:
                row.extras = {**row.extras, **extras[row.item_id]}


def replies(store: Store, run_id: int) -> list[EvalReplyRow]:
    with store.transaction() as s:
        return list(s.scalars(select(EvalReplyRow).where(EvalReplyRow.run_id == run_id).order_by(EvalReplyRow.id)))


def list_runs(store: Store, model: str | None = None) -> list[EvalRunRow]:
    with store.transaction() as s:
        query = select(EvalRunRow).order_by(EvalRunRow.updated_at.desc())
        if model:
            query = query.where(EvalRunRow.model == model)
        return list(s.scalars(query))


def get_run(store: Store, run_id: int) -> EvalRunRow | None:
    with store.transaction() as s:
        return s.get(EvalRunRow, run_id)


def reply_counts(store: Store) -> dict[int, int]:
    """Run id -> how many replies it has stored (for the list of past runs)."""
    from sqlalchemy import func

    with store.transaction() as s:
        query = select(EvalReplyRow.run_id, func.count()).group_by(EvalReplyRow.run_id)
        return {run_id: n for run_id, n in s.execute(query)}
