from __future__ import annotations

import pytest
import torch

from rp_eval.chat.generate import GenerationSettings, generate
from rp_eval.models import loading, registry
from rp_eval.models.loading import LoadedModel, ModelCache
from rp_eval.models.registry import RegistryError
from tests.models.test_registry import make_adapter


def test_load_a_registered_model_on_cpu_in_fp32(workspace, tiny_llama):
    registry.add_model(str(tiny_llama), "tiny")
    loaded = loading.load(registry.get_model("tiny"))
    assert loaded.model.dtype == torch.float32 and loaded.model.device.type == "cpu"
    assert loaded.format.name == "template"
    assert loaded.bytes == sum(p.numel() * 4 for p in loaded.model.parameters())


def test_prompt_format_override(workspace, tiny_llama):
    registry.add_model(str(tiny_llama), "tiny", prompt_format="alpaca-ja")
    assert loading.load(registry.get_model("tiny")).format.name == "alpaca-ja"


def test_adapter_loads_on_top_of_its_base(workspace, tiny_llama, tmp_path):
    registry.add_model(str(tiny_llama), "tiny")
    registry.add_model(str(make_adapter(tiny_llama, tmp_path / "lora", "tiny")), "lora")
    loaded = loading.load(registry.get_model("lora"))
    assert type(loaded.model).__name__.startswith("Peft")
    result = generate(
        loaded.model,
        loaded.tokenizer,
        loaded.format,
        [{"role": "user", "content": "やあ"}],
        GenerationSettings(temperature=0, max_new_tokens=4),
    )
    assert result.new_tokens >= 1


def test_model_whose_files_vanished_gets_a_clear_message(workspace, tiny_llama, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_llama, copy)
    registry.add_model(str(copy), "gone")
    shutil.rmtree(copy)
    with pytest.raises(RegistryError, match="files of 'gone' are gone"):
        loading.load(registry.get_model("gone"))


def test_quantized_loading_needs_a_gpu(workspace, tiny_llama):
    registry.add_model(str(tiny_llama), "tiny")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the refusal is for CPU-only machines")
    with pytest.raises(RegistryError, match="needs a CUDA GPU"):
        loading.load(registry.get_model("tiny"), quantize="4bit")


def fake_loader(sizes: dict[str, int]):
    def load(row, quantize):
        return LoadedModel(row.name, torch.nn.Linear(1, 1), None, None, sizes[row.name], row)

    return load


def test_cache_reuses_loaded_models_and_evicts_least_recently_used(workspace, tiny_llama):
    for name in ("a", "b", "c"):
        registry.add_model(str(tiny_llama), name)
    per_model = registry.get_model("a").parameters * 4
    cache = ModelCache(budget_bytes=int(per_model * 2.5), loader=fake_loader(dict.fromkeys("abc", per_model)))
    cache.get("a")
    cache.get("b")
    cache.get("a")  # a hit: no reload, and "a" becomes the most recent
    assert cache.loads == 2 and cache.names() == ["b|none", "a|none"]
    cache.get("c")  # over budget: "b" (least recently used) goes
    assert cache.evictions == ["b"] and cache.names() == ["a|none", "c|none"]
    assert cache.used() <= cache.budget


def test_cache_keeps_one_model_even_when_it_alone_exceeds_the_budget(workspace, tiny_llama):
    registry.add_model(str(tiny_llama), "a")
    cache = ModelCache(budget_bytes=10, loader=fake_loader({"a": 10_000}))
    assert cache.get("a").name == "a" and cache.names() == ["a|none"]


def test_cache_with_real_models(workspace, tiny_llama, tiny_mistral):
    registry.add_model(str(tiny_llama), "llama")
    registry.add_model(str(tiny_mistral), "mistral")
    one = loading.load(registry.get_model("llama")).bytes
    cache = ModelCache(budget_bytes=int(one * 1.5))
    first = cache.get("llama")
    assert cache.get("llama") is first and cache.loads == 1
    cache.get("mistral")
    assert cache.names() == ["mistral|none"] and cache.evictions == ["llama"]
