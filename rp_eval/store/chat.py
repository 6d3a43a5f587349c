"""Chat conversations, their turns, and imported character cards.

A conversation has a persona and one or two sides ("a", "b": the models that answer). Every turn is a row:
the user's message and the opening greeting are shared (side ""), each reply belongs to one side and keeps
its model, settings, exact prompt, shown text, raw text, finish reason and timing, so it can be rated and
evaluated later. Undo and regenerate never delete: they mark turns `discarded`.

Regenerating keeps the earlier replies as alternatives of the same slot (`ChatAlternativeRow`, SillyTavern's
swipes): the one not discarded is the chosen one, which the next turn sees and exports carry. Editing a
message changes its `content` and logs the text it had (`ChatEditRow`). Both live in tables of their own, so a
database made before them gains them on start without changing the turns table.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from rp_eval.store import Base, Store, _now


class ConversationRow(Base):
    __tablename__ = "chat_conversations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    persona_id: Mapped[str] = mapped_column(String(200), index=True)
    persona: Mapped[dict] = mapped_column(JSON, default=dict)  # the persona as it was when the chat began
    user_name: Mapped[str] = mapped_column(String(100), default="あなた")
    system_prompt: Mapped[str] = mapped_column(Text, default="")  # what the model saw (maybe edited)
    models: Mapped[list] = mapped_column(JSON, default=list)  # [model a] or [model a, model b]
    owner: Mapped[str] = mapped_column(String(200), default="", index=True)  # the login that started it ("": none)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class TurnRow(Base):
    __tablename__ = "chat_turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("chat_conversations.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))  # user | assistant
    side: Mapped[str] = mapped_column(String(2), default="")  # "" shared, "a" or "b"
    content: Mapped[str] = mapped_column(Text)  # what the reader sees
    model: Mapped[str] = mapped_column(String(200), default="")
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    prompt: Mapped[str] = mapped_column(Text, default="")
    raw_text: Mapped[str] = mapped_column(Text, default="")
    finish_reason: Mapped[str] = mapped_column(String(30), default="")
    stop: Mapped[str] = mapped_column(String(200), default="")
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    new_tokens: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    first_token_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    tokens_per_second: Mapped[float] = mapped_column(Float, default=0.0)
    waited_seconds: Mapped[float] = mapped_column(Float, default=0.0)  # for a place in the engine, before prefill
    dropped_turns: Mapped[int] = mapped_column(Integer, default=0)  # oldest messages left out to fit the context
    discarded: Mapped[bool] = mapped_column(Boolean, default=False)  # undone or regenerated
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    def to_dict(self) -> dict:
        out = {c.name: getattr(self, c.name) for c in self.__table__.columns}
        out["created_at"] = self.created_at.isoformat() if self.created_at else None
        return out


class ChatAlternativeRow(Base):
    """A reply made by regenerating: an alternative to the reply `group_id` (the slot's first reply)."""

    __tablename__ = "chat_alternatives"

    turn_id: Mapped[int] = mapped_column(ForeignKey("chat_turns.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[int] = mapped_column(Integer, index=True)


class ChatEditRow(Base):
    """One edit of a turn's text: what it said before and after."""

    __tablename__ = "chat_edits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("chat_turns.id", ondelete="CASCADE"), index=True)
    before: Mapped[str] = mapped_column(Text)
    after: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class PersonaCardImageRow(Base):
    """The picture of a card imported as PNG, kept byte for byte so an exported PNG carries the portrait."""

    __tablename__ = "persona_card_images"

    persona_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    image: Mapped[bytes] = mapped_column(LargeBinary)


class PersonaCardRow(Base):
    """A character card imported through the UI, kept whole so it exports unchanged."""

    __tablename__ = "persona_cards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    persona_id: Mapped[str] = mapped_column(String(200), unique=True, index=True)
    card: Mapped[dict] = mapped_column(JSON)
    owner: Mapped[str] = mapped_column(String(200), default="")  # the rater who imported it; "" the lab's (store.cards)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


# -- conversations ---------------------------------------------------------------------------------


def new_conversation(
    store: Store,
    persona_id: str,
    persona: dict,
    models: list[str],
    system_prompt: str,
    user_name: str = "あなた",
    owner: str = "",
) -> ConversationRow:
    row = ConversationRow(
        title=f"{persona.get('name', persona_id)} × {' / '.join(models)}",
        persona_id=persona_id,
        persona=persona,
        user_name=user_name,
        system_prompt=system_prompt,
        models=list(models),
        owner=owner,
    )
    with store.transaction() as s:
        s.add(row)
    return row


def delete_conversation(store: Store, conversation_id: int) -> None:
    """Remove a conversation whose first request failed (it holds only its opening); its turns go with it."""
    with store.transaction() as s:
        s.execute(delete(TurnRow).where(TurnRow.conversation_id == conversation_id))
        s.execute(delete(ConversationRow).where(ConversationRow.id == conversation_id))


EVERYONE = None  # the owner an admin, the CLI or the library itself passes to read every login's conversations


def get_conversation(store: Store, conversation_id: int, owner: str | None) -> ConversationRow | None:
    """The conversation, or None; only if it is `owner`'s (a login, "" for none); `EVERYONE`: whoever owns it."""
    with store.transaction() as s:
        row = s.get(ConversationRow, conversation_id)
    return row if row is not None and (owner is None or row.owner == owner) else None


def list_conversations(store: Store, owner: str | None, limit: int = 200) -> list[ConversationRow]:
    """The latest conversations of `owner` (`EVERYONE`: every login's, for admins and the CLI)."""
    with store.transaction() as s:
        q = select(ConversationRow)
        if owner is not None:
            q = q.where(ConversationRow.owner == owner)
        return list(s.scalars(q.order_by(ConversationRow.id.desc()).limit(limit)))


def update_conversation(store: Store, conversation_id: int, **fields) -> None:
    with store.transaction() as s:
        row = s.get(ConversationRow, conversation_id)
        for key, value in fields.items():
            setattr(row, key, value)


# -- turns -------------------------------------------------------------------------------------------


def add_turn(store: Store, conversation_id: int, role: str, content: str, side: str = "", **fields) -> TurnRow:
    row = TurnRow(conversation_id=conversation_id, role=role, content=content, side=side, **fields)
    with store.transaction() as s:
        s.add(row)
    return row


def turns(store: Store, conversation_id: int, include_discarded: bool = False) -> list[TurnRow]:
    with store.transaction() as s:
        q = select(TurnRow).where(TurnRow.conversation_id == conversation_id)
        if not include_discarded:
            q = q.where(TurnRow.discarded.is_(False))
        return list(s.scalars(q.order_by(TurnRow.id)))


def discard_turns(store: Store, turn_ids: list[int]) -> None:
    with store.transaction() as s:
        for row in s.scalars(select(TurnRow).where(TurnRow.id.in_(turn_ids))):
            row.discarded = True


def delete_turns(store: Store, turn_ids: list[int]) -> None:
    """Remove turns for good: only for a request that failed, so that nothing of it stays stored."""
    with store.transaction() as s:
        s.execute(delete(TurnRow).where(TurnRow.id.in_(turn_ids)))


# -- alternatives (swipes) and edits -----------------------------------------------------------------


def group_of(store: Store, turn_id: int) -> int:
    with store.transaction() as s:
        row = s.get(ChatAlternativeRow, turn_id)
        return row.group_id if row is not None else turn_id


def add_alternative(store: Store, old_id: int, new_id: int) -> None:
    """`new_id` replaces `old_id` as the chosen reply of its slot; the old one stays as an alternative."""
    group = group_of(store, old_id)
    with store.transaction() as s:
        s.add(ChatAlternativeRow(turn_id=new_id, group_id=group))
        s.get(TurnRow, old_id).discarded = True


def alternatives(store: Store, turn_id: int) -> list[TurnRow]:
    """Every reply of the slot `turn_id` belongs to, oldest first (discarded ones included)."""
    group = group_of(store, turn_id)
    with store.transaction() as s:
        members = select(ChatAlternativeRow.turn_id).where(ChatAlternativeRow.group_id == group)
        q = select(TurnRow).where((TurnRow.id == group) | TurnRow.id.in_(members)).order_by(TurnRow.id)
        return list(s.scalars(q))


def choose_alternative(store: Store, current_id: int, chosen_id: int) -> None:
    """Show `chosen_id` in place of `current_id` (both of one slot), in one transaction."""
    with store.transaction() as s:
        s.get(TurnRow, current_id).discarded = True
        s.get(TurnRow, chosen_id).discarded = False


def edit_turn(store: Store, turn_id: int, content: str) -> None:
    """Change what a turn says, logging the text it had."""
    with store.transaction() as s:
        row = s.get(TurnRow, turn_id)
        if row.content != content:
            s.add(ChatEditRow(turn_id=turn_id, before=row.content, after=content))
            row.content = content


def edits(store: Store, turn_id: int) -> list[ChatEditRow]:
    with store.transaction() as s:
        return list(s.scalars(select(ChatEditRow).where(ChatEditRow.turn_id == turn_id).order_by(ChatEditRow.id)))


def export_jsonl(store: Store, conversation_id: int, include_discarded: bool = False) -> str:
    """The conversation as JSON lines: one header line, then one line per turn."""
    conv = get_conversation(store, conversation_id, EVERYONE)  # callers checked the owner
    if conv is None:
        return ""
    header = {
        "conversation_id": conv.id,
        "title": conv.title,
        "persona_id": conv.persona_id,
        "persona": conv.persona,
        "user_name": conv.user_name,
        "system_prompt": conv.system_prompt,
        "models": conv.models,
        "created_at": conv.created_at.isoformat() if conv.created_at else None,
    }
    lines = [json.dumps(header, ensure_ascii=False)]
    lines += [json.dumps(t.to_dict(), ensure_ascii=False) for t in turns(store, conversation_id, include_discarded)]
    return "\n".join(lines) + "\n"


# -- imported cards ----------------------------------------------------------------------------------


def save_card(store: Store, persona_id: str, card: dict) -> PersonaCardRow:
    """Store an imported card under a persona id (replacing an earlier import with the same id)."""
    with store.transaction() as s:
        row = s.scalar(select(PersonaCardRow).where(PersonaCardRow.persona_id == persona_id))
        if row is None:
            row = PersonaCardRow(persona_id=persona_id, card=card)
            s.add(row)
        else:
            row.card = card
    return row


def save_card_image(store: Store, persona_id: str, image: bytes | None) -> None:
    """The portrait of an imported card (None: the card came without one, so an earlier one is removed)."""
    with store.transaction() as s:
        row = s.get(PersonaCardImageRow, persona_id)
        if image is None:
            if row is not None:
                s.delete(row)
        elif row is None:
            s.add(PersonaCardImageRow(persona_id=persona_id, image=image))
        else:
            row.image = image


def card_image(store: Store, persona_id: str) -> bytes | None:
    with store.transaction() as s:
        row = s.get(PersonaCardImageRow, persona_id)
        return row.image if row is not None else None


def list_cards(store: Store) -> list[PersonaCardRow]:
    with store.transaction() as s:
        return list(s.scalars(select(PersonaCardRow).order_by(PersonaCardRow.id)))
