"""The library side of a chat: persona -> messages -> prompt, streaming one or two replies, storing every turn.

`reply()` is the one path for a chat turn (send, regenerate): it stores the user's message, streams the
models' replies through `rp_eval.chat.generate.stream` (two sides advance a step each in turn, so they
stream together), and stores each reply with its prompt, raw text, finish reason and timing. It is a
generator of `Reply` lists, so the UI and tests consume it the same way; closing it early (the Stop button)
stores what was shown so far with the finish reason "stopped".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rp_eval.chat import choices, fitting, lorebook
from rp_eval.chat.cards import Card, card_to_persona
from rp_eval.chat.formats import Message, PromptFormat, render_prompt, speaker_tags
from rp_eval.chat.generate import PAGE, GenerationResult, GenerationSettings, context_of, stream
from rp_eval.chat.personas import PERSONAS_DIR, Persona, is_japanese, load_personas
from rp_eval.errors import RpEvalError
from rp_eval.store import Store
from rp_eval.store import cards as card_store
from rp_eval.store import chat as chat_store

SIDES = ("a", "b")
# A prompt may not open with the character's line in formats whose turns must start with the user
# (Llama-2 [INST], Alpaca, most chat templates): there a short stage direction goes first, in the language of
# the conversation's system prompt.
LEADING_ASSISTANT_OK = frozenset({"chatml"})
OPENING_CUE = "（{user}が{char}の前にやって来た。会話を始めてください）"
OPENING_CUE_EN = "({user} comes up to {char}. Begin the conversation.)"

FINISH_WORDS = {
    "eos": "ended",
    "stop_string": "stop string",
    "length_trimmed": "trimmed at the cap",
    "length": "cut at the cap",
    "stopped": "stopped by you",
    "error": "failed",
}


class ChatError(RpEvalError):
    """A chat request that can not be done (no conversation, empty message, unknown persona...)."""


@dataclass
class Reply:
    """One side's reply as it streams; `result` is set when it is done."""

    side: str
    model: str
    text: str = ""
    result: GenerationResult | None = None
    error: RpEvalError | None = None
    turn_id: int | None = None
    fitted: fitting.Fitted | None = None  # what of the card was left out to fit the model's context

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


def personas(store: Store, folder=PERSONAS_DIR, viewer: str | None = card_store.EVERYONE) -> dict[str, Persona]:
    """The persona files, then the cards imported into the store that `viewer` may use (`rp_eval.store.cards`:
    the lab's and their own; every card for EVERYONE). An import never shadows a file."""
    found = load_personas(folder)
    for row in card_store.visible(store, viewer):
        found.setdefault(row.persona_id, card_to_persona(Card(row.card), row.persona_id))
    return found


def import_card(
    store: Store, card: Card, image: bytes | None = None, owner: str = card_store.LAB, admin: bool = True
) -> Persona:
    """Store a card (and the PNG it came in, so an export keeps the portrait) as a persona of `owner`. Its id is
    the card's own unless that is a shipped persona or a card `owner` may not replace: then one of its own
    (`rp_eval.store.cards`); the persona returned has the id it was stored under."""
    persona = card_to_persona(card)
    stored = card_store.save(store, persona.id, card.raw, image, owner, admin, reserved=load_personas(PERSONAS_DIR))
    return persona if stored == persona.id else persona.model_copy(update={"id": stored})


def for_format(fmt: PromptFormat, messages: list[Message], persona_name: str = "", user: str = "あなた"):
    """The messages as the format can take them: a stage direction before a leading character line."""
    body = [m for m in messages if m["role"] != "system"]
    if fmt.name in LEADING_ASSISTANT_OK or not body or body[0]["role"] != "assistant":
        return list(messages)
    head = [m for m in messages if m["role"] == "system"]
    japanese = not head or is_japanese(head[0]["content"]) or not head[0]["content"].strip()
    cue = (OPENING_CUE if japanese else OPENING_CUE_EN).format(user=user, char=persona_name or "相手")
    return [*head, Message(role="user", content=cue), *body]


