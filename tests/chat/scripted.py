"""A stand-in model that emits exactly the tokens a test scripts, to pin down the stopping rules."""

from __future__ import annotations

import torch
from transformers import GenerationConfig, LlamaConfig


class _Out(dict):
    __getattr__ = dict.__getitem__


class ScriptedModel(torch.nn.Module):
    """Row i emits scripts[i][0], scripts[i][1], ... (then keeps repeating its last token)."""

    def __init__(self, scripts: list[list[int]], vocab_size: int, eos_token_id: int | list[int]) -> None:
        super().__init__()
        self.scripts = scripts
        self.vocab_size = vocab_size
        self._anchor = torch.nn.Parameter(torch.zeros(1))
        self.config = LlamaConfig(vocab_size=vocab_size, eos_token_id=eos_token_id)
        self.generation_config = GenerationConfig(eos_token_id=eos_token_id)
        self.calls = 0

    @property
    def device(self) -> torch.device:
        return self._anchor.device

    def forward(
        self,
        input_ids,
        attention_mask=None,
        position_ids=None,
        cache=None,
        use_cache=True,
        logits_to_keep=0,
    ):
        step = 0 if cache is None else cache
        self.calls += 1
        logits = torch.full((input_ids.shape[0], 1, self.vocab_size), -1e4)
        for row in range(input_ids.shape[0]):
            script = self.scripts[row]
            logits[row, 0, script[min(step, len(script) - 1)]] = 1e4
        return _Out(logits=logits, cache=step + 1)


def byte_tokens(tokenizer, text: str) -> list[int]:
    """Ids of the single-byte tokens spelling `text` (every byte of a byte-level BPE vocabulary has one)."""
    pieces = tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(text)  # one character per byte
    ids = [tokenizer.convert_tokens_to_ids(ch) for piece, _ in pieces for ch in piece]
    assert len(ids) == len(text.encode("utf-8")) and tokenizer.unk_token_id not in ids
    return ids


def tokens(tokenizer, *pieces: str) -> list[int]:
    """Ids for each piece, each piece tokenised on its own (so a string can be spelt in several tokens)."""
    ids: list[int] = []
    for piece in pieces:
        ids += tokenizer(piece, add_special_tokens=False)["input_ids"]
    return ids
