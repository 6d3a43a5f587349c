"""Every sampler setting, written once: its type, default, bounds and how the Chat tab shows it.

`SamplerParams` is the one definition. From it come:
- `GenerationSettings` (rp_eval/chat/generate.py), which adds the reply's length, seed and stop rules;
- the HTTP request models of `/v1/chat/completions` and `/v1/completions` (`api_fields`), with the same bounds;
  a dialect may only widen a field to take a client's own spelling of a value (`DIALECT` below says which);
- the Chat tab's sliders and the limits its handler checks (`ui_fields`, `bounds`), and the named presets.
Adding a sampler is one field here (with `ui` when the Chat tab should show it) and one step in
rp_eval/chat/sampling.py; tests/chat/test_sampler_params.py checks that the field reaches every place.

A field's `json_schema_extra` may hold `ui`: (slider label key, field-name key for messages, slider low, slider
high, slider step): the slider's range is what a person usually wants, the bounds are what the engine accepts.
"""

from __future__ import annotations

import copy
import json
from typing import Annotated, Any, NamedTuple

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, Field, StringConstraints

TokenId = Annotated[int, Field(ge=0, lt=2**31)]
Bias = Annotated[float, Field(ge=-100.0, le=100.0)]
Breaker = Annotated[str, StringConstraints(min_length=1, max_length=20)]
BannedString = Annotated[str, StringConstraints(min_length=1, max_length=100)]


def _ui(label: str, field: str, low: float, high: float, step: float) -> dict:
    return {"ui": (label, field, low, high, step)}


class SamplerParams(BaseModel, frozen=True):
    temperature: float = Field(0.7, ge=0.0, le=5.0, json_schema_extra=_ui(
        "chat_temperature", "chat_field_temperature", 0.0, 2.0, 0.05))  # 0 means greedy  # fmt: skip
    top_p: float = Field(0.9, gt=0.0, le=1.0, json_schema_extra=_ui(
        "chat_top_p", "chat_field_top_p", 0.05, 1.0, 0.05))  # fmt: skip
    top_k: int = Field(0, ge=0, le=1_000_000, json_schema_extra=_ui(
        "chat_top_k", "chat_field_top_k", 0, 200, 1))  # 0: off  # fmt: skip
    min_p: float = Field(0.0, ge=0.0, le=1.0, json_schema_extra=_ui(
        "chat_min_p", "chat_field_min_p", 0.0, 1.0, 0.01))  # fmt: skip
    repetition_penalty: float = Field(1.0, gt=0.0, le=3.0, json_schema_extra=_ui(
        "chat_repetition_penalty", "chat_field_repetition_penalty", 0.8, 2.0, 0.05))  # fmt: skip
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    temperature_last: bool = False  # text-generation-webui's order: top-k/top-p/min-p on the raw logits
    typical_p: float = Field(1.0, ge=0.0, le=1.0, json_schema_extra=_ui(
        "chat_typical_p", "chat_field_typical_p", 0.0, 1.0, 0.01))  # 1: off  # fmt: skip
    # DRY (rp_eval/chat/samplers.py): off while the multiplier is 0
    dry_multiplier: float = Field(0.0, ge=0.0, le=10.0, json_schema_extra=_ui(
        "chat_dry_multiplier", "chat_field_dry_multiplier", 0.0, 2.0, 0.05))  # fmt: skip
    dry_base: float = Field(1.75, ge=1.0, le=10.0, json_schema_extra=_ui(
        "chat_dry_base", "chat_field_dry_base", 1.0, 4.0, 0.05))  # fmt: skip
    dry_allowed_length: int = Field(2, ge=1, le=1000, json_schema_extra=_ui(
        "chat_dry_allowed_length", "chat_field_dry_allowed_length", 1, 20, 1))  # fmt: skip
    dry_penalty_last_n: int = Field(0, ge=-1, le=1_000_000)  # 0 or -1: the whole prompt and reply
    dry_sequence_breakers: tuple[Breaker, ...] = Field(("\n", ":", '"', "*"), max_length=64)
    # XTC: off while the probability is 0
    xtc_threshold: float = Field(0.1, ge=0.0, le=1.0, json_schema_extra=_ui(
        "chat_xtc_threshold", "chat_field_xtc_threshold", 0.0, 0.5, 0.01))  # fmt: skip
    xtc_probability: float = Field(0.0, ge=0.0, le=1.0, json_schema_extra=_ui(
        "chat_xtc_probability", "chat_field_xtc_probability", 0.0, 1.0, 0.05))  # fmt: skip
    # added to the logits before anything else, as OpenAI's logit_bias: (token id, -100 to 100) pairs
    logit_bias: tuple[tuple[TokenId, Bias], ...] = Field((), max_length=1024)
    banned_tokens: tuple[TokenId, ...] = Field((), max_length=1024)  # never drawn (custom_token_bans)
    ban_eos_token: bool = False  # the tokenizer's end token is never drawn (the reply stops on other ends only)
    banned_strings: tuple[BannedString, ...] = Field((), max_length=64)  # never in the reply