def with_lore(messages: list[Message], book: dict | None, count=len) -> tuple[list[Message], list[str]]:
    """The messages with the lorebook entries their recent turns call up around the card's system prompt (the first
    system message, wherever it stands), and the names of those entries (`rp_eval.chat.lorebook` has the rules)."""
    kept, _, _ = fitting.called_up(messages, book, count)
    entries = lorebook.in_order(kept)
    return fitting.with_entries(messages, entries), [e.name for e in entries]


def example_blocks(persona: dict, user: str) -> list[str]:
    """How a stored conversation's card writes its example dialogues into the system prompt ([] if unreadable)."""
    try:
        return Persona.model_validate(persona).example_blocks(user)
    except ValueError:
        return []


def fit(loaded, messages: list[Message], max_new_tokens: int, book=None, persona_name="", user="あなた", examples=()):
    """The prompt for the next reply made to fit `loaded`'s context (`rp_eval.chat.fitting`): examples, then
    lorebook entries, then the oldest turns left out as needed."""
    return fitting.fit_card(
        loaded.format,
        loaded.tokenizer,
        messages,
        context_of(loaded.model),
        max_new_tokens,
        book=book,
        examples=list(examples),
        prepare=lambda m: for_format(loaded.format, m, persona_name, user),
    )


def _history(conv, turns: list, side: str) -> list[Message]:
    out = [Message(role="system", content=conv.system_prompt)] if conv.system_prompt.strip() else []
    out += [Message(role=t.role, content=t.content) for t in turns if t.side in ("", side)]
    return out


def side_messages(store: Store, conversation_id: int, side: str) -> list[Message]:
    """The conversation as one side's model sees it: system, shared turns and that side's chosen replies."""
    conv = chat_store.get_conversation(store, conversation_id, chat_store.EVERYONE)  # callers checked the owner
    if conv is None:
        raise ChatError(key="err_chat_missing", id=conversation_id)
    return _history(conv, chat_store.turns(store, conversation_id), side)


def start(
    store: Store,
    persona: Persona,
    models: list[str],
    user: str = "あなた",
    system_prompt: str | None = None,
    greeting: int = 0,
    owner: str = "",
) -> int:
    """A new conversation opened by the persona's first message (or alternate greeting `greeting`); its id.
    `owner`: the login that starts it."""
    if not models or not all(models):
        raise ChatError(key="err_chat_no_model")
    system = persona.system_text(user) if system_prompt is None else system_prompt
    conv = chat_store.new_conversation(store, persona.id, persona.model_dump(), models, system, user, owner)
    chat_store.add_turn(store, conv.id, "assistant", persona.greeting(user, greeting))
    return conv.id


def switch_models(store: Store, conversation_id: int, models: list[str]) -> None:
    """Go on with other models from the next reply (each stored reply keeps the model that wrote it)."""
    conv = chat_store.get_conversation(store, conversation_id, chat_store.EVERYONE)  # callers checked the owner
    if conv is None:
        raise ChatError(key="err_chat_missing", id=conversation_id)
    if not models or not all(models) or len(models) != len(conv.models):
        raise ChatError(key="err_chat_no_model")
    if list(models) != list(conv.models):
        name = conv.persona.get("name", conv.persona_id)
        chat_store.update_conversation(
            store, conversation_id, models=list(models), title=f"{name} × {' / '.join(models)}"
        )


def prompt_text(
    loaded, messages: list[Message], persona_name: str = "", user: str = "あなた", book: dict | None = None
) -> str:
    """Exactly what the model is given for the next reply, special tokens and lorebook entries included."""
    messages, _ = with_lore(messages, book, _counter(loaded.tokenizer))
    return render_prompt(loaded.format, loaded.tokenizer, for_format(loaded.format, messages, persona_name, user))


def _counter(tokenizer):
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _settings_for(settings: GenerationSettings, user: str) -> GenerationSettings:
    extra = tuple(dict.fromkeys([*settings.stop_strings, *speaker_tags([user])]))
    return settings.model_copy(update={"stop_strings": extra})


