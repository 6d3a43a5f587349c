"""A card's prompt made to fit the model's context, as SillyTavern fits one.

When the prompt (system prompt with the lorebook entries the recent turns call up, then the conversation) is
longer than the model reads less the reply's `max_new_tokens`, parts go in this order until it fits:
1. the card's example dialogues (`mes_example`), wherever a system message holds them;
2. lorebook entries, lowest rank first: the reverse of the order in which the book's token budget takes them
   (`rp_eval.chat.lorebook.rank`: constant entries last, then by `insertion_order`, then `priority`);
3. the oldest turns (`rp_eval.chat.generate.fit_messages`: every system message and the last user message stay).
Only a card whose system prompt alone (with the last message) does not fit is refused, by `CardTooLong`, naming
the tokens it needs and those there are. `Fitted` says what was left out, for the page to tell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rp_eval.chat import lorebook
from rp_eval.chat.formats import Message, PromptFormat, render_prompt
from rp_eval.chat.generate import ContextError, GenerationError, fit_messages


class CardTooLong(GenerationError):
    """The card's system prompt does not fit the model's context even with everything else left out."""


@dataclass
class Fitted:
    messages: list[Message]  # what the model is given, as the format takes them
    prompt: str
    tokens: int
    room: int  # the context less the reply's max_new_tokens
    lore: list[str] = field(default_factory=list)  # entries in the prompt
    over_budget: list[str] = field(default_factory=list)  # called up, but past the book's token budget
    budget: int = lorebook.DEFAULT_TOKEN_BUDGET  # the book's token budget
    lore_dropped: list[str] = field(default_factory=list)  # called up and within the budget, left out to fit
    examples_dropped: bool = False
    turns_dropped: int = 0

    @property
    def left_out(self) -> bool:
        return self.examples_dropped or bool(self.lore_dropped) or self.turns_dropped > 0


def _counter(tokenizer) -> Callable[[str], int]:
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def without_examples(messages: list[Message], blocks: list[str]) -> tuple[list[Message], bool]:
    """The messages with the example dialogues (any of `blocks`, longest first) taken out of every system
    message; and whether any was there."""
    out, found = [], False
    for m in messages:
        content = m["content"]
        if m["role"] == "system":
            for block in sorted(blocks, key=len, reverse=True):
                if block and block in content:
                    content = "\n\n".join(p for p in content.replace(block, "").split("\n\n") if p.strip())
                    found = True
        out.append(Message(role=m["role"], content=content))
    return out, found


def with_entries(messages: list[Message], entries: list[lorebook.Entry]) -> list[Message]:
    """The entries around the card's system prompt: the first system message wherever it stands (a new one in
    front when there is none)."""
    if not entries:
        return list(messages)
    first = next((i for i, m in enumerate(messages) if m["role"] == "system"), None)
    if first is None:
        return [Message(role="system", content=lorebook.apply("", entries)), *messages]
    out = list(messages)
    out[first] = Message(role="system", content=lorebook.apply(out[first]["content"], entries))
    return out


def called_up(messages: list[Message], book: dict | None, count) -> tuple[list, list, int]:
    """(entries within the book's budget, highest rank first; entries called up but over it; the budget)."""
    parsed = lorebook.parse_book(book)
    if parsed is None or not parsed.entries:
        return [], [], lorebook.DEFAULT_TOKEN_BUDGET
    kept, over = lorebook.rank(parsed, [m["content"] for m in messages if m["role"] != "system"], count)
    return kept, over, parsed.token_budget


def fit_card(
    fmt: PromptFormat,
    tokenizer,
    messages: list[Message],
    context: int,
    max_new_tokens: int,
    book: dict | None = None,
    examples: list[str] | None = None,
    prepare: Callable[[list[Message]], list[Message]] = list,
    refuse: bool = False,
) -> Fitted:
    """The prompt for the next reply in at most `context - max_new_tokens` tokens (the module docstring says what
    goes first).
    `examples`: how the example dialogues read in the system prompt (`Persona.example_blocks`); `prepare`: what
    the format needs done to the messages (`session.for_format`); `refuse`: no turn may be dropped."""
    room = context - max_new_tokens
    if room < 1:
        raise CardTooLong(key="err_fit_no_room", context=context, new=max_new_tokens)
    count = _counter(tokenizer)
    kept, over, budget = called_up(messages, book, count)
    fitted = Fitted([], "", 0, room, over_budget=[e.name for e in over], budget=budget)

    def size(candidate: list[Message]) -> int:
        return count(render_prompt(fmt, tokenizer, candidate))

    shaped = prepare(with_entries(messages, lorebook.in_order(kept)))
    if size(shaped) > room:
        base, fitted.examples_dropped = without_examples(messages, examples or [])
        shaped = prepare(with_entries(base, lorebook.in_order(kept)))
        while kept and size(shaped) > room:
            fitted.lore_dropped.append(kept.pop().name)  # the lowest-ranked entry goes first
            shaped = prepare(with_entries(base, lorebook.in_order(kept)))
    try:
        prompt, ids, final, dropped = fit_messages(tokenizer, fmt, shaped, room, refuse)
    except ContextError as err:
        if refuse:
            raise
        values = dict(tokens=err.tokens, room=room, context=context, new=max_new_tokens)
        raise CardTooLong(key="err_fit_card_too_long", **values) from None
    fitted.messages, fitted.prompt, fitted.tokens, fitted.turns_dropped = final, prompt, len(ids), dropped
    fitted.lore = [e.name for e in lorebook.in_order(kept)]
    return fitted
