"""The offline demo models: built once, registered, Japanese out, and replies that end by themselves."""

from __future__ import annotations

import re
import time

import pytest

from rp_eval.chat.generate import GenerationSettings, generate_batch
from rp_eval.models import demo, registry
from rp_eval.models.loading import ModelCache
from tests.conftest import use_workspace

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.fixture
def demo_models(demo_workspace, monkeypatch):
    use_workspace(demo_workspace, monkeypatch)
    return demo_workspace


def test_demo_models_are_registered_and_share_a_tokenizer(demo_models):
    rows = {r.name: r for r in registry.list_models()}
    assert set(rows) == {"demo-llama-a", "demo-llama-b", "demo-mistral", "demo-llama-eos", "demo-mistral-long"}
    assert rows["demo-llama-eos"].parents == ["demo-llama-a"] and rows["demo-mistral-long"].parents == ["demo-mistral"]
    assert rows["demo-llama-eos"].architecture == "LlamaForCausalLM"
    assert rows["demo-mistral-long"].architecture == "MistralForCausalLM"
    assert rows["demo-llama-a"].architecture == rows["demo-llama-b"].architecture == "LlamaForCausalLM"
    assert rows["demo-mistral"].architecture == "MistralForCausalLM"
    assert rows["demo-llama-b"].parents == ["demo-llama-a"]
    assert rows["demo-llama-a"].parameters == rows["demo-llama-b"].parameters  # same shapes: they can merge
    tokenizers = {(demo_models / "models" / "demo" / n / "tokenizer.json").read_bytes() for n in rows}
    assert len(tokenizers) == 1


def test_second_start_reuses_the_build(demo_models):
    start = time.perf_counter()
    assert demo.demos_ready()
    demo.build_demo_models()
    assert time.perf_counter() - start < 5


def test_demo_models_answer_in_japanese_and_stop_by_themselves(demo_models):
    check_demo_behaviour()


def check_demo_behaviour() -> None:
    """What the demo build in the current workspace must show (the shipped build and a rebuild alike)."""
    cache = ModelCache()
    corpus = demo.load_corpus()
    conversations = [[{"role": "system", "content": c["system"]}, c["messages"][0]] for c in corpus[::28]]
    for name in ("demo-llama-a", "demo-mistral"):
        loaded = cache.get(name)
        results = generate_batch(
            loaded.model,
            loaded.tokenizer,
            loaded.format,
            conversations,
            GenerationSettings(temperature=0, max_new_tokens=64),
        )
        assert all(JAPANESE.search(r.text) for r in results), [r.text for r in results]
        natural = sum(r.finish_reason in ("eos", "stop_string") for r in results)
        assert natural >= len(results) * 0.75, [(r.finish_reason, r.text) for r in results]
