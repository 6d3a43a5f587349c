"""Text Completions and the tokenizer routes, beside the chat API of `rp_eval.api` (same errors, key, queue).

- `POST /v1/completions`: the prompt as text, as token ids, or a list of such prompts (`n` choices each, one
  prompt when streaming), in OpenAI's fields and in the text-generation-webui dialect SillyTavern's Text Completion sends
  (`max_new_tokens`, `stopping_strings`, `sampler_seed`, `rep_pen`, `truncation_length`, `add_bos_token` ...).
  The prompt goes to the model as given: no chat format around it. The reply stops and is cut by the same rules
  as a chat reply (every end id and end string; a capped reply trimmed to its last sentence).
  `echo` with `logprobs` gives the prompt's per-token log-probabilities by one forward pass (`rp_eval.scoring`),
  and with `max_tokens: 0` only those: what lm-eval's loglikelihood tasks ask for.
  With no `model` field, the first registered model answers (text-generation-webui answers with the one it has
  loaded; SillyTavern's ooba type sends none). The tokenizer routes are in `rp_eval.api_tokens`.

The samplers SillyTavern offers run in the engine (min_p, typical_p, DRY, XTC, logit_bias, banned_strings,
custom_token_bans, ban_eos_token: rp_eval/chat/sampling.py). A sampler field this server does not have
(mirostat, tfs, top_a, smoothing ...) is accepted at its neutral value and refused by name at any other, so a
reply never silently differs from what was asked.
"""

from __future__ import annotations

import json
import time
import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model

from rp_eval import scoring, settings
from rp_eval.api import (
    OPENAI_REASON,
    ApiError,
    _check_key,
    _extra,
    _Stream,
    check_choices,
    check_stops,
    check_token_ids,
    drain,
    engine_values,
    events,
    in_slot,
    parse,
    registered,
    started,
)
from rp_eval.chat.generate import API, GenerationResult, GenerationSettings, context_of, stream_prompt_choices
from rp_eval.chat.sampler_params import api_fields
from rp_eval.models.loading import model_cache

router = APIRouter(prefix="/v1", dependencies=[Depends(_check_key)])

# Sampler fields of text-generation-webui, Tabby, vLLM and llama.cpp that this server does not apply: each is
# accepted at the values listed (unset, or the value that leaves the output as it is) and refused otherwise.
NEUTRAL: dict[str, tuple] = {
    "typical": (1,),
    "tfs": (1,),
    "tfs_z": (1,),
    "top_a": (0,),
    "epsilon_cutoff": (0,),
    "eta_cutoff": (0,),
    "min_length": (0,),
    "min_tokens": (0,),
    "num_beams": (1,),
    "penalty_alpha": (0,),
    "no_repeat_ngram_size": (0,),
    "encoder_repetition_penalty": (1,),
    "repetition_decay": (0,),
    "dynamic_temperature": (False,),
    "smoothing_factor": (0,),
    "skew": (0,),
    "mirostat_mode": (0,),
    "mirostat": (0,),
    "max_tokens_second": (0,),
    "guidance_scale": (1,),
    "grammar_string": ("",),
    "guided_grammar": ("",),
    "json_schema": ({},),
    "guided_json": ({},),
    "ignore_eos": (False,),
    "include_stop_str_in_output": (False,),
    "best_of": (1,),
    "suffix": ("",),
}
# how many recent tokens the repetition penalty looks at: 0 (or -1) is the whole context, which is what the
# engine does; any other range is refused while a repetition penalty is on
PENALTY_RANGES = ("rep_pen_range", "repetition_penalty_range", "repeat_last_n")


class _TextRequest(BaseModel):
    # the rest of what SillyTavern sends is its own bookkeeping (api_type, api_server ...), the llama.cpp
    # aliases of fields below (n_predict, num_ctx, repeat_penalty ...) or settings of a sampler that is off
    # (dry_base while dry_multiplier is 0, mirostat_tau while mirostat_mode is 0 ...): not read
    model_config = ConfigDict(extra="allow")

    model: str | None = Field(None, max_length=300)
    prompt: str | list[int] | list[str] | list[list[int]] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=0)
    max_new_tokens: int | None = Field(None, ge=0)  # text-generation-webui's name
    rep_pen: float | None = Field(None, gt=0.0, le=3.0)  # SillyTavern's name beside repetition_penalty
    do_sample: bool = True  # false: greedy
    stop: str | list[str] | None = None
    stopping_strings: list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)  # negative: a random seed
    sampler_seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    stream: bool = False
    n: int = Field(1, ge=1)  # replies to each prompt (seeded: seed, seed + 1, ...): at most limit_choices
    echo: bool = False
    logprobs: int | None = Field(None, ge=0)
    add_bos_token: bool = True
    skip_special_tokens: bool = True  # either way: a reply ends at the first special token, none is shown
    truncation_length: int | None = Field(None, ge=1)
    custom_token_bans: str | list[int] | None = Field(None, max_length=10_000)  # "1, 2, 3" (SillyTavern) or ids


