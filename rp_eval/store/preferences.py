"""Chat choices stored as preferences: which reply a person kept, edited, stopped or picked over another.

One row says "in conversation C, at this turn, the person `owner` preferred the chosen reply over the rejected one":

- kind `kept`: the slot had several replies (Regenerate, then ‹ ›) and the person went on with one of them: the
  kept reply over each one left aside;
- kind `edit`: the person rewrote a reply: the edited text over the model's own (one row per reply, updated by
  later edits; both sides are the reply's model, so it scores that model and is no vote between two models);
- kind `stopped`: the person stopped a reply and regenerated it: the new reply over the stopped one;
- kind `side`: in a side-by-side chat the person picked one side's reply over the other's (a vote between models).

One row per two replies (chosen and rejected turn, in either order): a later choice the other way round replaces
the earlier one, so flipping back and going on with the other reply does not count both ways.
The table stands alone (no foreign keys to the chat tables), so it can be created or migrated by itself; its rows
keep the texts and models they compare, so they stay readable whatever happens to the chat later.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, delete, func, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from rp_eval.store import Base, Store, _now

KINDS = ("kept", "edit", "stopped", "side")


class PreferenceRow(Base):
    """One chat choice: the chosen reply over the rejected one (texts, models, turns), whose and when."""

    __tablename__ = "chat_preferences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(10))  # one of KINDS
    owner: Mapped[str] = mapped_column(String(200), default="", index=True)  # the login that chose ("": none)
    persona_id: Mapped[str] = mapped_column(String(200), default="")
    side: Mapped[str] = mapped_column(String(2), default="")  # the chosen reply's side ("a", "b")
    position: Mapped[int] = mapped_column(Integer, default=0)  # how many user messages came before the turn
    chosen_turn: Mapped[int] = mapped_column(Integer, index=True)
    rejected_turn: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None for an edit (same turn)
    chosen_model: Mapped[str] = mapped_column(String(200), default="")
    rejected_model: Mapped[str] = mapped_column(String(200), default="")
    chosen: Mapped[str] = mapped_column(Text, default="")
    rejected: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)

    @property
    def between_models(self) -> bool:
        return bool(self.chosen_model and self.rejected_model and self.chosen_model != self.rejected_model)


def record(store: Store, rows: list[PreferenceRow]) -> list[PreferenceRow]:
    """Store chat choices in one transaction. A row about two replies already compared the same way round is not
    stored again (the first kind stays: a stopped reply regenerated, then gone on with, is one `stopped` row); the
    other way round, it replaces the earlier row (the latest choice counts). A later edit of a reply updates its
    `edit` row (still against the model's own text). The rows stored, or updated."""
    out = []
    with store.transaction() as s:
        for row in rows:
            mine = PreferenceRow.owner == row.owner
            if row.rejected_turn is None:
                old = s.scalar(
                    select(PreferenceRow).where(
                        mine, PreferenceRow.chosen_turn == row.chosen_turn, PreferenceRow.rejected_turn.is_(None)
                    )
                )
                if old is not None:
                    old.chosen, old.created_at = row.chosen, _now()
                    out.append(old)
                    continue
            else:
                a, b = row.chosen_turn, row.rejected_turn
                either = or_(
                    (PreferenceRow.chosen_turn == a) & (PreferenceRow.rejected_turn == b),
                    (PreferenceRow.chosen_turn == b) & (PreferenceRow.rejected_turn == a),
                )
                old = s.scalar(select(PreferenceRow).where(mine, either))
                if old is not None and old.chosen_turn == a:
                    continue
                if old is not None:
                    s.delete(old)
                    s.flush()
            s.add(row)
            out.append(row)
    return out


def list_preferences(store: Store, owner: str | None, limit: int | None = None) -> list[PreferenceRow]:
    """`owner`'s preferences, newest first (None: everyone's, for the leaderboard, admins and the CLI)."""
    with store.transaction() as s:
        q = select(PreferenceRow)
        if owner is not None:
            q = q.where(PreferenceRow.owner == owner)
        q = q.order_by(PreferenceRow.id.desc())
        return list(s.scalars(q.limit(limit) if limit else q))


def delete_preferences(store: Store, ids: list[int], owner: str | None) -> int:
    """Remove preferences by id, only `owner`'s (None: anyone's); how many went."""
    with store.transaction() as s:
        q = delete(PreferenceRow).where(PreferenceRow.id.in_([int(i) for i in ids]))
        if owner is not None:
            q = q.where(PreferenceRow.owner == owner)
        return s.execute(q).rowcount or 0


def count_preferences(store: Store) -> dict[str, int]:
    """Stored preferences by kind (every owner's)."""
    with store.transaction() as s:
        rows = s.execute(select(PreferenceRow.kind, func.count()).group_by(PreferenceRow.kind)).all()
    return {kind: int(n) for kind, n in rows}
