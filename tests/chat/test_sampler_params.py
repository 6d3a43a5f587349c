"""Sampler settings are defined once (rp_eval/chat/sampler_params.py): every field reaches GenerationSettings,
both HTTP request models and (where it has a slider) the Chat tab, with the same bounds everywhere; a field added
to SamplerParams reaches all of them without another edit."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError, create_model

from rp_eval.chat import sampler_params
from rp_eval.chat.generate import GenerationSettings
from rp_eval.chat.presets import PRESETS
from rp_eval.chat.sampler_params import DIALECT, SamplerParams, bounds


def _models():
    from rp_eval.api import ChatRequest
    from rp_eval.api_text import TextRequest

    return {"chat": ChatRequest, "text": TextRequest}


def _inside(wide, narrow) -> bool:
    """`wide` takes every value `narrow` takes."""
    lo = wide.low is None or (narrow.low is not None and (wide.low < narrow.low or (
        wide.low == narrow.low and (narrow.low_open or not wide.low_open))))  # fmt: skip
    hi = wide.high is None or (narrow.high is not None and (wide.high > narrow.high or (
        wide.high == narrow.high and (narrow.high_open or not wide.high_open))))  # fmt: skip
    return lo and hi


def test_every_sampler_field_has_the_same_bounds_everywhere():
    fields = SamplerParams.model_fields
    assert {"temperature", "top_p", "top_k", "min_p", "repetition_penalty"} <= set(fields)
    for name, info in fields.items():
        mine = bounds(info)
        assert bounds(GenerationSettings.model_fields[name]) == mine, name
        assert GenerationSettings.model_fields[name].default == info.default, name
        for dialect, model in _models().items():
            theirs = bounds(model.model_fields[name])
            if name in DIALECT[dialect]:  # a client's own spelling: only ever wider than the engine's range
                assert _inside(theirs, mine), (dialect, name, theirs, mine)
            else:
                assert theirs == mine, (dialect, name, theirs, mine)
                assert model.model_fields[name].default == info.default, (dialect, name)


def test_the_chat_tab_limits_are_the_librarys():
    from rp_eval.ui import chat_actions

    assert list(sampler_params.ui_fields()) == chat_actions.SAMPLER_FIELDS
    for name in chat_actions.SAMPLER_FIELDS:
        _, low, high, whole, low_open = chat_actions.LIMITS[name]
        b = bounds(GenerationSettings.model_fields[name])
        assert (low, high, whole, low_open) == (b.low, b.high, b.whole, b.low_open), name
        _, _, slider_low, slider_high, _ = sampler_params.ui_fields()[name]
        assert low <= slider_low <= slider_high <= high, name  # every slider position is a value the engine takes
    # the drift this replaced: top_p 0.01 on the page, > 0 in the library; now one rule, and 0.001 passes both
    form = {n: getattr(PRESETS["balanced"], n) for n in chat_actions.SAMPLER_FIELDS}
    assert chat_actions.settings(**{**form, "top_p": 0.001}, max_new_tokens=8, seed=-1, stops="").top_p == 0.001
    GenerationSettings(top_p=0.001)
    with pytest.raises(Exception, match="Top-p"):
        chat_actions.settings(**{**form, "top_p": 0.0}, max_new_tokens=8, seed=-1, stops="")
    with pytest.raises(ValidationError):
        GenerationSettings(top_p=0.0)
    assert set(chat_actions.preset("greedy")) and len(chat_actions.preset("greedy")) == len(form)


def test_a_field_added_once_reaches_settings_both_apis_and_the_chat_tab(monkeypatch):
    """Build the derived models again from a SamplerParams with one more field: each of them has it, bounded."""
    extra = create_model(
        "WithOneMore",
        __base__=SamplerParams,
        made_up_sampler=(
            float,
            Field(
                0.5,
                ge=0.0,
                le=2.0,
                json_schema_extra=sampler_params._ui("chat_min_p", "chat_field_min_p", 0.0, 1.0, 0.1),
            ),
        ),
    )
    monkeypatch.setattr(sampler_params, "SamplerParams", extra)
    settings = create_model("Settings", __base__=extra, max_new_tokens=(int, Field(8, ge=1)))
    for dialect in ("chat", "text"):
        fields = sampler_params.api_fields(dialect)
        request = create_model("Req", **fields)
        assert request().made_up_sampler == 0.5
        with pytest.raises(ValidationError):
            request(made_up_sampler=3.0)
        assert request(made_up_sampler=1.5).made_up_sampler == 1.5
    assert "made_up_sampler" in sampler_params.ui_fields()
    assert settings(made_up_sampler=2.0).made_up_sampler == 2.0
    with pytest.raises(ValidationError):
        settings(made_up_sampler=-1.0)


OTHER = {  # fields that are no number: a value that is not the default, in the engine's spelling
    "dry_sequence_breakers": ("\n",),
    "logit_bias": ((5, -100.0),),
    "banned_tokens": (7,),
    "banned_strings": ("ですわ",),
}


def _off_default(name, info):
    """A value inside the field's bounds that is not its default."""
    if name in OTHER:
        return OTHER[name]
    if info.annotation is bool:
        return not info.default
    b = bounds(info)
    value = (b.high if b.high is not None else info.default + 1) if info.default != b.high else b.low
    if value == b.low and b.low_open:
        value = (b.low + b.high) / 2
    return int(value) if b.whole else float(value)


def test_both_routes_hand_every_sampler_field_to_the_engine():
    from rp_eval import api_text

    sent = {name: _off_default(name, info) for name, info in SamplerParams.model_fields.items()}
    # as a client spells them: logit_bias as a JSON object, the breakers as SillyTavern's JSON text
    spelled = {**sent, "logit_bias": {"5": -100.0}, "dry_sequence_breakers": '["\\n"]'}
    chat = _models()["chat"](model="m", messages=[{"role": "user", "content": "x"}], **spelled)
    assert sampler_params.values_of(chat) == sent
    text = api_text._settings(_models()["text"](prompt="x", **spelled))
    for name, value in sent.items():
        if name == "temperature" and text.temperature == 0.0:
            continue
        assert getattr(text, name) == value, name
    assert GenerationSettings(**sampler_params.values_of(chat)).model_dump(include=set(sent)) == sent
