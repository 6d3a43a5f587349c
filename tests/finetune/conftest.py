"""Fixtures: a tiny registered base model in a fresh workspace, and a tokenizer whose EOS text is not one token."""

from __future__ import annotations

import pytest

from rp_eval.models import demo, registry
from tests.conftest import save_tiny


@pytest.fixture
def tiny_base(workspace, tokenizer):
    """A tiny random Llama registered as 'tiny'. Its weights are scaled up (initializer_range 0.3) so a LoRA on a
    32-wide model can move the output distribution at all; with the default 0.02 the logits are nearly flat."""
    folder = save_tiny(workspace / "tiny", tokenizer, initializer_range=0.3)
    registry.add_model(str(folder), "tiny")
    return "tiny"


@pytest.fixture(scope="session")
def split_eos_tokenizer():
    """A tokenizer whose EOS string '<|end|>' is not in the vocabulary: written as text it splits into pieces."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [m["content"] for conv in demo.conversations_as_messages(demo.load_corpus()) for m in conv]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<unk>", "<s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", pad_token="<pad>")
    fast.eos_token = "<|end|>"
    fast.chat_template = demo.LLAMA2_TEMPLATE
    return fast
