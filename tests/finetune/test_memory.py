"""The gradient-checkpointing rule and the QLoRA loading settings (no GPU needed: the decisions are pure)."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig

from rp_eval.finetune import memory
from rp_eval.finetune.config import FinetuneSettings
from rp_eval.models import registry

LLAMA2_7B = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, vocab_size=32000)
WEIGHTS_7B = 6_738_415_616 * 2  # bf16
GB = 2**30


@pytest.mark.parametrize(
    ("gpu_gb", "batch", "length", "on"),
    [(80, 4, 1024, False), (80, 4, 512, False), (48, 4, 1024, True), (24, 4, 512, True), (80, 16, 1024, True)],
)
def test_auto_checkpointing_turns_on_only_when_memory_needs_it(gpu_gb, batch, length, on):
    s = FinetuneSettings(base_model="x", batch_size=batch, max_length=length)
    decided = memory.checkpointing(s, LLAMA2_7B, WEIGHTS_7B, 8_388_608, gpu_gb * GB)
    need = memory.estimate_peak_bytes(LLAMA2_7B, s, WEIGHTS_7B, 8_388_608)
    assert decided.on is on and decided.on == (need > memory.HEADROOM * gpu_gb * GB)
    assert f"{need / GB:.1f} GiB" in decided.reason and ("on" if on else "off") in decided.reason


def test_the_estimate_matches_the_measured_h100_peak():
    """benchmarks/finetune-h100.json: batch 4 x 512, all seven projections (40M trainable), no checkpointing:
    28.65 GiB measured. The rule is calibrated on it, so it must land within 10%."""
    s = FinetuneSettings(base_model="x", batch_size=4, max_length=512)
    assert memory.estimate_peak_bytes(LLAMA2_7B, s, WEIGHTS_7B, 39_976_960) / GB == pytest.approx(28.65, rel=0.1)


def test_explicit_choices_qlora_and_cpu():
    cases = [
        (dict(gradient_checkpointing="on"), 80, True),
        (dict(gradient_checkpointing="off"), 24, False),
        (dict(gradient_checkpointing=True), None, True),  # runs stored before "auto" existed
        (dict(qlora=True), 80, True),
        (dict(), None, False),
    ]
    for change, gpu_gb, on in cases:
        s = FinetuneSettings(base_model="x", **change)
        assert memory.checkpointing(s, LLAMA2_7B, WEIGHTS_7B, 0, gpu_gb and gpu_gb * GB).on is on, change
    assert FinetuneSettings(base_model="x", gradient_checkpointing=False).gradient_checkpointing == "off"


def test_qlora_loads_nf4_with_double_quantisation_and_bf16_compute(tiny_base, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    seen = {}

    def fake_from_pretrained(source, **kwargs):
        seen.update(kwargs, source=source)
        return "model"

    from transformers import AutoModelForCausalLM

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", fake_from_pretrained)
    assert memory.load_for_training(registry.get_model(tiny_base), qlora=True) == "model"
    q = seen["quantization_config"]
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype == torch.bfloat16 and seen["device_map"] == {"": 0}
    assert seen["source"] == registry.get_model(tiny_base).source
