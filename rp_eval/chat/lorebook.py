"""A card's lorebook (`character_book`, SillyTavern's World Info): which entries go into the prompt, and where.

The rules follow SillyTavern's World Info for what a Character Card V2/V3 book holds:
- an entry that is not `enabled` is never used; a `constant` entry always is;
- otherwise one of its `keys` must appear in the last `scan_depth` messages (the book's, default 2), matched
  as a substring, ignoring case unless `case_sensitive`; a key written `/pattern/flags` is a regular expression;
- a `selective` entry with `secondary_keys` also needs them, by `extensions.selectiveLogic`:
  0 AND ANY (one of them, the default), 1 NOT ALL (not all of them), 2 NOT ANY (none), 3 AND ALL (all);
- the book's `token_budget` caps what is inserted: constant entries first, then by `insertion_order`, higher
  first (`priority` breaks ties), until the next entry would not fit (those left out are reported as over it);
- when the whole prompt is longer than the model's context, entries go in the reverse of that order, lowest
  first (`rp_eval.chat.fitting`);
- the entries kept go in by `insertion_order`, lowest first: `position` "before_char" ones before the character
  definition (the system prompt), the others ("after_char", the default) after it.
Recursive scanning and V3 decorators are not applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_SCAN_DEPTH = 2
DEFAULT_TOKEN_BUDGET = 512
LOGIC = {0: "and_any", 1: "not_all", 2: "not_any", 3: "and_all"}


@dataclass(frozen=True)
class Entry:
    name: str
    content: str
    keys: tuple[str, ...]
    secondary_keys: tuple[str, ...] = ()
    constant: bool = False
    selective: bool = False
    logic: str = "and_any"
    insertion_order: int = 100
    priority: int = 0
    case_sensitive: bool = False
    position: str = "after_char"
    enabled: bool = True


@dataclass(frozen=True)
class Book:
    entries: tuple[Entry, ...]
    scan_depth: int = DEFAULT_SCAN_DEPTH
    token_budget: int = DEFAULT_TOKEN_BUDGET


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return ()
    return tuple(s.strip() for s in (str(v) for v in value) if s.strip())


def _int(value: object, default: int) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def parse_book(book: object) -> Book | None:
    """A `character_book` object as a Book (None when there is none); a malformed entry is skipped."""
    if not isinstance(book, dict):
        return None
    entries = []
    for i, raw in enumerate(book.get("entries") or []):
        if not isinstance(raw, dict) or not str(raw.get("content") or "").strip():
            continue
        ext = raw.get("extensions") if isinstance(raw.get("extensions"), dict) else {}
        entries.append(
            Entry(
                name=str(raw.get("name") or raw.get("comment") or f"#{i + 1}"),
                content=str(raw["content"]),
                keys=_strings(raw.get("keys")),
                secondary_keys=_strings(raw.get("secondary_keys")),
                constant=bool(raw.get("constant")),
                selective=bool(raw.get("selective")),
                logic=LOGIC.get(_int(ext.get("selectiveLogic"), 0), "and_any"),
                insertion_order=_int(raw.get("insertion_order"), 100),
                priority=_int(raw.get("priority"), 0),
                case_sensitive=bool(raw.get("case_sensitive")),
                position="before_char" if raw.get("position") == "before_char" else "after_char",
                enabled=raw.get("enabled", True) is not False,
            )
        )
    depth = _int(book.get("scan_depth"), DEFAULT_SCAN_DEPTH)
    budget = _int(book.get("token_budget"), DEFAULT_TOKEN_BUDGET)
    return Book(tuple(entries), max(depth, 1), max(budget, 1))


def _found(key: str, text: str, case_sensitive: bool) -> bool:
    regex = re.fullmatch(r"/(.+)/([a-z]*)", key)
    if regex:
        flags = re.IGNORECASE if "i" in regex.group(2) or not case_sensitive else 0
        try:
            return re.search(regex.group(1), text, flags) is not None
        except re.error:
            pass
    return key in text if case_sensitive else key.casefold() in text.casefold()


def _active(entry: Entry, text: str) -> bool:
    if not entry.enabled:
        return False
    if entry.constant:
        return True
    if not any(_found(k, text, entry.case_sensitive) for k in entry.keys):
        return False
    if not (entry.selective and entry.secondary_keys):
        return True
    hits = [_found(k, text, entry.case_sensitive) for k in entry.secondary_keys]
    return {"and_any": any(hits), "and_all": all(hits), "not_any": not any(hits), "not_all": not all(hits)}[entry.logic]


def rank(book: Book, recent: list[str], count: Callable[[str], int] = len) -> tuple[list[Entry], list[Entry]]:
    """(the entries the last `book.scan_depth` of `recent` (oldest first) call up that fit the token budget, highest
    rank first; those that were called up but did not fit). The rank is the budget's order: constant entries, then
    higher `insertion_order`, then higher `priority`. `count` gives an entry's size (the model's tokenizer, or
    characters). As in SillyTavern, the first entry that does not fit ends the filling: the rest are over it too."""
    text = "\n".join(recent[-book.scan_depth :])
    active = [e for e in book.entries if _active(e, text)]
    ranked = sorted(active, key=lambda e: (not e.constant, -e.insertion_order, -e.priority))
    used = 0
    for i, entry in enumerate(ranked):
        size = count(entry.content)
        if used + size > book.token_budget:
            return ranked[:i], ranked[i:]
        used += size
    return ranked, []


def select_entries(book: Book, recent: list[str], count: Callable[[str], int] = len) -> list[Entry]:
    """The entries the last `book.scan_depth` of `recent` (oldest first) call up, in insertion order, within the
    token budget (`rank` has the order in which the budget takes them)."""
    return in_order(rank(book, recent, count)[0])


def in_order(entries: list[Entry]) -> list[Entry]:
    """Entries in the order they go into the prompt: `insertion_order`, lowest first."""
    return sorted(entries, key=lambda e: e.insertion_order)


def apply(system: str, entries: list[Entry]) -> str:
    """The system prompt with the entries around it, by their position."""
    before = [e.content.strip() for e in entries if e.position == "before_char"]
    after = [e.content.strip() for e in entries if e.position != "before_char"]
    return "\n\n".join(p for p in [*before, system, *after] if p.strip())
