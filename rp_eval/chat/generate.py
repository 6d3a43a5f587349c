"""How a reply gets generated and cut: the one function behind chat, evaluation and fitness.

`stream()` yields text deltas and then a `GenerationResult`; `generate()` returns the result;
`generate_batch()` runs many prompts at once (left padding, per-row stopping). All three share `_decode`,
so a reply is cut the same way everywhere:
- it ends at any end id (tokenizer eos, every `generation_config.eos_token_id`, the format's end-of-turn
  tokens) or at any literal end string, even one the model spelled as several ordinary tokens;
- nothing past the stop is returned or streamed (a tail that could still become a stop string is held back,
  and so is half of a multibyte character);
- a reply that hits the token cap is trimmed to its last whole sentence, unless that leaves nothing.

The steps themselves run in the model's generation service (rp_eval/chat/service.py), which batches
concurrent requests; the stopping, holding back and per-row accounting stay here (`_advance`, `_result`),
one piece of code for streaming and batches, written here (not `model.generate`) for that reason.

A conversation longer than the model's context loses its oldest turns (the system prompt and the last user
message stay) and the result says how many went (`dropped_turns`); `overflow: refuse` asks for an error instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Literal

from pydantic import Field

from rp_eval.chat import text as textrules
from rp_eval.chat.formats import Message, PromptFormat, end_markers, render_prompt, speaker_tags
from rp_eval.chat.sampler_params import SamplerParams
from rp_eval.errors import RpEvalError

FinishReason = Literal["eos", "stop_string", "length_trimmed", "length"]

DEFAULT_SPEAKERS = ["ユーザー", "User", "user", "あなた"]


class GenerationSettings(SamplerParams, frozen=True):
    """The sampler fields (rp_eval/chat/sampler_params.py, defined there once) and the reply's own settings."""

    max_new_tokens: int = Field(128, ge=1, le=8192)
    seed: int | None = Field(None, ge=0, lt=2**63)
    stop_strings: tuple[str, ...] = ()  # extra literal strings, e.g. the user's character name tag
    trim_to_sentence: bool = True
    engine: Literal["auto", "eager", "static"] = "auto"  # auto: static (CUDA graphs) on a GPU, eager on CPU
    overflow: Literal["drop_oldest", "refuse"] = "drop_oldest"  # a conversation longer than the context


@dataclass
class GenerationResult:
    text: str  # what a reader sees: cut at the stop, trimmed when capped
    raw_text: str  # everything the model produced, special tokens included
    finish_reason: FinishReason
    cut_mid_sentence: bool  # the cap hit inside a sentence (before any trimming)
    prompt_tokens: int
    new_tokens: int
    seconds: float
    first_token_seconds: float
    tokens_per_second: float
    stop: str = ""  # the end string or end token that stopped it
    prompt: str = field(default="", repr=False)
    dropped_turns: int = 0  # oldest messages left out to fit the model's context
    waited_seconds: float = 0.0  # from submit until its prefill began: the time spent waiting for a place
    token_ids: list[int] = field(default_factory=list, repr=False)  # every id sampled, the end token included

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "token_ids"}  # ids are for the API's logprobs


@dataclass(frozen=True)
class StopRules:
    end_ids: frozenset[int]
    stop_strings: tuple[str, ...]


_rules_cache: dict[tuple, tuple] = {}


# The generation service's admission order (rp_eval.chat.service): the page's requests (a rater's blind pair or
# single reply, the Chat tab) first, then the API's, then evaluation batches; arrival order within each.
PAGE, API, BATCH = 0, 1, 2


def stop_rules(tokenizer, model, fmt: PromptFormat, extra: tuple[str, ...] = ()) -> StopRules:
    """Every way a turn can end for this model, tokenizer and prompt format (worked out once per combination:
    the vocabulary is copied by `get_vocab`)."""
    key = (id(tokenizer), id(model), id(fmt), tuple(extra))
    kept = _rules_cache.get(key)
    if kept is not None and kept[0] is tokenizer and kept[1] is model and kept[2] is fmt:
        return kept[3]
    rules = _stop_rules(tokenizer, model, fmt, extra)
    if len(_rules_cache) > 256:
        _rules_cache.clear()
    _rules_cache[key] = (tokenizer, model, fmt, rules)
    return rules


