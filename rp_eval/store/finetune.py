"""Fine-tuning runs: settings, status, losses, metrics and log, one row a run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from rp_eval.store import Base, Store, _now

STATUSES = ("running", "done", "failed", "cancelled")


class FinetuneRun(Base):
    __tablename__ = "finetune_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base_model: Mapped[str] = mapped_column(String(200))
    adapter: Mapped[str] = mapped_column(String(200), default="")  # the registered adapter's name, once done
    status: Mapped[str] = mapped_column(String(20), default="running")
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    losses: Mapped[list] = mapped_column(JSON, default=list)  # [{"step", "epoch", "loss" | "eval_loss"}]
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)  # data counts, train summary, stop check
    log: Mapped[str] = mapped_column(Text, default="")
    folder: Mapped[str] = mapped_column(Text, default="")  # checkpoints live here
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def create_run(store: Store, base_model: str, settings: dict) -> FinetuneRun:
    run = FinetuneRun(base_model=base_model, settings=settings, status="running", losses=[], metrics={}, log="")
    with store.transaction() as s:
        s.add(run)
    return run


def get_run(store: Store, run_id: int) -> FinetuneRun | None:
    with store.transaction() as s:
        return s.get(FinetuneRun, run_id)


def list_runs(store: Store) -> list[FinetuneRun]:
    with store.transaction() as s:
        return list(s.scalars(select(FinetuneRun).order_by(FinetuneRun.id.desc())))


def running_runs(store: Store) -> list[FinetuneRun]:
    with store.transaction() as s:
        return list(s.scalars(select(FinetuneRun).where(FinetuneRun.status == "running")))


def fail_if_running(store: Store, run_id: int, reason: str) -> bool:
    """Mark a run failed with `reason` as its error and last log line, unless it left "running" meanwhile."""
    with store.transaction() as s:
        run = s.get(FinetuneRun, run_id, with_for_update=True)
        if run is None or run.status != "running":
            return False
        run.status, run.finished_at = "failed", _now()
        run.metrics = {**run.metrics, "error": reason}
        run.log = run.log + f"{reason}\n"
        return True


def update_run(
    store: Store,
    run_id: int,
    *,
    status: str | None = None,
    losses: list[dict] | None = None,
    metrics: dict | None = None,
    log_lines: list[str] | None = None,
    adapter: str | None = None,
    folder: str | None = None,
) -> None:
    """Add losses and log lines, merge metrics, set status (a final status stamps `finished_at`)."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown run status {status!r}")
    with store.transaction() as s:
        run = s.get(FinetuneRun, run_id)
        if run is None:
            raise ValueError(f"no fine-tuning run {run_id}")
        if losses:
            run.losses = [*run.losses, *losses]
        if metrics:
            run.metrics = {**run.metrics, **metrics}
        if log_lines:
            run.log = run.log + "".join(f"{line}\n" for line in log_lines)
        if adapter is not None:
            run.adapter = adapter
        if folder is not None:
            run.folder = folder
        if status is not None:
            run.status = status
            run.finished_at = None if status == "running" else _now()