def _store_reply(store: Store, conv_id: int, r: Reply, settings: GenerationSettings, prompt: str) -> int:
    res = r.result
    fields = dict(model=r.model, settings=settings.model_dump(mode="json"), prompt=prompt)
    if res is not None:
        fields.update(
            raw_text=res.raw_text,
            finish_reason=res.finish_reason,
            stop=res.stop[:200],
            prompt_tokens=res.prompt_tokens,
            new_tokens=res.new_tokens,
            seconds=res.seconds,
            first_token_seconds=res.first_token_seconds,
            tokens_per_second=res.tokens_per_second,
            waited_seconds=res.waited_seconds,
            dropped_turns=res.dropped_turns,
        )
    else:
        fields.update(raw_text=r.text, finish_reason="stopped")
    text = res.text if res is not None else r.text
    return chat_store.add_turn(store, conv_id, "assistant", text, side=r.side, **fields).id


def reply(
    store: Store,
    conversation_id: int,
    message: str | None,
    settings: GenerationSettings = GenerationSettings(),
    cache=None,
    owner: str | None = None,
) -> Iterator[list[Reply]]:
    """Store `message` (None: a new alternative of the last replies) and stream every side's reply; yields after
    each step. Every side's model and prompt are made ready before anything is stored; a request that fails
    leaves nothing behind (a side that fails is not stored, and the message goes when no side answered).
    Closing the generator early (Stop) keeps what was shown, marked "stopped". With `owner`, only in that owner's conversation."""
    conv = chat_store.get_conversation(store, conversation_id, owner)
    if conv is None:
        raise ChatError(key="err_chat_no_conversation")
    live = chat_store.turns(store, conversation_id)
    if message is not None:
        if not message.strip():
            raise ChatError(key="err_chat_empty")
        history = live
    else:
        if not any(t.role == "user" for t in live):
            raise ChatError(key="err_chat_nothing_to_regenerate")
        history = [t for t in live if t not in _after_last_user(live)]
    if cache is None:
        from rp_eval.models.loading import model_cache

        cache = model_cache()
    settings = _settings_for(settings, conv.user_name)
    name = conv.persona.get("name", "")
    book = conv.persona.get("character_book")
    examples = example_blocks(conv.persona, conv.user_name)
    replies = [Reply(side, model) for side, model in zip(SIDES, conv.models, strict=False)]
    streams, prompts = {}, {}
    for r in replies:
        try:
            loaded = cache.get(r.model)
            messages = _history(conv, history, r.side)
            if message is not None:
                messages.append(Message(role="user", content=message.strip()))
            r.fitted = fit(loaded, messages, settings.max_new_tokens, book, name, conv.user_name, examples)
            prompts[r.side] = r.fitted.prompt
            streams[r.side] = stream(
                loaded.model, loaded.tokenizer, loaded.format, r.fitted.messages, settings, priority=PAGE
            )
        except RpEvalError as err:
            r.error = ChatError(key="err_chat_side_failed", model=r.model, error=err)
    if not streams:
        raise next(r.error for r in replies if r.error)
    user_turn = chat_store.add_turn(store, conversation_id, "user", message.strip()) if message is not None else None
    previous = {t.side: t for t in _after_last_user(live)} if message is None else {}
    failed = False
    try:
        yield replies
        while not all(r.done for r in replies):
            for r in replies:
                if r.done:
                    continue
                try:
                    item = next(streams[r.side])
                except RpEvalError as err:
                    r.error = ChatError(key="err_chat_side_failed", model=r.model, error=err)
                    continue
                if isinstance(item, GenerationResult):
                    item.dropped_turns += r.fitted.turns_dropped
                    r.result, r.text = item, item.text  # the final text may be shorter (trimmed at the cap)
                else:
                    r.text += item
            yield replies
    except GeneratorExit:
        raise
    except BaseException:
        failed = True
        raise
    finally:
        for s in streams.values():
            s.close()
        if not failed:
            for r in replies:
                if r.side in streams and r.error is None and (r.result is not None or r.text):
                    r.turn_id = _store_reply(store, conversation_id, r, settings, prompts[r.side])
                    if r.side in previous:
                        chat_store.add_alternative(store, previous[r.side].id, r.turn_id)
            stored = {r.side: r.turn_id for r in replies if r.turn_id}
            if stored and message is not None:  # going on: the kept reply of each slot over the others
                choices.kept(store, conv, live, _after_last_user(live))
            elif stored:
                choices.stopped(store, conv, live, previous, stored)
        if user_turn is not None and not any(r.turn_id for r in replies):
            chat_store.delete_turns(store, [user_turn.id])


