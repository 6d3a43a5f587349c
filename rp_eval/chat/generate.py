"""How a reply gets generated and cut: the one function behind chat, evaluation and fitness.

`stream()` yields text deltas and then a `GenerationResult`; `generate()` returns the result;
`generate_batch()` runs many prompts at once (left padding, per-row stopping). All three share `_decode`,
so a reply is cut the same way everywhere:
- it ends at any end id (tokenizer eos, every `generation_config.eos_token_id`, the format's end-of-turn
  tokens) or at any literal end string, even one the model spelled as several ordinary tokens;
- nothing past the stop is returned or streamed (a tail that could still become a stop string is held back,
  and so is half of a multibyte character);
- a reply that hits the token cap is trimmed to its last whole sentence, unless that leaves nothing.

This is a plain eager decode loop with a dynamic cache, written here (not `model.generate`) because the
stopping, holding back and per-row accounting must be one piece of code for streaming and batches.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
from pydantic import BaseModel, Field
from transformers import (
    LogitsProcessorList,
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from rp_eval.chat import text as textrules
from rp_eval.chat.engine import EagerEngine, StaticEngine, supports_static
from rp_eval.chat.formats import Message, PromptFormat, end_markers, render_prompt, speaker_tags
from rp_eval.errors import RpEvalError

FinishReason = Literal["eos", "stop_string", "length_trimmed", "length"]

DEFAULT_SPEAKERS = ["ユーザー", "User", "user", "あなた"]


class GenerationSettings(BaseModel, frozen=True):
    max_new_tokens: int = Field(128, ge=1, le=8192)
    temperature: float = Field(0.7, ge=0.0, le=5.0)  # 0 means greedy
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    min_p: float = Field(0.0, ge=0.0, le=1.0)  # drop tokens below min_p x the top token's probability; 0 = off
    repetition_penalty: float = Field(1.0, gt=0.0, le=3.0)
    seed: int | None = None
    stop_strings: tuple[str, ...] = ()  # extra literal strings, e.g. the user's character name tag
    trim_to_sentence: bool = True
    engine: Literal["auto", "eager", "static"] = "auto"  # auto: static (CUDA graphs) on a GPU, eager on CPU


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

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StopRules:
    end_ids: frozenset[int]
    stop_strings: tuple[str, ...]


def stop_rules(tokenizer, model, fmt: PromptFormat, extra: tuple[str, ...] = ()) -> StopRules:
    """Every way a turn can end for this model, tokenizer and prompt format."""
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


def _check(messages: list[Message], settings: GenerationSettings) -> None:
    if not messages or not any(m["role"] == "user" for m in messages):
        raise GenerationError("the conversation has no user message")
    if not messages[-1]["content"].strip():
        raise GenerationError("the message is empty: type something for the character to answer")


def _sampler(settings: GenerationSettings, device: torch.device):
    processors = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
    greedy = settings.temperature == 0
    if not greedy:
        processors.append(TemperatureLogitsWarper(settings.temperature))
        if settings.top_k:
            processors.append(TopKLogitsWarper(settings.top_k))
        if settings.top_p < 1.0:
            processors.append(TopPLogitsWarper(settings.top_p))
        if settings.min_p > 0:
            processors.append(MinPLogitsWarper(settings.min_p))
    rng = torch.Generator(device=device)
    rng.manual_seed(settings.seed if settings.seed is not None else torch.seed())

    def sample(seen: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        scores = processors(seen, logits.float())
        if greedy:
            return scores.argmax(-1)
        return torch.multinomial(scores.softmax(-1), 1, generator=rng).squeeze(-1)

    return sample


@dataclass
class _Row:
    ids: list[int] = field(default_factory=list)
    text: str = ""
    done: bool = False
    reason: FinishReason = "length"
    stop: str = ""
    cut_at: int | None = None
    first_token: float = 0.0
    finished: float = 0.0


def _engine(model, choice: str = "auto"):
    """The static engine (CUDA graphs on a GPU) where the model supports it, else the eager one; kept on the
    model so captured graphs are reused by the next request."""
    if choice == "eager" or (choice == "auto" and model.device.type != "cuda") or not supports_static(model):
        return EagerEngine(model)
    engine = getattr(model, "_rp_eval_static_engine", None)
    if engine is None:
        engine = StaticEngine(model)
        model._rp_eval_static_engine = engine
    return engine


def _decode(
    model, tokenizer, prompts: list[str], settings: GenerationSettings, rules: StopRules
) -> Iterator[list[_Row]]:
    """The decode loop for a batch of prompt texts; yields the rows after every step."""
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    if any(len(e) == 0 for e in encoded):
        raise GenerationError("a prompt tokenised to nothing")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(rules.end_ids), 0)
    width = max(len(e) for e in encoded)
    device = model.device
    input_ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded], device=device)
    mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=device)
    seen = input_ids
    sample = _sampler(settings, device)
    rows = [_Row() for _ in prompts]
    engine = _engine(model, settings.engine)
    if isinstance(engine, StaticEngine) and not engine.fits(len(prompts), width + settings.max_new_tokens):
        engine = EagerEngine(model)
    # On a GPU the next step is queued before this step's tokens are checked on the CPU, so the text
    # decoding and stop checks overlap the model; rows that have just finished ride along one step for free.
    pipelined = device.type == "cuda"
    host = torch.empty(len(prompts), dtype=torch.long, pin_memory=pipelined)
    start = time.perf_counter()
    with torch.inference_mode():
        logits = engine.prefill(input_ids, mask, settings.max_new_tokens)
        next_ids = sample(seen, logits)
        for step in range(settings.max_new_tokens):
            more = step + 1 < settings.max_new_tokens
            if pipelined:
                host.copy_(next_ids, non_blocking=True)
                copied = torch.cuda.Event()
                copied.record()
                if more:
                    seen = torch.cat([seen, next_ids[:, None]], dim=1)
                    logits = engine.step(next_ids)
                copied.synchronize()
                tokens = host.tolist()
            else:
                tokens = next_ids.tolist()
            now = time.perf_counter()
            for row, token in zip(rows, tokens, strict=True):
                if row.done:
                    continue
                if not row.ids:
                    row.first_token = now - start
                row.ids.append(token)
                _advance(row, token, tokenizer, rules, settings, step)
                if row.done:
                    row.finished = now - start
            yield rows
            if all(r.done for r in rows) or not more:
                break
            if not pipelined:
                fed = torch.tensor([pad if r.done else r.ids[-1] for r in rows], device=device)
                seen = torch.cat([seen, fed[:, None]], dim=1)
                logits = engine.step(fed)
            next_ids = sample(seen, logits)


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
    )


def _prompt(model, tokenizer, fmt: PromptFormat, messages: list[Message], settings: GenerationSettings):
    _check(messages, settings)
    return render_prompt(fmt, tokenizer, messages), stop_rules(tokenizer, model, fmt, settings.stop_strings)


def stream(
    model,
    tokenizer,
    fmt: PromptFormat,
    messages: list[Message],
    settings: GenerationSettings = GenerationSettings(),
) -> Iterator[str | GenerationResult]:
    """Text deltas as they become safe to show, then the `GenerationResult` (whose `text` is final)."""
    prompt, rules = _prompt(model, tokenizer, fmt, messages, settings)
    shown = 0
    for (row,) in _decode(model, tokenizer, [prompt], settings, rules):
        if row.done:
            break
        visible = textrules.showable(row.text)
        safe = len(visible) - textrules.held_back(visible, list(rules.stop_strings))
        if safe > shown:
            yield visible[shown:safe]
            shown = safe
    result = _result(row, tokenizer, settings, prompt, len(tokenizer(prompt, add_special_tokens=False)["input_ids"]))
    if len(result.text) > shown:
        yield result.text[shown:]
    yield result


def generate(
    model,
    tokenizer,
    fmt: PromptFormat,
    messages: list[Message],
    settings: GenerationSettings = GenerationSettings(),
) -> GenerationResult:
    """One reply, cut and trimmed; see the module docstring for the rules."""
    *_, result = stream(model, tokenizer, fmt, messages, settings)
    return result


def generate_batch(
    model,
    tokenizer,
    fmt: PromptFormat,
    conversations: list[list[Message]],
    settings: GenerationSettings = GenerationSettings(),
) -> list[GenerationResult]:
    """One reply per conversation, generated together; each row stops on its own."""
    if not conversations:
        return []
    prompts = []
    for messages in conversations:
        prompt, rules = _prompt(model, tokenizer, fmt, messages, settings)
        prompts.append(prompt)
    *_, rows = _decode(model, tokenizer, prompts, settings, rules)  # the rows after the last step
    return [
        _result(row, tokenizer, settings, p, len(tokenizer(p, add_special_tokens=False)["input_ids"]))
        for row, p in zip(rows, prompts, strict=True)
    ]
