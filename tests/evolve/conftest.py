"""Three tiny Llama models of one shape (4 layers) and one tokenizer: a base and two 'fine-tunes' of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import save_tiny


def _finetune_of(base: Path, folder: Path, tokenizer, seed: int) -> Path:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_family(tmp_path_factory, tokenizer) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("family")
    base = save_tiny(root / "base", tokenizer, num_hidden_layers=4)
    return {
        "base": base,
        "a": _finetune_of(base, root / "a", tokenizer, 1),
        "b": _finetune_of(base, root / "b", tokenizer, 2),
    }