# the sampler fields come from their one definition; the text dialect widens top_p, top_k, repetition_penalty
# (`DIALECT` in rp_eval/chat/sampler_params.py) and `_settings` maps those values onto the engine's
TextRequest = create_model("TextRequest", __base__=_TextRequest, **api_fields("text"))


def _refuse_unsupported(req: TextRequest) -> None:
    given = req.model_extra or {}
    for field, neutral in NEUTRAL.items():
        value = given.get(field)
        if value is not None and not any(
            value == v and isinstance(value, bool) == isinstance(v, bool) for v in neutral
        ):
            raise ApiError(
                f"'{field}' is not supported by this server: send {json.dumps(neutral[0])} or leave it out",
                param=field,
                code="unsupported_parameter",
            )
    penalty = req.repetition_penalty or req.rep_pen or 1.0
    for field in PENALTY_RANGES:
        value = given.get(field)
        if penalty != 1.0 and value not in (None, 0, -1):
            raise ApiError(
                f"'{field}': the repetition penalty applies to the whole context here; send 0 or leave it out",
                param=field,
                code="unsupported_parameter",
            )


def unicode_text(value: str, field: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ApiError(
            f"{field}: the text holds a lone surrogate at character {err.start} (not Unicode text)", param=field
        ) from err
    return value


def _prompts(req: TextRequest, tokenizer, model) -> list[list[int]]:
    """The prompt(s) as token ids; text is tokenised (with the BOS token unless add_bos_token is false)."""
    p = req.prompt
    given = [p] if isinstance(p, str) or (p and isinstance(p[0], int)) else list(p)
    out = []
    for i, one in enumerate(given):
        field = "prompt" if len(given) == 1 else f"prompt.{i}"
        if isinstance(one, str):
            ids = tokenizer(unicode_text(one, field), add_special_tokens=req.add_bos_token)["input_ids"]
        else:
            ids = list(one)
            try:
                scoring.check_ids(ids, model, tokenizer)
            except scoring.ScoringError as err:
                raise ApiError(f"{field}: {err}", param=field) from err
        if not ids:
            raise ApiError(f"{field}: the prompt is empty", param=field)
        out.append(ids)
    return out


def _settings(req: TextRequest) -> GenerationSettings:
    stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    stops = [unicode_text(s, "stop") for s in dict.fromkeys([*stops, *(req.stopping_strings or [])]) if s]
    check_stops(stops)
    greedy = not req.do_sample or req.top_p == 0
    seed = req.seed if req.seed is not None else req.sampler_seed
    given = engine_values(req)
    given["banned_tokens"] = (*given["banned_tokens"], *_token_bans(req.custom_token_bans))
    return GenerationSettings(
        **{
            **given,
            "max_new_tokens": max(1, _wanted(req)),
            "temperature": 0.0 if greedy else req.temperature,
            "top_p": req.top_p or 1.0,
            "top_k": max(req.top_k, 0),
            "repetition_penalty": req.repetition_penalty or req.rep_pen or 1.0,
            "seed": seed if seed is not None and seed >= 0 else None,
            "stop_strings": tuple(stops),
        }
    )


def _token_bans(bans: str | list[int] | None) -> list[int]:
    """text-generation-webui's custom_token_bans: token ids as a list or as one comma-separated string."""
    if bans is None or isinstance(bans, list):
        return list(bans or [])
    parts = [p.strip() for p in bans.split(",") if p.strip()]
    bad = [p for p in parts if not p.isdigit()]
    if bad:
        raise ApiError(
            f"custom_token_bans: '{bad[0][:40]}' is not a token id (send ids separated by commas, e.g. \"5, 17\")",
            param="custom_token_bans",
        )
    return [int(p) for p in parts]


def _wanted(req: TextRequest) -> int:
    return next((v for v in (req.max_tokens, req.max_new_tokens) if v is not None), 16)  # 16: OpenAI's default


def _fit(req: TextRequest, loaded, prompts: list[list[int]]) -> tuple[list[list[int]], list[int]]:
    """The prompts cut to fit the context (from the left, when `truncation_length` asks for that, as
    text-generation-webui does), with how many tokens each lost; 400 `context_length_exceeded` otherwise."""
    context, limit, wanted = context_of(loaded.model), settings.config().limit_prompt_tokens, _wanted(req)
    if wanted > settings.config().limit_max_tokens:
        raise ApiError(f"max_tokens: {wanted} is over this server's limit of {settings.config().limit_max_tokens}")
    window = min(context, req.truncation_length or context)
    room = min(window - wanted, limit)
    if room < 1:
        raise ApiError(
            f"max_tokens: {wanted} new tokens, but model '{loaded.name}' reads at most {window} in all",
            param="max_tokens",
            code="context_length_exceeded",
        )
    kept, cut = [], []
    for i, ids in enumerate(prompts):
        if len(ids) > room and (req.echo or req.truncation_length is None):
            field = "prompt" if len(prompts) == 1 else f"prompt.{i}"
            raise ApiError(
                f"{field}: the prompt is {len(ids)} tokens and max_tokens {wanted}; model '{loaded.name}' reads at "
                f"most {context} positions and this server takes prompts of at most {limit} tokens "
                "(limit_prompt_tokens)" + ("" if req.echo else "; send truncation_length to cut it from the left"),
                param=field,
                code="context_length_exceeded",
            )
        kept.append(ids[-room:])
        cut.append(max(0, len(ids) - room))
    return kept, cut


def _check(req: TextRequest) -> None:
    _refuse_unsupported(req)
    check_choices(req.n)
    if req.logprobs is not None and req.logprobs > scoring.MAX_TOP:
        raise ApiError(f"logprobs: {req.logprobs} alternatives asked for; at most {scoring.MAX_TOP}", param="logprobs")
    if req.stream and req.logprobs is not None:
        raise ApiError("logprobs: not given in a stream here; send stream: false", param="logprobs")
    many = isinstance(req.prompt, list) and req.prompt and not isinstance(req.prompt[0], int)
    if req.stream and many and len(req.prompt) > 1:
        raise ApiError("prompt: a stream takes one prompt; send several with stream: false", param="prompt")
    if many and len(req.prompt) * req.n > settings.config().limit_in_flight_api * 8:
        raise ApiError(f"prompt: {len(req.prompt)} prompts in one request is too many", param="prompt")


def _logprobs(tokenizer, scores: scoring.Scores, start: int, offset: int) -> dict:
    """OpenAI's legacy `logprobs` object for the tokens from `start` on; offsets count from `offset`."""
    texts = scoring.pieces(tokenizer, scores.ids)
    out: dict[str, list] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for i in range(start, len(scores.ids)):
        out["tokens"].append(texts[i])
        out["token_logprobs"].append(scores.logprobs[i])
        top = None
        if scores.top[i] is not None:
            top = {}
            for alt, value in scores.top[i]:
                name = texts[i] if alt == scores.ids[i] else tokenizer.decode([alt], skip_special_tokens=False)
                top.setdefault(name, value)  # two ids of one spelling: the likelier one's value
        out["top_logprobs"].append(top)
        out["text_offset"].append(offset)
        offset += len(texts[i])
    return out


def _choice(req, loaded, index: int, ids: list[int], result: GenerationResult | None, cut: int) -> dict:
    """One choice of the reply: the completion (after the prompt when `echo`), its logprobs when asked for."""
    tok = loaded.tokenizer
    prompt_text = _echoed(req, tok, index, ids) if req.echo else ""
    made = result.token_ids if result is not None else []
    choice = {
        "index": index,
        "text": prompt_text + (result.text if result is not None else ""),
        "logprobs": None,
        "finish_reason": OPENAI_REASON[result.finish_reason] if result is not None else "length",
    }
    if req.logprobs is not None and (req.echo or made):
        scores = scoring.score(loaded.model, tok, ids + made, req.logprobs, context_of(loaded.model))
        offset = 0 if req.echo else len(tok.decode(ids, skip_special_tokens=req.skip_special_tokens))
        choice["logprobs"] = _logprobs(tok, scores, 0 if req.echo else len(ids), offset)
    extra = _extra(result) if result is not None else {}
    choice["rp_eval"] = {**extra, "truncated_prompt_tokens": cut}  # the prompt's tokens cut to fit the context
    return choice


def _echoed(req: TextRequest, tokenizer, index: int, ids: list[int]) -> str:
    """The prompt as `echo` repeats it: the text as sent, or token ids decoded."""
    p = req.prompt
    sent = p if isinstance(p, str) else None if isinstance(p[0], int) else p[index]
    return sent if isinstance(sent, str) else tokenizer.decode(ids, skip_special_tokens=req.skip_special_tokens)


def _usage(prompts: list[list[int]], results: list[GenerationResult | None]) -> dict:
    made = sum(r.new_tokens for r in results if r is not None)
    given = sum(len(p) for p in prompts)
    return {"prompt_tokens": given, "completion_tokens": made, "total_tokens": given + made}


def _begin(req: TextRequest, ids: list[int], loaded, gen: GenerationSettings):
    """The `n` replies to one prompt: `(choice, delta)` pairs, then the list of results."""
    text = loaded.tokenizer.decode(ids, skip_special_tokens=False)
    return started(
        stream_prompt_choices(loaded.model, loaded.tokenizer, loaded.format, text, ids, gen, req.n, priority=API)
    )


def _prepare(req: TextRequest):
    """Everything that can go wrong before generating, raised as ApiError: the model, the fields, the prompts."""
    _check(req)
    gen = _settings(req)
    loaded = model_cache().get(registered(req.model))
    check_token_ids(gen, loaded.model)
    prompts, cut = _fit(req, loaded, _prompts(req, loaded.tokenizer, loaded.model))
    return loaded, prompts, cut, gen


async def _complete(req: TextRequest, request: Request) -> dict | None:
    loaded, prompts, cut, gen = await run_in_threadpool(_prepare, req)
    results: list[GenerationResult | None] = []  # n per prompt, in the prompts' order (OpenAI's indexes)
    for ids in prompts:
        if _wanted(req) == 0:
            results.extend([None] * req.n)
            continue
        items, first = await run_in_threadpool(_begin, req, ids, loaded, gen)
        replies = await drain(items, first, request)
        if replies is None:
            return None
        results.extend(replies)
    choices = []
    for i, result in enumerate(results):
        ids = prompts[i // req.n]
        choices.append(await run_in_threadpool(_choice, req, loaded, i, ids, result, cut[i // req.n]))
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": loaded.name,
        "choices": choices,
        "usage": _usage(prompts, results),
    }


async def _stream(req: TextRequest, done) -> _Stream:
    loaded, prompts, cut, gen = await run_in_threadpool(_prepare, req)
    cid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    (ids,) = prompts

    def chunk(text: str, reason: str | None = None, index: int = 0, **extra) -> dict:
        choice = {"index": index, "text": text, "logprobs": None, "finish_reason": reason}
        return {"id": cid, "object": "text_completion", "created": created, "model": loaded.name,
                "choices": [choice], **extra}  # fmt: skip

    def piece(item: tuple[int, str] | list[GenerationResult]) -> list[dict]:
        if isinstance(item, tuple):
            return [chunk(item[1], index=item[0])]
        ends = [
            chunk("", OPENAI_REASON[r.finish_reason], i, rp_eval={**_extra(r), "truncated_prompt_tokens": cut[0]})
            for i, r in enumerate(item)
        ]
        ends[-1]["usage"] = _usage(prompts, item)  # the last choice's end carries the usage of them all
        return ends

    echo = _echoed(req, loaded.tokenizer, 0, ids) if req.echo else None
    head = [chunk(echo, index=i) for i in range(req.n)] if req.echo else []
    if _wanted(req) == 0:
        head += [chunk("", "length", i) for i in range(req.n)]
        head[-1]["usage"] = _usage(prompts, [None])
        items, first = (item for item in ()), None
    else:
        items, first = await run_in_threadpool(_begin, req, ids, loaded, gen)
    return _Stream(events(items, first, done, head, piece), media_type="text/event-stream")


@router.post("/completions")
async def completions(request: Request):
    req = await parse(request, TextRequest)
    if isinstance(req, JSONResponse):
        return req

    async def reply(done):
        return await (_stream(req, done) if req.stream else _complete(req, request))

    return await in_slot(request, reply)
