"""The static engine (fixed-shape cache, explicit masks; CUDA graphs on a GPU) against the eager path.

On CPU the graph is not captured, but everything else the GPU fast path does runs here: bucketed shapes,
the preallocated cache, left padding through 4-D masks, filler rows, reuse across requests."""

from __future__ import annotations

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from rp_eval.chat.engine import StaticEngine, _bucket_batch, _bucket_length
from rp_eval.chat.formats import FORMATS
from rp_eval.chat.generate import GenerationSettings, generate, generate_batch
from rp_eval.chat.service import GenerationService, own
from tests.conftest import save_tiny

CONVERSATIONS = [
    [{"role": "user", "content": "こんにちは"}],
    [{"role": "system", "content": "あなたは探偵です。"}, {"role": "user", "content": "今日の事件は？ 詳しく教えて"}],
    [
        {"role": "user", "content": "おはよう！"},
        {"role": "assistant", "content": "おはよう。"},
        {"role": "user", "content": "元気？"},
    ],
]


def load(folder):
    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


@pytest.mark.parametrize("which", ["tiny_llama", "tiny_mistral"])
def test_static_engine_gives_the_eager_tokens(which, request):
    model, tokenizer = load(request.getfixturevalue(which))
    fmt = FORMATS["template"]
    eager = generate_batch(
        model, tokenizer, fmt, CONVERSATIONS, GenerationSettings(temperature=0, max_new_tokens=20, engine="eager")
    )
    static = generate_batch(
        model, tokenizer, fmt, CONVERSATIONS, GenerationSettings(temperature=0, max_new_tokens=20, engine="static")
    )
    assert [r.raw_text for r in static] == [r.raw_text for r in eager]
    assert [r.finish_reason for r in static] == [r.finish_reason for r in eager]
    one = generate(
        model, tokenizer, fmt, CONVERSATIONS[1], GenerationSettings(temperature=0, max_new_tokens=20, engine="static")
    )
    assert one.raw_text == eager[1].raw_text


def test_rows_are_reused_and_a_request_too_long_for_the_cache_runs_eagerly(tokenizer, tmp_path):
    model, tokenizer = load(save_tiny(tmp_path / "long", tokenizer, max_position_embeddings=2048))
    service = GenerationService(model, rows=4, columns=256)
    own(model, service)
    settings = GenerationSettings(temperature=0, max_new_tokens=8, engine="static")
    for conv in CONVERSATIONS:  # three requests one after the other: the same first row each time
        generate(model, tokenizer, FORMATS["template"], conv, settings)
    engine = service.static_engine()
    assert engine.rows == 4 and engine.columns == 256 and service.largest_batch == 1
    generate_batch(model, tokenizer, FORMATS["template"], CONVERSATIONS, settings)
    assert service.largest_batch == 3 and not any(service._owners)  # one step for three rows; all freed
    long_prompt = [{"role": "user", "content": "長い話をしよう。" * 40}]
    steps = service.steps
    eager = generate(
        model, tokenizer, FORMATS["template"], long_prompt, settings.model_copy(update={"engine": "eager"})
    )
    long = generate(
        model, tokenizer, FORMATS["template"], long_prompt, settings.model_copy(update={"max_new_tokens": 400})
    )
    assert service.steps == steps  # did not fit 256 columns: ran on its own eager engine
    assert long.raw_text.startswith(eager.raw_text.removesuffix("</s>")) or long.raw_text == eager.raw_text
    assert _bucket_batch(3) == 4 and _bucket_batch(64) == 64 and _bucket_length(129) == 256


def test_stopping_rules_hold_on_the_static_engine(tiny_llama):
    model, tokenizer = load(tiny_llama)
    eager = generate(
        model,
        tokenizer,
        FORMATS["template"],
        CONVERSATIONS[0],
        GenerationSettings(temperature=0, max_new_tokens=24, engine="eager"),
    )
    text = eager.raw_text.replace("</s>", "")
    assert len(text) > 3
    stop = text[2:4]
    static = generate(
        model,
        tokenizer,
        FORMATS["template"],
        CONVERSATIONS[0],
        GenerationSettings(temperature=0, max_new_tokens=24, engine="static", stop_strings=(stop,)),
    )
    assert static.finish_reason == "stop_string" and stop not in static.text


@pytest.mark.parametrize("which", ["tiny_llama", "tiny_mistral"])
def test_fused_decode_step_gives_the_eager_tokens(which, request):
    """The fused step (rp_eval/chat/fused.py; compiled on a GPU, run as it is here) follows transformers'
    forward: the same greedy tokens, batches (left padding) and single padded prompts alike."""
    model, tokenizer = load(request.getfixturevalue(which))
    settings = GenerationSettings(temperature=0, max_new_tokens=20, engine="static")
    fmt = FORMATS["template"]
    own(model, GenerationService(model, fused=False))
    plain = generate_batch(model, tokenizer, fmt, CONVERSATIONS, settings)  # static engine, transformers' step
    service = GenerationService(model, fused=True)
    own(model, service)
    fused = service.static_engine()
    assert fused.fused is not None
    steps = []
    original = fused.fused.__call__

    class Recording:
        def __call__(self, *args, **kwargs):
            steps.append(original(*args, **kwargs))
            return steps[-1]

    fused.fused = Recording()
    again = generate_batch(model, tokenizer, fmt, CONVERSATIONS, settings)
    assert len(steps) >= 10  # the fused step did the decoding
    assert [r.raw_text for r in again] == [r.raw_text for r in plain]
    assert [r.finish_reason for r in again] == [r.finish_reason for r in plain]
    for conversation, reference in zip(CONVERSATIONS, plain, strict=True):  # one prompt: padded to its bucket
        assert generate(model, tokenizer, fmt, conversation, settings).raw_text == reference.raw_text


def test_fused_step_logits_equal_the_forward(tiny_mistral):
    import torch

    model, tokenizer = load(tiny_mistral)
    ids = tokenizer("こんにちは、今日は良い天気ですね", add_special_tokens=False)["input_ids"]
    outputs = {}
    for name in ("forward", "fused"):
        engine = StaticEngine(model, rows=4, columns=256, fused=name == "fused")
        with torch.inference_mode():
            engine.prefill(2, ids)
            engine.ids[2, 0] = 5
            outputs[name] = engine.step(4)[2]
    assert torch.allclose(outputs["forward"], outputs["fused"], atol=1e-5, rtol=1e-4)
