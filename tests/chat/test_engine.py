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


@pytest.mark.parametrize("layout", ["rows", "blocks"])
@pytest.mark.parametrize("which", ["tiny_llama", "tiny_mistral"])
def test_static_engine_gives_the_eager_tokens(which, layout, request):
    model, tokenizer = load(request.getfixturevalue(which))
    own(model, GenerationService(model, kv_layout=layout))
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
    service = GenerationService(model, rows=4, columns=256, kv_layout="rows")
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
        engine = StaticEngine(model, rows=4, columns=256, fused=name == "fused", kv_layout="rows")
        with torch.inference_mode():
            engine.prefill(2, ids)
            engine.ids[2, 0] = 5
            outputs[name] = engine.step(4)[2]
    assert torch.allclose(outputs["forward"], outputs["fused"], atol=1e-5, rtol=1e-4)


def test_a_prompt_without_a_mask_is_causal_in_the_fused_layers(tiny_llama):
    """The fused layers given no mask attend causally (SDPA's own flag): the same logits and keys as with the
    causal mask written out."""
    import torch

    from rp_eval.chat.engine import _PrefillKV

    model, tokenizer = load(tiny_llama)
    engine = StaticEngine(model, rows=2, columns=256, fused=True, kv_layout="rows")
    ids = torch.tensor(
        [tokenizer("むかしむかし、山のふもとに小さな宿がありました", add_special_tokens=False)["input_ids"]]
    )
    positions, mask = engine._masks(torch.ones_like(ids), engine.min, engine.dtype)
    shape = (1, engine.kv_heads, ids.shape[1], engine.head_dim)
    out = {}
    with torch.inference_mode():
        for name, given in (("mask", mask), ("flag", None)):
            keys = [torch.zeros(shape) for _ in range(engine.layers)]
            values = [torch.zeros(shape) for _ in range(engine.layers)]
            out[name] = engine.fused(ids, positions, _PrefillKV(keys, values, ids.shape[1]), given), keys
        scratch = _PrefillKV([torch.zeros(shape)] * engine.layers, [torch.zeros(shape)] * engine.layers, ids.shape[1])
        no_causality = engine.fused(ids, positions, scratch, torch.zeros_like(mask))
    assert torch.allclose(out["mask"][0], out["flag"][0], atol=1e-5, rtol=1e-4)
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(out["mask"][1], out["flag"][1], strict=True))
    assert not torch.allclose(no_causality, out["flag"][0], atol=1e-3)  # without the flag, not causal


@pytest.mark.parametrize("fused", [True, False])
def test_a_chat_prefill_writes_only_its_own_row(tiny_llama, fused):
    """A chat prompt's keys and values go into the row it was given (a device index, as the prefill graphs
    take it), from column 0, and no other row changes."""
    import torch

    model, tokenizer = load(tiny_llama)
    engine = StaticEngine(model, rows=4, columns=256, fused=fused, kv_layout="rows")
    ids = tokenizer("灯台守の娘は、嵐の夜にだけ歌を歌う", add_special_tokens=False)["input_ids"]
    for layer in range(engine.layers):
        engine.keys[layer].fill_(7.0)
        engine.values[layer].fill_(7.0)
    with torch.inference_mode():
        engine.prefill(2, ids)
    width = engine.padded(len(ids))
    for layer in range(engine.layers):
        for cache in (engine.keys[layer], engine.values[layer]):
            assert bool((cache[[0, 1, 3]] == 7.0).all())  # other rows untouched
            assert bool((cache[2, :, width:] == 7.0).all())  # nothing past the prompt
            assert not bool((cache[2, :, width - len(ids) : width] == 7.0).any())  # the prompt written