class Bounds(NamedTuple):
    low: float | None
    high: float | None
    low_open: bool  # low itself is refused (gt)
    high_open: bool
    whole: bool  # an int field


def bounds(info) -> Bounds:
    """The numeric bounds of a pydantic field (from its ge/gt/le/lt)."""
    low = high = None
    low_open = high_open = False
    for m in info.metadata:
        if isinstance(m, Ge):
            low = m.ge
        elif isinstance(m, Gt):
            low, low_open = m.gt, True
        elif isinstance(m, Le):
            high = m.le
        elif isinstance(m, Lt):
            high, high_open = m.lt, True
    return Bounds(low, high, low_open, high_open, info.annotation is int)


def ui_fields() -> dict[str, tuple]:
    """name -> (slider label key, field-name key, slider low, high, step) for the fields the Chat tab shows."""
    out = {}
    for name, info in SamplerParams.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if "ui" in extra:
            out[name] = tuple(extra["ui"])
    return out


# Values a client's dialect spells differently from the engine; the API model of that dialect takes them and the
# route maps them onto the engine's field (tests check each one only widens the engine's range):
# text-generation-webui/vLLM send top_p 0 for greedy, top_k -1 for off, and rep_pen beside repetition_penalty.
# the spellings of the OpenAI and text-generation-webui clients: logit_bias as a JSON object of id strings,
# dry_sequence_breakers as a JSON list inside a string (SillyTavern) or a list
_BIAS_OBJECT = (dict[str, Bias] | None, Field(None, max_length=1024))
_BREAKERS = (str | list[Breaker] | None, Field(None, max_length=2000))
DIALECT: dict[str, dict[str, tuple[Any, Any]]] = {
    "text": {
        "temperature": (float, Field(1.0, ge=0.0, le=5.0)),  # OpenAI's default for completions
        "top_p": (float, Field(1.0, ge=0.0, le=1.0)),  # 0 keeps only the most likely token: greedy
        "top_k": (int, Field(0, ge=-1, le=1_000_000)),  # -1 (vLLM) or 0: off
        "repetition_penalty": (float | None, Field(None, gt=0.0, le=3.0)),  # None: rep_pen, else 1
        "logit_bias": _BIAS_OBJECT,
        "dry_sequence_breakers": _BREAKERS,
    },
    "chat": {"logit_bias": _BIAS_OBJECT, "dry_sequence_breakers": _BREAKERS},
}


class DialectError(ValueError):
    """A sampler field a client spelled in a way that can not be read; `param` names it."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def api_fields(dialect: str) -> dict[str, tuple[Any, Any]]:
    """The sampler fields of an HTTP request model, for `pydantic.create_model`: SamplerParams' fields with their
    bounds and defaults, but for what `DIALECT[dialect]` widens."""
    out: dict[str, tuple[Any, Any]] = {}
    for name, info in SamplerParams.model_fields.items():
        if name in DIALECT[dialect]:
            out[name] = DIALECT[dialect][name]
            continue
        field = copy.copy(info)
        field.json_schema_extra = None  # the Chat tab's display hints are not part of the HTTP schema
        out[name] = (info.annotation, field)
    return out


def values_of(request) -> dict[str, Any]:
    """Every sampler field of a request (or settings) object, by name, in the engine's spelling: what a route
    hands to GenerationSettings. DialectError for a logit_bias key that is no token id or breakers that are no
    list of strings."""
    out = {name: getattr(request, name) for name in SamplerParams.model_fields}
    bias = out["logit_bias"]
    if bias is None:
        out["logit_bias"] = ()
    elif isinstance(bias, dict):
        try:
            out["logit_bias"] = tuple((int(k), v) for k, v in bias.items())
        except ValueError:
            bad = next(k for k in bias if not k.strip().lstrip("-").isdigit())
            raise DialectError(f"logit_bias: '{bad[:40]}' is not a token id", "logit_bias") from None
    breakers = out["dry_sequence_breakers"]
    if breakers is None:
        del out["dry_sequence_breakers"]  # the default set
    elif isinstance(breakers, str):  # SillyTavern sends a JSON list inside a string
        try:
            parsed = json.loads(breakers)
        except ValueError:
            parsed = None
        if not isinstance(parsed, list) or not all(isinstance(b, str) for b in parsed):
            raise DialectError(
                'dry_sequence_breakers: expected a list of strings or one as JSON text, e.g. "[\\"\\\\n\\", \\":\\"]"',
                "dry_sequence_breakers",
            )
        out["dry_sequence_breakers"] = tuple(parsed)
    else:
        out["dry_sequence_breakers"] = tuple(breakers)
    return out
