"""What a person's chat choices say, as preference rows (`rp_eval.store.preferences` has the kinds).

`rp_eval.chat.session` calls these at the moments a choice is made: going on after a slot with several replies
(`kept`), regenerating a reply that was stopped (`stopped`), editing a reply (`edit`), picking one side of a
side-by-side chat (`side`). With the `chat_preferences` setting off they store nothing. The chooser is the
conversation's owner (raters only open their own chats). Nothing here raises on a choice that says nothing (one
reply, the same text): it stores nothing for it.
"""

from __future__ import annotations

from rp_eval import settings
from rp_eval.store import Store
from rp_eval.store import chat as chat_store
from rp_eval.store.preferences import PreferenceRow, record


def enabled() -> bool:
    return settings.config().chat_preferences


def _position(live: list, turn) -> int:
    return sum(1 for t in live if t.role == "user" and t.id < turn.id)


def _row(conv, kind: str, chosen, rejected, position: int) -> PreferenceRow:
    return PreferenceRow(
        conversation_id=conv.id,
        kind=kind,
        owner=conv.owner,
        persona_id=conv.persona_id,
        side=chosen.side,
        position=position,
        chosen_turn=chosen.id,
        rejected_turn=rejected.id if rejected is not chosen else None,
        chosen_model=chosen.model,
        rejected_model=rejected.model,
        chosen=chosen.content,
        rejected=rejected.content,
    )


def kept(store: Store, conv, live: list, last_replies: list) -> list[PreferenceRow]:
    """The person goes on after `last_replies` (the chosen reply of each side's last slot): each kept reply over
    every other reply of its slot."""
    if not enabled():
        return []
    rows = []
    for current in last_replies:
        for other in chat_store.alternatives(store, current.id):
            if other.id != current.id and other.content != current.content:
                rows.append(_row(conv, "kept", current, other, _position(live, current)))
    return record(store, rows) if rows else []


def stopped(store: Store, conv, live: list, previous: dict, new_turns: dict) -> list[PreferenceRow]:
    """Regenerated replies (side -> new turn id) whose earlier reply (side -> turn) was stopped: new over stopped."""
    if not enabled():
        return []
    rows = []
    for side, new_id in new_turns.items():
        old = previous.get(side)
        if old is not None and old.finish_reason == "stopped":
            new = next(t for t in chat_store.turns(store, conv.id) if t.id == new_id)
            rows.append(_row(conv, "stopped", new, old, _position(live, old)))
    return record(store, rows) if rows else []


def edited(store: Store, conv, turn, before: str, live: list) -> list[PreferenceRow]:
    """A reply rewritten by the person: the new text over the model's own (for the model that wrote it)."""
    if not enabled() or turn.role != "assistant" or turn.content == before:
        return []
    row = _row(conv, "edit", turn, turn, _position(live, turn))
    row.rejected = before
    return record(store, [row])


def picked(store: Store, conv, chosen, rejected, live: list) -> list[PreferenceRow]:
    """One side's last reply picked over the other side's in a side-by-side chat."""
    if not enabled():
        return []
    return record(store, [_row(conv, "side", chosen, rejected, _position(live, chosen))])
