"""Ratings tables: open rating items (a blind pair or a single reply waiting for a judgement), votes and scores.

An item is opened with the replies already generated and gets an opaque id; the browser only ever holds that id.
Judging it writes the vote (or score) and closes the item in one transaction. `votes.item_id` and
`scores.item_id` are unique, so a double click or two tabs judging the same item store it once: the second
gets `RatingStoreError`. Writes start with the INSERT so that concurrent raters on SQLite wait on the write
lock (busy_timeout) instead of failing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from rp_eval.errors import RpEvalError
from rp_eval.store import Base, Store, _now


class RatingStoreError(RpEvalError):
    """An item that can not be judged (gone, already judged) or a bad record."""


class RatingItemRow(Base):
    """A pair (kind 'pair', two models) or a single reply (kind 'single') shown to a rater, not yet judged."""

    __tablename__ = "rating_items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # opaque, the only thing the browser sees
    kind: Mapped[str] = mapped_column(String(10))  # pair | single
    rater: Mapped[str] = mapped_column(String(200), index=True)
    persona_id: Mapped[str] = mapped_column(String(200), default="")
    models: Mapped[list] = mapped_column(JSON)  # [a, b] or [model]
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    conversations: Mapped[list] = mapped_column(JSON)  # one message list per model, system and opening included
    finish_reasons: Mapped[list] = mapped_column(JSON)  # per model, the finish reason of every reply
    source_kind: Mapped[str | None] = mapped_column(String(30), nullable=True)  # e.g. chat_turn, eval_output
    source_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class VoteRow(Base):
    """One pairwise judgement: winner is model_a, model_b, tie or bothbad."""

    __tablename__ = "rating_votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(32), unique=True)
    rater: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    persona_id: Mapped[str] = mapped_column(String(200), default="", index=True)
    prompt: Mapped[str] = mapped_column(Text, default="")  # the first user message
    model_a: Mapped[str] = mapped_column(String(200), index=True)
    model_b: Mapped[str] = mapped_column(String(200), index=True)
    winner: Mapped[str] = mapped_column(String(10))
    conversation_a: Mapped[list] = mapped_column(JSON)
    conversation_b: Mapped[list] = mapped_column(JSON)
    finish_a: Mapped[list] = mapped_column(JSON)  # finish reason of each of A's replies
    finish_b: Mapped[list] = mapped_column(JSON)
    turns: Mapped[int] = mapped_column(Integer, default=1)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    item_key: Mapped[str] = mapped_column(String(64), index=True)  # same pair and replies -> same key


class ScoreRow(Base):
    """Likert scores (1-5 per axis) of one reply, with an optional link to where the reply came from."""

    __tablename__ = "rating_scores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(32), unique=True)
    rater: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    persona_id: Mapped[str] = mapped_column(String(200), default="", index=True)
    prompt: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str] = mapped_column(String(200), index=True)
    conversation: Mapped[list] = mapped_column(JSON)
    reply: Mapped[str] = mapped_column(Text)
    finish_reason: Mapped[str] = mapped_column(String(20), default="")
    scores: Mapped[dict] = mapped_column(JSON)  # axis -> 1..5
    comment: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    source_kind: Mapped[str | None] = mapped_column(String(30), nullable=True)
    source_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    item_key: Mapped[str] = mapped_column(String(64), index=True)


def open_item(store: Store, item: RatingItemRow) -> RatingItemRow:
    if not item.id:
        item.id = uuid.uuid4().hex
    with store.transaction() as s:
        s.add(item)
    return item


def get_item(store: Store, item_id: str) -> RatingItemRow:
    with store.transaction() as s:
        item = s.get(RatingItemRow, item_id)
    if item is None:
        raise RatingStoreError("this pair no longer exists (it was removed or the database was reset): start a new one")
    return item


def update_item(store: Store, item_id: str, conversations: list, finish_reasons: list) -> RatingItemRow:
    """Store the next turn of an open item."""
    with store.transaction() as s:
        item = s.get(RatingItemRow, item_id)
        if item is None:
            raise RatingStoreError("this pair no longer exists: start a new one")
        if item.closed:
            raise RatingStoreError("this pair was already judged: start a new one")
        item.conversations, item.finish_reasons = conversations, finish_reasons
    return item


def _judge(store: Store, row: VoteRow | ScoreRow) -> VoteRow | ScoreRow:
    try:
        with store.transaction() as s:
            s.add(row)
            s.flush()  # the INSERT first: takes the write lock, and the unique item_id stops a second judgement
            item = s.get(RatingItemRow, row.item_id)
            if item is None:
                raise RatingStoreError("this pair no longer exists (it was removed or the database was reset)")
            if item.closed:
                raise RatingStoreError("this item was already judged; your judgement is stored once")
            item.closed = True
    except IntegrityError as err:
        raise RatingStoreError("this item was already judged; your judgement is stored once") from err
    return row


def add_vote(store: Store, row: VoteRow) -> VoteRow:
    return _judge(store, row)


def add_score(store: Store, row: ScoreRow) -> ScoreRow:
    return _judge(store, row)


def delete_item(store: Store, item_id: str) -> bool:
    with store.transaction() as s:
        item = s.get(RatingItemRow, item_id)
        if item is None:
            return False
        s.delete(item)
        return True


def _filtered(query, table, persona, rater, exclude_raters, since, until):
    if persona:
        query = query.where(table.persona_id == persona)
    if rater:
        query = query.where(table.rater == rater)
    if exclude_raters:
        query = query.where(table.rater.not_in(list(exclude_raters)))
    if since:
        query = query.where(table.created_at >= since)
    if until:
        query = query.where(table.created_at < until)
    return query.order_by(table.id)


def list_votes(
    store: Store,
    persona: str = "",
    rater: str = "",
    exclude_raters: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[VoteRow]:
    with store.transaction() as s:
        return list(s.scalars(_filtered(select(VoteRow), VoteRow, persona, rater, exclude_raters, since, until)))


def list_scores(
    store: Store,
    persona: str = "",
    rater: str = "",
    exclude_raters: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ScoreRow]:
    with store.transaction() as s:
        return list(s.scalars(_filtered(select(ScoreRow), ScoreRow, persona, rater, exclude_raters, since, until)))


def pair_counts(store: Store) -> dict[tuple[str, str], int]:
    """Votes so far per unordered pair of models (names sorted)."""
    with store.transaction() as s:
        rows = s.execute(
            select(VoteRow.model_a, VoteRow.model_b, func.count()).group_by(VoteRow.model_a, VoteRow.model_b)
        )
        counts: dict[tuple[str, str], int] = {}
        for a, b, n in rows:
            key = tuple(sorted((a, b)))
            counts[key] = counts.get(key, 0) + n
    return counts


def scores_to_repeat(store: Store, rater: str, owner: str, max_raters: int = 2) -> list[ScoreRow]:
    """Scored replies that fewer than `max_raters` raters judged and `rater` has not: shown again for agreement.
    A reply scored from a stored chat is shown again only to the chat's owner (`owner`: the login asking, ""
    without one): another login's chat never reaches this rater, not even as a repeat."""
    from rp_eval.store.chat import ConversationRow, TurnRow

    with store.transaction() as s:
        own_turns = (
            select(func.cast(TurnRow.id, String))
            .join(ConversationRow, ConversationRow.id == TurnRow.conversation_id)
            .where(ConversationRow.owner == owner)
        )
        shown = (ScoreRow.source_kind.is_(None)) | (ScoreRow.source_kind != "chat_turn")
        shown = shown | ScoreRow.source_id.in_(own_turns)
        keys = (
            select(ScoreRow.item_key)
            .group_by(ScoreRow.item_key)
            .having(func.count(func.distinct(ScoreRow.rater)) < max_raters)
        )
        mine = select(ScoreRow.item_key).where(ScoreRow.rater == rater)
        query = (
            select(ScoreRow)
            .where(ScoreRow.item_key.in_(keys), ScoreRow.item_key.not_in(mine), shown)
            .order_by(ScoreRow.id)
        )
        return list(s.scalars(query))