def _after_last_user(live: list) -> list:
    last_user = max((i for i, t in enumerate(live) if t.role == "user"), default=-1)
    return [t for t in live[last_user + 1 :] if t.role == "assistant"]


def undo(store: Store, conversation_id: int, owner: str | None = None) -> None:
    """Take back the last message and its replies (kept in the store, marked discarded); with `owner`, only in
    that owner's conversation."""
    if chat_store.get_conversation(store, conversation_id, owner) is None:
        raise ChatError(f"conversation {conversation_id} does not exist")
    live = chat_store.turns(store, conversation_id)
    users = [i for i, t in enumerate(live) if t.role == "user"]
    if not users:
        raise ChatError(key="err_chat_nothing_to_undo")
    chat_store.discard_turns(store, [t.id for t in live[users[-1] :]])


def alternatives(store: Store, conversation_id: int) -> tuple[int, int]:
    """(position of the chosen reply, number of replies) of the last turn's slot, on side a; (0, 0) with none."""
    last = _after_last_user(chat_store.turns(store, conversation_id))
    if not last:
        return 0, 0
    group = chat_store.alternatives(store, last[0].id)
    return [t.id for t in group].index(last[0].id), len(group)


def flip(store: Store, conversation_id: int, step: int) -> None:
    """Choose the previous (step -1) or next (+1) alternative of the last replies, on every side: the chosen one
    is what the next turn sees and what is stored as chosen."""
    moved = False
    for current in _after_last_user(chat_store.turns(store, conversation_id)):
        group = chat_store.alternatives(store, current.id)
        index = [t.id for t in group].index(current.id) + step
        if 0 <= index < len(group):
            chat_store.choose_alternative(store, current.id, group[index].id)
            moved = True
    if not moved:
        raise ChatError(key="err_chat_no_alternative")


def edit(store: Store, conversation_id: int, turn_id: int, content: str) -> None:
    """Change a message of the conversation (the user's or a reply); the earlier text is logged."""
    if not content.strip():
        raise ChatError(key="err_chat_edit_empty")
    live = chat_store.turns(store, conversation_id)
    turn = next((t for t in live if t.id == turn_id), None)
    if turn is None:
        raise ChatError(key="err_chat_edit_missing")
    chat_store.edit_turn(store, turn_id, content.strip())
    before, turn.content = turn.content, content.strip()
    conv = chat_store.get_conversation(store, conversation_id, chat_store.EVERYONE)
    choices.edited(store, conv, turn, before, live)


def prefer_side(store: Store, conversation_id: int, side: str, owner: str | None = None) -> None:
    """In a side-by-side chat, `side`'s last reply is the better one: stored as a preference between the two
    models (the `chat_preferences` setting off: nothing stored). With `owner`, only in that owner's conversation."""
    conv = chat_store.get_conversation(store, conversation_id, owner)
    if conv is None:
        raise ChatError(key="err_chat_no_conversation")
    live = chat_store.turns(store, conversation_id)
    last = {t.side: t for t in _after_last_user(live)}
    if len(conv.models) < 2 or side not in SIDES or len(last) < 2:
        raise ChatError(key="err_pref_no_pair")
    other = "b" if side == "a" else "a"
    choices.picked(store, conv, last[side], last[other], live)


def finish_words(turn_or_result) -> str:
    """'ended · 23 tokens · 41.0 tokens/s' for a stored turn or a GenerationResult."""
    reason = turn_or_result.finish_reason
    words = FINISH_WORDS.get(reason, reason)
    stop = getattr(turn_or_result, "stop", "")
    if reason == "stop_string" and stop:
        words += f" ({stop.strip() or repr(stop)})"
    n = turn_or_result.new_tokens
    tps = turn_or_result.tokens_per_second
    return f"{words} · {n} tokens · {tps:.1f} tokens/s" if n else words
