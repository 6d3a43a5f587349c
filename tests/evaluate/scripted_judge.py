"""A stand-in judge model whose next-token probabilities over the grade tokens are set from the prompt it reads."""

from __future__ import annotations

import math

import torch

from rp_eval.evaluate.judge import ANSWER, grade_ids


class _Out(dict):
    __getattr__ = dict.__getitem__


class ScriptedJudge(torch.nn.Module):
    """Reads each prompt back as text; `rule(text)` gives the probabilities of the grades 1..5 at the next
    position. Every other token gets a higher logit than any grade, so a judge that did not restrict the
    distribution to the grade tokens would be caught."""

    def __init__(self, tokenizer, rule) -> None:
        super().__init__()
        self.tokenizer, self.rule = tokenizer, rule
        self.ids = grade_ids(tokenizer)
        self._anchor = torch.nn.Parameter(torch.zeros(1))
        self.calls, self.rows = 0, 0

    @property
    def device(self) -> torch.device:
        return self._anchor.device

    def forward(self, input_ids, attention_mask, position_ids, use_cache=False, logits_to_keep=0):
        self.calls += 1
        self.rows += input_ids.shape[0]
        logits = torch.full((input_ids.shape[0], 1, len(self.tokenizer)), 40.0)
        for row in range(input_ids.shape[0]):
            real = input_ids[row][attention_mask[row].bool()].tolist()
            assert position_ids[row, -1].item() == len(real) - 1  # left padding: positions count real tokens only
            text = self.tokenizer.decode(real)
            assert text.endswith(ANSWER)
            for grade_id, p in zip(self.ids, self.rule(text), strict=True):
                logits[row, 0, grade_id] = math.log(p) if p > 0 else -1e4
        return _Out(logits=logits)