def test_shared_prefixes_choose_the_grouping_that_saves_most():
    from rp_eval.chat.engine import SHARED_LEAST, shared_prefixes

    base = list(range(10, 60))  # 50 tokens
    other = list(range(200, 230))  # 30 tokens
    prompts = [
        base + [1, 2, 3],
        other + [7],
        base + [4],
        list(range(300, 305)),  # shares nothing
        base[:20] + [9, 9],  # shares 20 tokens with the base family
        other + [8, 8],
        base + [4, 5],  # base + [4] is all of prompt 2 but its last token
    ]
    groups = {tuple(sorted(m)): length for length, m in shared_prefixes(prompts)}
    # base family: 50 shared by three (saves 100) beats 20 shared by four (saves 60)
    assert groups == {(0, 2, 6): 50, (4,): 0, (1, 5): 30, (3,): 0}
    assert sorted(i for members in groups for i in members) == list(range(len(prompts)))
    # every prompt keeps a token of its own; too short a beginning is not shared
    assert SHARED_LEAST > 10 and all(length == 0 for length, _ in shared_prefixes([[5] * 10 + [1], [5] * 10 + [2]]))
    assert {length for length, _ in shared_prefixes([[5] * 40, [5] * 40])} == {39}


@pytest.mark.parametrize("which", ["tiny_llama", "tiny_mistral"])
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("passes", ["one pass", "a pass a beginning"])
def test_a_shared_prefill_leaves_the_rows_as_the_plain_one(which, fused, passes, request, monkeypatch):
    """Prompts that begin alike (an evaluation batch: one persona's system text) prefilled once per beginning
    leave the same cache, masks and positions as the plain prefill, and the same next tokens for 12 steps;
    also when the scratch memory holds one beginning at a time (SHARED_SCRATCH)."""
    import torch

    from rp_eval.chat import engine as engine_module

    if passes != "one pass":
        monkeypatch.setattr(engine_module, "SHARED_SCRATCH", 1)

    model, _ = load(request.getfixturevalue(which))
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(3)

    def tokens(n):
        return torch.randint(5, vocab, (n,), generator=g).tolist()

    persona_a, persona_b = tokens(60), tokens(45)
    prompts = [persona_a + tokens(7), persona_b + tokens(20), persona_a + tokens(15), tokens(9),
               persona_a + tokens(1), persona_b + tokens(3)]  # fmt: skip
    taken = []
    original = engine_module.StaticEngine._prefill_shared

    def spy(self, *args):
        taken.append(args[2])
        return original(self, *args)

    engines, logits = {}, {}
    for share in (True, False):
        engine = engines[share] = StaticEngine(model, rows=8, columns=256, fused=fused, kv_layout="rows")
        engine._prefill_shared = spy.__get__(engine)
        with torch.inference_mode():
            logits[share] = [engine.prefill_rows(1, prompts, share=share)]
            for _ in range(12):
                engine.ids[:, 0] = 0
                engine.ids[1 : 1 + len(prompts), 0] = logits[share][-1][-len(prompts) :].argmax(-1)
                logits[share].append(engine.step(8)[1 : 1 + len(prompts)])
    assert len(taken) == 1 and sorted(len(m) for _, m in taken[0]) == [2, 3]  # two beginnings, one prompt alone
    shared, plain = engines[True], engines[False]
    assert torch.equal(shared.bias, plain.bias) and torch.equal(shared.write_at, plain.write_at)
    assert torch.equal(shared.pos, plain.pos) and shared.lengths == plain.lengths
    width = max(len(p) for p in prompts)
    for layer in range(shared.layers):
        for i, p in enumerate(prompts):
            row = 1 + i
            cols = slice(width - len(p), width)
            assert torch.allclose(shared.keys[layer][row, :, cols], plain.keys[layer][row, :, cols], atol=1e-5)
            assert torch.allclose(shared.values[layer][row, :, cols], plain.values[layer][row, :, cols], atol=1e-5)
    for a, b in zip(logits[True], logits[False], strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
        assert torch.equal(a.argmax(-1), b.argmax(-1))
