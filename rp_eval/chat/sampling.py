"""Choosing the next token for many rows at once, each row with its own settings and its own random stream.

transformers' logits processors take one setting for a whole batch; a generation service batches requests
that asked for different temperatures, top-p, min-p and penalties, so the same steps are written here over
per-row parameter tensors (one pass for all rows). Greedy rows take the argmax of their own logits, so their
token never depends on the other rows; sampled rows draw from their own generator, seeded per request, so a
seeded reply is the same alone or beside others.

Order as in transformers: penalties (repetition over prompt and reply; presence and frequency over the reply,
as OpenAI defines them), then temperature, top-k, top-p, min-p; a row with `temperature_last` (text-generation-
webui's option) filters the raw logits and divides by its temperature after.
"""

from __future__ import annotations

import torch


class Sampler:
    """Per-row settings for `rows` rows; `assign` a row when a request takes it, `sample` every step."""

    def __init__(self, rows: int, vocab: int, device: torch.device) -> None:
        self.rows, self.vocab, self.device = rows, vocab, device
        f = {"dtype": torch.float32, "device": device}
        self.temperature = torch.ones(rows, **f)
        self.top_p = torch.ones(rows, **f)
        self.min_p = torch.zeros(rows, **f)
        self.repetition = torch.ones(rows, **f)
        self.presence = torch.zeros(rows, **f)
        self.frequency = torch.zeros(rows, **f)
        self.top_k = [0] * rows
        self.greedy = [True] * rows
        self.temperature_last = torch.zeros(rows, dtype=torch.bool, device=device)
        self.generators: list[torch.Generator | None] = [None] * rows
        self.penalised = [False] * rows
        self.seen: torch.Tensor | None = None  # [rows, vocab] counts of prompt + reply tokens
        self.made: torch.Tensor | None = None  # [rows, vocab] counts of reply tokens

    def assign(self, row: int, settings, prompt: list[int], seed: int) -> None:
        self.greedy[row] = settings.temperature == 0
        self.temperature[row] = settings.temperature or 1.0
        self.top_p[row] = settings.top_p
        self.temperature_last[row] = bool(getattr(settings, "temperature_last", False))
        self.min_p[row] = getattr(settings, "min_p", 0.0)
        self.top_k[row] = settings.top_k
        self.repetition[row] = settings.repetition_penalty
        self.presence[row] = getattr(settings, "presence_penalty", 0.0)
        self.frequency[row] = getattr(settings, "frequency_penalty", 0.0)
        self.penalised[row] = (
            settings.repetition_penalty != 1.0
            or getattr(settings, "presence_penalty", 0.0) != 0.0
            or getattr(settings, "frequency_penalty", 0.0) != 0.0
        )
        if self.greedy[row]:
            self.generators[row] = None
        else:
            rng = torch.Generator(device=self.device)
            rng.manual_seed(seed)
            self.generators[row] = rng
        if self.penalised[row]:
            if self.seen is None:
                self.seen = torch.zeros(self.rows, self.vocab, dtype=torch.int32, device=self.device)
                self.made = torch.zeros(self.rows, self.vocab, dtype=torch.int32, device=self.device)
            self.seen[row].zero_()
            self.made[row].zero_()
            ids = torch.tensor(prompt, device=self.device)
            self.seen[row].index_add_(0, ids, torch.ones_like(ids, dtype=torch.int32))

    def sample(self, logits: torch.Tensor, rows: list[int], packed: bool = False) -> torch.Tensor:
        """The next token of each row of `logits`, ids on the device. Unpacked, `logits` has one line per
        sampler row ([self.rows, vocab]) and `rows` names the rows in use (the others get an argmax nobody
        reads); packed, line i belongs to row rows[i]."""
        scores = logits.float()
        lines = list(range(len(rows))) if packed else rows
        for line, r in zip(lines, rows, strict=True):
            if self.penalised[r]:
                scores[line] = self._penalise(scores[line], r)
        chosen = scores.argmax(-1)
        sampled = [(line, r) for line, r in zip(lines, rows, strict=True) if not self.greedy[r]]
        if sampled:
            params = torch.tensor([r for _, r in sampled], device=self.device)
            where = torch.tensor([line for line, _ in sampled], device=scores.device)
            temperature, last = self.temperature[params, None], self.temperature_last[params, None]
            x = scores[where]
            x = self._filter(torch.where(last, x, x / temperature), [r for _, r in sampled], params)
            lowest = torch.finfo(x.dtype).min
            x = torch.where(last & (x > lowest), x / temperature, x)  # filtered-out tokens stay out
            probs = x.softmax(-1)
            for j, (line, r) in enumerate(sampled):
                chosen[line] = torch.multinomial(probs[j], 1, generator=self.generators[r])[0]
        for line, r in zip(lines, rows, strict=True):
            if self.penalised[r]:
                self.seen[r, chosen[line]] += 1
                self.made[r, chosen[line]] += 1
        return chosen

    def _penalise(self, row: torch.Tensor, r: int) -> torch.Tensor:
        seen = self.seen[r] > 0
        penalty = self.repetition[r]
        row = torch.where(seen, torch.where(row < 0, row * penalty, row / penalty), row)
        made = self.made[r].float()
        return row - self.presence[r] * (made > 0) - self.frequency[r] * made

    def _filter(self, x: torch.Tensor, rows: list[int], params: torch.Tensor) -> torch.Tensor:
        lowest = torch.finfo(x.dtype).min
        ks = [self.top_k[r] for r in rows]
        if any(ks):
            k = torch.tensor([k if k else x.shape[-1] for k in ks], device=x.device).clamp(max=x.shape[-1])
            kth = x.sort(-1, descending=True).values.gather(-1, (k - 1)[:, None])
            x = x.masked_fill(x < kth, lowest)
        top_p = self.top_p[params]
        if bool((top_p < 1.0).any()):
            ordered, order = x.sort(-1, descending=False)
            cumulative = ordered.softmax(-1).cumsum(-1)
            drop = cumulative <= (1 - top_p)[:, None]
            drop[:, -1] = False  # keep at least the most likely token
            x = x.masked_fill(drop.scatter(-1, order, drop), lowest)
        min_p = self.min_p[params]
        if bool((min_p > 0).any()):
            probs = x.softmax(-1)
            x = x.masked_fill(probs < min_p[:, None] * probs.max(-1, keepdim=True).values, lowest)
        return x