def count_rows(store: Store) -> dict[str, int]:
    with store.transaction() as s:
        return {
            "votes": s.scalar(select(func.count()).select_from(VoteRow)),
            "scores": s.scalar(select(func.count()).select_from(ScoreRow)),
            "open_items": s.scalar(
                select(func.count()).select_from(RatingItemRow).where(RatingItemRow.closed.is_(False))
            ),
        }


def raters(store: Store) -> list[str]:
    with store.transaction() as s:
        names = set(s.scalars(select(VoteRow.rater).distinct())) | set(s.scalars(select(ScoreRow.rater).distinct()))
    return sorted(names)


def personas_rated(store: Store) -> list[str]:
    with store.transaction() as s:
        ids = set(s.scalars(select(VoteRow.persona_id).distinct())) | set(
            s.scalars(select(ScoreRow.persona_id).distinct())
        )
    return sorted(i for i in ids if i)


def chat_turn_to_score(store: Store, rater: str, owner: str):
    """A stored chat reply (rp_eval.store.chat) of `owner`'s conversations (the login asking, "" without one) that
    `rater` has not scored yet, at random; None when none is left. Never another login's chat."""
    from rp_eval.store.chat import ConversationRow, TurnRow

    with store.transaction() as s:
        mine = select(ScoreRow.source_id).where(ScoreRow.source_kind == "chat_turn", ScoreRow.rater == rater)
        query = (
            select(TurnRow)
            .join(ConversationRow, ConversationRow.id == TurnRow.conversation_id)
            .where(ConversationRow.owner == owner)
        ).where(
            TurnRow.role == "assistant",
            TurnRow.discarded.is_(False),
            TurnRow.model != "",
            func.cast(TurnRow.id, String).not_in(mine),
        )
        return s.scalar(query.order_by(func.random()).limit(1))


def eval_reply_to_score(store: Store, rater: str):
    """An evaluation output (rp_eval.store.evaluation) that `rater` has not scored yet, at random, with its run's
    model; (reply row, model) or None when none is left."""
    from rp_eval.store.evaluation import EvalReplyRow, EvalRunRow

    with store.transaction() as s:
        mine = select(ScoreRow.source_id).where(ScoreRow.source_kind == "eval_reply", ScoreRow.rater == rater)
        query = (
            select(EvalReplyRow, EvalRunRow.model)
            .join(EvalRunRow, EvalRunRow.id == EvalReplyRow.run_id)
            .where(EvalReplyRow.text != "", func.cast(EvalReplyRow.id, String).not_in(mine))
        )
        row = s.execute(query.order_by(func.random()).limit(1)).first()
        return (row[0], row[1]) if row else None