def _stop_rules(tokenizer, model, fmt: PromptFormat, extra: tuple[str, ...]) -> StopRules:
    ids: set[int] = set()
    for source in (
        tokenizer.eos_token_id,
        getattr(model.generation_config, "eos_token_id", None),
        getattr(model.config, "eos_token_id", None),
    ):
        if isinstance(source, int):
            ids.add(source)
        elif source:
            ids.update(int(i) for i in source)
    end_tokens, end_strings = end_markers(fmt, tokenizer)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in end_tokens if t in vocab)
    special = [t for t in tokenizer.all_special_tokens if t and t != tokenizer.unk_token]
    strings = [*special, *end_strings, *speaker_tags(DEFAULT_SPEAKERS), *extra]
    return StopRules(frozenset(ids), tuple(dict.fromkeys(s for s in strings if s)))


class GenerationError(RpEvalError):
    """A request that can not be generated, with a message meant for the person who asked."""


class ContextError(GenerationError):
    """The conversation does not fit the model's context even with its oldest turns dropped."""

    def __init__(self, message: str, tokens: int = 0, room: int = 0) -> None:
        super().__init__(message)
        self.tokens, self.room = tokens, room


def _check(messages: list[Message], settings: GenerationSettings) -> None:
    if not messages or not any(m["role"] == "user" for m in messages):
        raise GenerationError("the conversation has no user message")
    if not messages[-1]["content"].strip():
        raise GenerationError("the message is empty: type something for the character to answer")


@dataclass
class _Row:
    ids: list[int] = field(default_factory=list)
    text: str = ""
    done: bool = False
    reason: FinishReason = "length"
    stop: str = ""
    cut_at: int | None = None
    placed: float = 0.0  # seconds from submit until its prefill began (waiting for a place in the engine)
    first_token: float = 0.0
    finished: float = 0.0
    slot: int = -1  # the static engine's KV row while it has one (-1: not placed yet, -2: released)


