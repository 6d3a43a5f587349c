"""Imported character cards and who they belong to.

A card a rater imports is that rater's: only they see it (admins see every card) and only they or an admin
replace it. A card an admin imports (or the one person of a local app) belongs to the lab (owner ""), as do the
cards stored before cards had owners: everyone sees those, only an admin replaces them. A card's id comes from
its `extensions.rp_eval.id` (or its name); when that id is a shipped persona, or a card this person may not
replace, the import is kept under an id of its own (`<id>-<login>`, then `-2`, `-3` ...) rather than refused:
a popular card imported by two raters is then two cards, each rater's own, and nobody's import is lost.
The rows are `PersonaCardRow` and `PersonaCardImageRow` (rp_eval.store.chat); a card and its picture are
written in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rp_eval.store import Store
from rp_eval.store.chat import PersonaCardImageRow, PersonaCardRow

LAB = ""  # the owner of the lab's cards: an admin's imports and those stored before cards had owners
EVERYONE = None  # a viewer who sees every card (an admin, a local app, the CLI)
_MAX_TRIES = 1000


def visible(store: Store, viewer: str | None) -> list[PersonaCardRow]:
    """The cards `viewer` may use: the lab's and their own (every card for EVERYONE), oldest first."""
    with store.transaction() as s:
        q = select(PersonaCardRow).order_by(PersonaCardRow.id)
        if viewer is not EVERYONE:
            q = q.where(PersonaCardRow.owner.in_([LAB, viewer]))
        return list(s.scalars(q))


def _suffix(owner: str) -> str:
    return re.sub(r"[^\w-]+", "_", owner).strip("_") or "lab"


def _candidates(wanted: str, owner: str):
    yield wanted
    base = f"{wanted}-{_suffix(owner)}"
    yield base
    for n in range(2, _MAX_TRIES):
        yield f"{base}-{n}"


def save(
    store: Store,
    wanted: str,
    card: dict,
    image: bytes | None,
    owner: str,
    admin: bool,
    reserved: Collection[str] = (),
) -> str:
    """Store `card` (and its picture) for `owner` under `wanted`, or under an id of its own when `wanted` is in
    `reserved` (a shipped persona) or is a card `owner` may not replace; the id it was stored under."""
    for attempt in range(3):
        try:
            with store.transaction() as s:
                for persona_id in _candidates(wanted, owner):
                    if persona_id in reserved:
                        continue
                    row = s.scalar(select(PersonaCardRow).where(PersonaCardRow.persona_id == persona_id))
                    if row is None:
                        s.add(PersonaCardRow(persona_id=persona_id, card=card, owner=LAB if admin else owner))
                    elif admin or row.owner == owner:
                        row.card = card  # its owner stays: an admin's fix of a rater's card is still theirs
                    else:
                        continue
                    picture = s.get(PersonaCardImageRow, persona_id)
                    if picture is not None and image is None:
                        s.delete(picture)
                    elif picture is None and image is not None:
                        s.add(PersonaCardImageRow(persona_id=persona_id, image=image))
                    elif picture is not None:
                        picture.image = image
                    return persona_id
        except IntegrityError:  # another import took the same new id a moment earlier: look again
            if attempt == 2:
                raise
    raise RuntimeError(f"no free id for card '{wanted}'")
