"""'Merge into a full model': peft's merge_and_unload, saved as safetensors, registered with the adapter and base
as parents; the merged model computes what base + adapter compute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rp_eval.cli import main
from rp_eval.finetune import job
from rp_eval.finetune.merge_full import merge_full
from rp_eval.models import registry
from rp_eval.models.loading import load


@pytest.fixture
def tiny_adapter(tiny_base, workspace):
    """A LoRA adapter with random (non-zero) B matrices on q, v and down, registered on the tiny base."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(registry.get_model(tiny_base).source)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(str(workspace / "adapter"))
    registry.add_model(str(workspace / "adapter"), "tiny-ad")
    return "tiny-ad"


def _logits(name: str, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return load(registry.get_model(name)).model(ids).logits


def test_merged_logits_equal_base_plus_adapter(tiny_base, tiny_adapter):
    name = merge_full(tiny_adapter)
    row = registry.get_model(name)
    assert row.kind == "merged" and row.parents == [tiny_adapter, tiny_base]
    folder = registry.get_model(name).source
    files = {p.name for p in Path(folder).iterdir()}
    assert "model.safetensors" in files and "tokenizer.json" in files and "adapter_config.json" not in files
    assert not list((job.paths.models_dir() / "merged").glob(".*.tmp"))

    ids = torch.tensor([[1, 20, 33, 47, 58, 90, 120, 7]])
    merged, with_adapter, base = _logits(name, ids), _logits(tiny_adapter, ids), _logits(tiny_base, ids)
    assert (with_adapter - base).abs().max() > 1e-2  # the adapter does change the model ...
    torch.testing.assert_close(merged, with_adapter, atol=1e-5, rtol=1e-5)  # ... and the merge keeps that change

    with pytest.raises(job.FinetuneError, match="already registered"):
        merge_full(tiny_adapter)
    with pytest.raises(job.FinetuneError, match="not an adapter"):
        merge_full(tiny_base, "other")


def test_a_failed_merge_leaves_nothing(tiny_base, tiny_adapter, monkeypatch):
    import errno

    from transformers import PreTrainedModel

    def full_disk(self, folder, **kwargs):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "model.safetensors").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device", folder)

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", full_disk)
    with pytest.raises(OSError):
        merge_full(tiny_adapter)
    assert [r.name for r in registry.list_models()] == [tiny_base, tiny_adapter]
    assert not list((job.paths.models_dir() / "merged").iterdir())


def test_cli_run_with_merge_full(tiny_base, capsys):
    code = main(["finetune", "run", "--base", tiny_base, "--max-steps", "2", "--batch-size", "4", "--grad-accum", "1",
                 "--stop-check-prompts", "0", "--adapter-name", "tiny-rp", "--merge-full", "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["metrics"]["merged"] == "tiny-rp-merged"
    assert "full model registered as 'tiny-rp-merged'" in captured.err
    assert registry.get_model("tiny-rp-merged").parents == ["tiny-rp", tiny_base]