def _advance(row: _Row, token: int, tokenizer, rules: StopRules, settings: GenerationSettings, step: int) -> None:
    if token in rules.end_ids:
        row.done, row.reason, row.stop = True, "eos", tokenizer.convert_ids_to_tokens(token)
        return
    # stops are searched with never-completing bytes dropped: a stray byte inside `</s>` must not hide it
    row.text = textrules.drop_broken(
        tokenizer.decode(row.ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    )
    cut = textrules.find_stop(row.text, list(rules.stop_strings))
    if cut is not None:
        row.stop = next(s for s in rules.stop_strings if row.text.find(s) == cut)
        row.done, row.reason, row.cut_at = True, "stop_string", cut
    elif step + 1 >= settings.max_new_tokens:
        row.done, row.reason = True, "length"


def _result(row: _Row, tokenizer, settings: GenerationSettings, prompt: str, prompt_tokens: int) -> GenerationResult:
    visible = row.text if row.cut_at is None else row.text[: row.cut_at]
    text = textrules.clean_reply(visible)
    reason: FinishReason = row.reason
    mid = False
    if reason == "length" and not textrules.ends_sentence(text):
        mid = True
        trimmed = textrules.trim_to_sentence(text) if settings.trim_to_sentence else ""
        if trimmed:
            text, reason = trimmed, "length_trimmed"
    n = len(row.ids)
    decode_time = row.finished - row.first_token
    return GenerationResult(
        text=text,
        raw_text=tokenizer.decode(row.ids, skip_special_tokens=False, clean_up_tokenization_spaces=False),
        finish_reason=reason,
        cut_mid_sentence=mid,
        prompt_tokens=prompt_tokens,
        new_tokens=n,
        seconds=round(row.finished, 4),
        first_token_seconds=round(row.first_token, 4),
        tokens_per_second=round((n - 1) / decode_time, 2) if n > 1 and decode_time > 0 else 0.0,
        stop=row.stop,
        prompt=prompt,
        waited_seconds=round(row.placed, 4),
        token_ids=list(row.ids),
    )


def context_of(model) -> int:
    """How many positions the model reads (prompt and reply together)."""
    return int(getattr(model.config, "max_position_embeddings", 0) or 2048)


def fit_messages(
    tokenizer, fmt: PromptFormat, messages: list[Message], room: int, refuse: bool = False
) -> tuple[str, list[int], list[Message], int]:
    """(prompt, its ids, the messages kept, how many were dropped) for a prompt of at most `room` tokens: the
    oldest turns go first; every system message stays where it is (a client's mid-chat notes keep their place) and
    so does everything from the last user message on. Too long even then (or `refuse`): ContextError."""
    kept = list(messages)
    dropped = 0
    while True:
        prompt = render_prompt(fmt, tokenizer, kept)
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if not ids:
            raise GenerationError("the prompt tokenised to nothing")
        if len(ids) <= room:
            return prompt, ids, kept, dropped
        last_user = max((i for i, m in enumerate(kept) if m["role"] == "user"), default=0)
        turns = [i for i in range(last_user) if kept[i]["role"] != "system"]
        if refuse or not turns:
            raise ContextError(
                f"the conversation is {len(ids)} tokens"
                + ("" if refuse else " with only the system prompt and the last user message left")
                + f"; at most {room} fit: shorten it or lower max_new_tokens",
                tokens=len(ids),
                room=room,
            )
        # the oldest turn goes (a user line with the reply after it), never the last user message
        gone = set(turns[:1])
        if kept[turns[0]]["role"] == "user" and len(turns) > 1 and kept[turns[1]]["role"] == "assistant":
            gone.add(turns[1])
        kept = [m for i, m in enumerate(kept) if i not in gone]
        dropped += len(gone)


def _prompt(model, tokenizer, fmt: PromptFormat, messages: list[Message], settings: GenerationSettings):
    """The prompt text and ids, with the oldest turns dropped when the conversation is longer than the context."""
    _check(messages, settings)
    room = context_of(model) - settings.max_new_tokens
    if room < 1:
        raise GenerationError(
            f"max_new_tokens is {settings.max_new_tokens}, but this model reads at most {context_of(model)} tokens"
        )
    refuse = settings.overflow == "refuse"
    try:
        prompt, ids, _, dropped = fit_messages(tokenizer, fmt, messages, room, refuse)
    except ContextError as err:
        raise ContextError(
            f"the conversation is {err.tokens} tokens"
            + ("" if refuse else " with only the system prompt and the last user message left")
            + f"; this model reads {context_of(model)} including the {settings.max_new_tokens} new ones: "
            "shorten it or lower max_new_tokens",
            tokens=err.tokens,
            room=err.room,
        ) from None
    return prompt, ids, dropped


def _submit(model, tokenizer, fmt, conversations, settings, streaming: bool, priority: int = API):
    from rp_eval.chat.service import service_for

    prompts, encoded, dropped = [], [], []
    for messages in conversations:
        prompt, ids, n = _prompt(model, tokenizer, fmt, messages, settings)
        prompts.append(prompt)
        encoded.append(ids)
        dropped.append(n)
    rules = stop_rules(tokenizer, model, fmt, settings.stop_strings)
    request = service_for(model).submit(
        tokenizer, prompts, encoded, settings, rules, streaming=streaming, priority=priority
    )
    return request, rules, dropped


def stream(
    model,
    tokenizer,
    fmt: PromptFormat,
    messages: list[Message],
    settings: GenerationSettings = GenerationSettings(),
    priority: int = API,
) -> Iterator[str | GenerationResult]:
    """Text deltas as they become safe to show, then the `GenerationResult` (whose `text` is final).
    Closing the generator early (a Stop button, a client that left) stops the reply at the next step.
    `priority`: the generation service's admission order (rp_eval.chat.service: PAGE 0, API 1, BATCH 2)."""
    request, rules, dropped = _submit(model, tokenizer, fmt, [messages], settings, streaming=True, priority=priority)
    yield from _deltas(request, rules, dropped[0])


def _deltas(request, rules: StopRules, dropped: int) -> Iterator[str | GenerationResult]:
    shown = 0
    try:
        for (text,) in request.texts():
            visible = textrules.showable(text)
            safe = len(visible) - textrules.held_back(visible, list(rules.stop_strings))
            if safe > shown:  # snapshots of steps before the last one: the finished text comes as the result
                yield visible[shown:safe]
                shown = safe
    finally:
        request.cancel()
    (result,) = request.results
    result.dropped_turns = dropped
    if len(result.text) > shown:
        yield result.text[shown:]
    yield result


def stream_choices(
    model,
    tokenizer,
    fmt: PromptFormat,
    messages: list[Message],
    settings: GenerationSettings,
    n: int = 1,
    priority: int = API,
) -> Iterator[tuple[int, str] | list[GenerationResult]]:
    """`stream` for `n` replies to one conversation, submitted together as `n` rows of one request (seeded:
    seed, seed + 1, ...): `(index, text delta)` pairs as each row's text becomes safe to show, then the list of
    the `n` results (the API's `n`, SillyTavern's several swipes at once)."""
    request, rules, dropped = _submit(
        model, tokenizer, fmt, [messages] * n, settings, streaming=True, priority=priority
    )
    yield from _choice_deltas(request, rules, dropped[0], n)


def stream_prompt_choices(
    model,
    tokenizer,
    fmt: PromptFormat,
    prompt: str,
    ids: list[int],
    settings: GenerationSettings,
    n: int = 1,
    priority: int = API,
) -> Iterator[tuple[int, str] | list[GenerationResult]]:
    """`stream_choices` for a text completion: `n` replies to the prompt's ids as the client gave them."""
    from rp_eval.chat.service import service_for

    if not ids:
        raise GenerationError("the prompt is empty")
    rules = stop_rules(tokenizer, model, fmt, settings.stop_strings)
    request = service_for(model).submit(
        tokenizer, [prompt] * n, [list(ids)] * n, settings, rules, streaming=True, priority=priority
    )
    yield from _choice_deltas(request, rules, 0, n)


def _choice_deltas(request, rules: StopRules, dropped: int, n: int) -> Iterator[tuple[int, str] | list]:
    shown = [0] * n
    try:
        for texts in request.texts():
            for i, text in enumerate(texts):
                visible = textrules.showable(text)
                safe = len(visible) - textrules.held_back(visible, list(rules.stop_strings))
                if safe > shown[i]:
                    yield i, visible[shown[i] : safe]
                    shown[i] = safe
    finally:
        request.cancel()
    results = list(request.results)
    for i, result in enumerate(results):
        result.dropped_turns = dropped
        if len(result.text) > shown[i]:
            yield i, result.text[shown[i] :]
    yield results


def generate(
    model,
    tokenizer,
    fmt: PromptFormat,
    messages: list[Message],
    settings: GenerationSettings = GenerationSettings(),
    priority: int = API,
) -> GenerationResult:
    """One reply, cut and trimmed; see the module docstring for the rules."""
    *_, result = stream(model, tokenizer, fmt, messages, settings, priority)
    return result


def generate_batch(
    model,
    tokenizer,
    fmt: PromptFormat,
    conversations: list[list[Message]],
    settings: GenerationSettings = GenerationSettings(),
    priority: int = API,
) -> list[GenerationResult]:
    """One reply per conversation, submitted together (one request of several rows); each row stops on its own."""
    if not conversations:
        return []
    request, _, dropped = _submit(model, tokenizer, fmt, conversations, settings, streaming=False, priority=priority)
    try:
        results = request.wait()
    finally:
        request.cancel()
    for result, n in zip(results, dropped, strict=True):
        result.dropped_turns = n
    return results
