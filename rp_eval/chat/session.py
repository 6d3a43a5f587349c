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

from rp_eval.chat.cards import Card, card_to_persona
from rp_eval.chat.formats import Message, PromptFormat, render_prompt, speaker_tags
from rp_eval.chat.generate import GenerationResult, GenerationSettings, stream
from rp_eval.chat.personas import PERSONAS_DIR, Persona, load_personas
from rp_eval.errors import RpEvalError
from rp_eval.store import Store
from rp_eval.store import chat as chat_store

SIDES = ("a", "b")
# A prompt may not open with the character's line in formats whose turns must start with the user
# (Llama-2 [INST], Alpaca, most chat templates): there a short stage direction goes first.
LEADING_ASSISTANT_OK = frozenset({"chatml"})
OPENING_CUE = "（{user}が{char}の前にやって来た。会話を始めてください）"

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
    error: str = ""
    turn_id: int | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or bool(self.error)


def personas(store: Store, folder=PERSONAS_DIR) -> dict[str, Persona]:
    """The persona files, then the cards imported into the store (an import may not shadow a file)."""
    found = load_personas(folder)
    for row in chat_store.list_cards(store):
        found.setdefault(row.persona_id, card_to_persona(Card(row.card), row.persona_id))
    return found


def import_card(store: Store, card: Card) -> Persona:
    persona = card_to_persona(card)
    chat_store.save_card(store, persona.id, card.raw)
    return persona


def for_format(fmt: PromptFormat, messages: list[Message], persona_name: str = "", user: str = "あなた"):
    """The messages as the format can take them: a stage direction before a leading character line."""
    body = [m for m in messages if m["role"] != "system"]
    if fmt.name in LEADING_ASSISTANT_OK or not body or body[0]["role"] != "assistant":
        return list(messages)
    cue = Message(role="user", content=OPENING_CUE.format(user=user, char=persona_name or "相手"))
    head = [m for m in messages if m["role"] == "system"]
    return [*head, cue, *body]


def side_messages(store: Store, conversation_id: int, side: str) -> list[Message]:
    """The conversation as one side's model sees it: system, shared turns and that side's replies."""
    conv = chat_store.get_conversation(store, conversation_id)
    if conv is None:
        raise ChatError(f"conversation {conversation_id} does not exist")
    out = [Message(role="system", content=conv.system_prompt)] if conv.system_prompt.strip() else []
    for t in chat_store.turns(store, conversation_id):
        if t.side in ("", side):
            out.append(Message(role=t.role, content=t.content))
    return out


def start(
    store: Store,
    persona: Persona,
    models: list[str],
    user: str = "あなた",
    system_prompt: str | None = None,
    greeting: int = 0,
    owner: str = "",
) -> int:
    """A new conversation opened by the persona's first message; its id. `owner`: the login that starts it."""
    if not models or not all(models):
        raise ChatError("choose a model first")
    system = persona.system_text(user) if system_prompt is None else system_prompt
    conv = chat_store.new_conversation(store, persona.id, persona.model_dump(), models, system, user, owner)
    chat_store.add_turn(store, conv.id, "assistant", persona.greeting(user, greeting))
    return conv.id


def prompt_text(loaded, messages: list[Message], persona_name: str = "", user: str = "あなた") -> str:
    """Exactly what the model is given for the next reply, special tokens included."""
    return render_prompt(loaded.format, loaded.tokenizer, for_format(loaded.format, messages, persona_name, user))


def _settings_for(settings: GenerationSettings, user: str) -> GenerationSettings:
    extra = tuple(dict.fromkeys([*settings.stop_strings, *speaker_tags([user])]))
    return settings.model_copy(update={"stop_strings": extra})


def _store_reply(store: Store, conv_id: int, r: Reply, settings: GenerationSettings, prompt: str) -> None:
    res = r.result
    fields = dict(model=r.model, settings=settings.model_dump(mode="json"), prompt=prompt)
    if res is not None:
        fields.update(
            raw_text=res.raw_text,
            finish_reason=res.finish_reason,
            stop=res.stop,
            prompt_tokens=res.prompt_tokens,
            new_tokens=res.new_tokens,
            seconds=res.seconds,
            first_token_seconds=res.first_token_seconds,
            tokens_per_second=res.tokens_per_second,
        )
    else:
        fields.update(raw_text=r.text, finish_reason="error" if r.error else "stopped")
    text = res.text if res is not None else r.text
    r.turn_id = chat_store.add_turn(store, conv_id, "assistant", text, side=r.side, **fields).id


def reply(
    store: Store,
    conversation_id: int,
    message: str | None,
    settings: GenerationSettings = GenerationSettings(),
    cache=None,
    owner: str | None = None,
) -> Iterator[list[Reply]]:
    """Store `message` (None: regenerate the last replies) and stream every side's reply; yields after each step.
    With `owner`, only in that owner's conversation."""
    conv = chat_store.get_conversation(store, conversation_id, owner)
    if conv is None:
        raise ChatError("start a conversation first")
    if message is not None:
        if not message.strip():
            raise ChatError("the message is empty: type something for the character to answer")
        chat_store.add_turn(store, conversation_id, "user", message.strip())
    else:
        live = chat_store.turns(store, conversation_id)
        if not any(t.role == "user" for t in live):
            raise ChatError("there is no message to answer again yet")
        chat_store.discard_turns(store, [t.id for t in _after_last_user(live)])
    if cache is None:
        from rp_eval.models.loading import model_cache

        cache = model_cache()
    settings = _settings_for(settings, conv.user_name)
    name = conv.persona.get("name", "")
    replies = [Reply(side, model) for side, model in zip(SIDES, conv.models, strict=False)]
    streams, prompts = {}, {}
    for r in replies:
        try:
            loaded = cache.get(r.model)
            messages = for_format(loaded.format, side_messages(store, conversation_id, r.side), name, conv.user_name)
            prompts[r.side] = render_prompt(loaded.format, loaded.tokenizer, messages)
            streams[r.side] = stream(loaded.model, loaded.tokenizer, loaded.format, messages, settings)
        except RpEvalError as err:
            r.error = f"{r.model}: {err}"
    try:
        yield replies
        while not all(r.done for r in replies):
            for r in replies:
                if r.done:
                    continue
                try:
                    item = next(streams[r.side])
                except RpEvalError as err:
                    r.error = f"{r.model}: {err}"
                    continue
                if isinstance(item, GenerationResult):
                    r.result, r.text = item, item.text  # the final text may be shorter (trimmed at the cap)
                else:
                    r.text += item
            yield replies
    finally:
        for r in replies:
            if r.side in streams:
                streams[r.side].close()
            if r.turn_id is None and (r.side in prompts or r.error):
                _store_reply(store, conversation_id, r, settings, prompts.get(r.side, ""))


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
        raise ChatError("nothing to undo: only the opening message is left")
    chat_store.discard_turns(store, [t.id for t in live[users[-1] :]])


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
