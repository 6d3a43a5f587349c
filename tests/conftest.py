"""Fixtures: tiny tokenizers and models built on the spot, a fresh workspace per test, no hub access."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from rp_eval import store  # noqa: E402
from rp_eval.models import demo  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def use_workspace(path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RP_EVAL_HOME", str(path))
    store._open.cache_clear()
    return path


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace (database and model folders) for one test."""
    yield use_workspace(tmp_path / "workspace", monkeypatch)
    store._open.cache_clear()


@pytest.fixture(scope="session")
def tokenizer():
    """A byte-level BPE tokenizer trained on the demo corpus, with <s> </s> <unk> <pad> and a chat template."""
    texts = [m["content"] for conv in demo.conversations_as_messages(demo.load_corpus()) for m in conv]
    return demo.train_tokenizer(texts, vocab_size=600)


def save_tiny(folder: Path, tokenizer, architecture: str = "llama", seed: int = 0, **shape) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    dims = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    dims.update(shape)
    model = (
        LlamaForCausalLM(LlamaConfig(**dims))
        if architecture == "llama"
        else MistralForCausalLM(MistralConfig(sliding_window=128, **dims))
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory, tokenizer) -> Path:
    """A folder with a tiny random-weight Llama model and the test tokenizer."""
    return save_tiny(tmp_path_factory.mktemp("tiny") / "tiny-llama", tokenizer)


@pytest.fixture(scope="session")
def tiny_mistral(tmp_path_factory, tokenizer) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny") / "tiny-mistral", tokenizer, architecture="mistral")


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory) -> Path:
    """A workspace with the real demo models built once for the whole test session (about 2.5 minutes)."""
    path = tmp_path_factory.mktemp("demo") / "workspace"
    mp = pytest.MonkeyPatch()
    use_workspace(path, mp)
    demo.build_demo_models()
    mp.undo()
    store._open.cache_clear()
    return path


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
