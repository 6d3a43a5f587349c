"""Evolutionary merge runs and their candidates (every one stored as it finishes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from rp_eval.store import Base, Store, _now


class EvolveRun(Base):
    __tablename__ = "evolve_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, index=True)
    genome: Mapped[str] = mapped_column(Text)  # the genome's YAML
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="running")  # running | stopped | done | failed
    generations: Mapped[int] = mapped_column(Integer, default=0)  # finished generations
    best_fitness: Mapped[float | None] = mapped_column(Float, nullable=True)
    checkpoint: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class EvolveCandidate(Base):
    __tablename__ = "evolve_candidates"
    __table_args__ = (UniqueConstraint("run_id", "generation", "index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("evolve_runs.id", ondelete="CASCADE"), index=True)
    generation: Mapped[int] = mapped_column(Integer)
    index: Mapped[int] = mapped_column(Integer)
    genotype: Mapped[list] = mapped_column(JSON)
    recipe: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # ok | failed
    fitness: Mapped[float | None] = mapped_column(Float, nullable=True)  # dev split
    test_fitness: Mapped[float | None] = mapped_column(Float, nullable=True)  # test split, best candidates only
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    build_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    eval_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


def get_run(store: Store, name: str) -> EvolveRun | None:
    with store.transaction() as s:
        return s.scalar(select(EvolveRun).where(EvolveRun.name == name))


def create_run(store: Store, name: str, genome: str, settings: dict, checkpoint: str) -> EvolveRun:
    with store.transaction() as s:
        row = EvolveRun(name=name, genome=genome, settings=settings, checkpoint=checkpoint)
        s.add(row)
    return row


def update_run(store: Store, name: str, **values) -> None:
    with store.transaction() as s:
        row = s.scalar(select(EvolveRun).where(EvolveRun.name == name))
        for key, value in values.items():
            setattr(row, key, value)


def stop_running(store: Store, is_gone, reason: str) -> list[str]:
    """Mark stopped, with `reason`, every running run whose owner (in its settings) `is_gone`; their names."""
    marked = []
    with store.transaction() as s:
        for row in s.scalars(select(EvolveRun).where(EvolveRun.status == "running")):
            if is_gone((row.settings or {}).get("owner")):
                row.status, row.message = "stopped", reason
                marked.append(row.name)
    return marked


def list_runs(store: Store) -> list[EvolveRun]:
    with store.transaction() as s:
        return list(s.scalars(select(EvolveRun).order_by(EvolveRun.id.desc())))


def add_candidate(store: Store, run_id: int, **values) -> EvolveCandidate:
    with store.transaction() as s:
        row = EvolveCandidate(run_id=run_id, **values)
        s.add(row)
    return row


def candidates(store: Store, run_id: int) -> list[EvolveCandidate]:
    with store.transaction() as s:
        q = select(EvolveCandidate).where(EvolveCandidate.run_id == run_id)
        return list(s.scalars(q.order_by(EvolveCandidate.generation, EvolveCandidate.index)))


def set_test_fitness(store: Store, candidate_id: int, value: float) -> None:
    with store.transaction() as s:
        s.get(EvolveCandidate, candidate_id).test_fitness = value
