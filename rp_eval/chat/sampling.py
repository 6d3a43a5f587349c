"""Choosing the next token for many rows at once, each row with its own settings and its own random stream.

transformers' logits processors take one setting for a whole batch; a generation service batches requests
that asked for different temperatures, top-p, min-p and penalties, so the same steps are written here over
per-row parameter tensors (one pass for all rows). Greedy rows take the argmax of their own logits, so their
token never depends on the other rows; sampled rows draw from their own generator, seeded per request, so a
seeded reply is the same alone or beside others.

Order as in text-generation-webui: logit_bias and token bans (custom_token_bans, ban_eos_token), penalties
(repetition over prompt and reply; presence and frequency over the reply, as OpenAI defines them), DRY over
prompt and reply; then, for sampled rows only, temperature, top-k, top-p, typical-p, min-p, XTC; a row with
`temperature_last` (text-generation-webui's option) filters the raw logits and divides by its temperature after.
The first group acts on every row that asked for it (greedy ones too, as transformers' logits processors do);
the second only where a token is drawn. A row whose settings are neutral goes through none of it, so its token
is bit for bit what it was without these samplers. The new steps are in rp_eval/chat/samplers.py; all of them
run on the logits the engine hands over, outside its CUDA graphs, with no host synchronisation, but for
`banned_strings`: a row that bans strings reads its drawn token back to decode its text (a string can end inside
any token), and if a banned string would be completed the token is ruled out for this step and drawn again.
"""

from __future__ import annotations

import torch

from rp_eval.chat import samplers


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
        # host copies of the settings that decide which steps run (read without a device sync)
        self.min_p_host = [0.0] * rows
        self.top_p_host, self.typical_host, self.xtc_host = [1.0] * rows, [1.0] * rows, [0.0] * rows
        self.dry_on = [False] * rows
        self.biased = [False] * rows
        self.bias: torch.Tensor | None = None  # [rows, vocab] logit_bias, -inf for banned tokens
        self.typical = torch.ones(rows, **f)
        self.xtc_threshold = torch.ones(rows, **f)
        self.xtc_probability = torch.zeros(rows, **f)
        self.xtc_guard: torch.Tensor | None = None  # [rows, vocab] tokens XTC must not remove
        self.dry = torch.zeros(rows, 3, **f)  # multiplier, base, allowed length
        self.dry_range = [0] * rows
        self.breakers: torch.Tensor | None = None  # [rows, vocab] DRY's sequence breakers
        self.history: torch.Tensor | None = None  # [rows, width] prompt + reply ids of the DRY rows
        self.length = [0] * rows
        self.banned: list[tuple[str, ...]] = [()] * rows  # banned strings, with their row's tokenizer and reply
        self.reply: list[list[int]] = [[] for _ in range(rows)]
        self.tokenizers: list = [None] * rows

    def assign(self, row: int, settings, prompt: list[int], seed: int, tokenizer=None) -> None:
        self.greedy[row] = settings.temperature == 0
        self.temperature[row] = settings.temperature or 1.0
        self.top_p[row] = self.top_p_host[row] = settings.top_p
        self.temperature_last[row] = bool(getattr(settings, "temperature_last", False))
        self.min_p[row] = self.min_p_host[row] = getattr(settings, "min_p", 0.0)
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
        self._assign_extra(row, settings, prompt, tokenizer)

    def _lazy(self, name: str, dtype, fill) -> torch.Tensor:
        if getattr(self, name) is None:
            setattr(self, name, torch.full((self.rows, self.vocab), fill, dtype=dtype, device=self.device))
        return getattr(self, name)

    def _assign_extra(self, row: int, settings, prompt: list[int], tokenizer) -> None:
        """The samplers of rp_eval/chat/samplers.py and the bans, for one row."""
        g = lambda name, default: getattr(settings, name, default)  # noqa: E731 - settings of older callers
        bias = dict(g("logit_bias", ()))
        banned_ids = list(g("banned_tokens", ()))
        if g("ban_eos_token", False) and tokenizer is not None and tokenizer.eos_token_id is not None:
            banned_ids.append(tokenizer.eos_token_id)
        self.biased[row] = bool(bias or banned_ids)
        if self.biased[row]:
            line = self._lazy("bias", torch.float32, 0.0)[row]
            line.zero_()
            for token, value in bias.items():
                line[int(token)] = float(value)
            line[banned_ids] = float("-inf")
        self.typical_host[row] = g("typical_p", 1.0)
        self.typical[row] = self.typical_host[row]
        self.xtc_host[row] = g("xtc_probability", 0.0)
        self.xtc_probability[row] = self.xtc_host[row]
        self.xtc_threshold[row] = g("xtc_threshold", 0.1)
        if self.xtc_host[row] > 0:
            guard = self._lazy("xtc_guard", torch.bool, False)[row]
            guard.zero_()
            guard[samplers.guard_ids(tokenizer) if tokenizer is not None else []] = True
        self.dry_on[row] = g("dry_multiplier", 0.0) > 0
        if self.dry_on[row]:
            self.dry[row] = torch.tensor([settings.dry_multiplier, settings.dry_base, settings.dry_allowed_length])
            self.dry_range[row] = settings.dry_penalty_last_n if settings.dry_penalty_last_n > 0 else 0
            breakers = self._lazy("breakers", torch.bool, False)[row]
            breakers.zero_()
            if tokenizer is not None:
                breakers[samplers.breaker_ids(tokenizer, settings.dry_sequence_breakers)] = True
            width = len(prompt) + settings.max_new_tokens + 1
            if self.history is None or self.history.shape[1] < width:
                grown = torch.full((self.rows, width), -1, dtype=torch.long, device=self.device)
                if self.history is not None:
                    grown[:, : self.history.shape[1]] = self.history
                self.history = grown
            self.history[row, : len(prompt)] = torch.tensor(prompt, device=self.device)
            self.length[row] = len(prompt)
        self.banned[row] = tuple(g("banned_strings", ()))
        self.reply[row] = []
        self.tokenizers[row] = tokenizer
        if self.banned[row] and tokenizer is None:
            raise ValueError("banned_strings needs the request's tokenizer")

    def sample(self, logits: torch.Tensor, rows: list[int], packed: bool = False) -> torch.Tensor:
        """The next token of each row of `logits`, ids on the device. Unpacked, `logits` has one line per
        sampler row ([self.rows, vocab]) and `rows` names the rows in use (the others get an argmax nobody
        reads); packed, line i belongs to row rows[i]."""
        scores = logits.float()
        lines = list(range(len(rows))) if packed else rows
        pairs = list(zip(lines, rows, strict=True))
        biased = [(line, r) for line, r in pairs if self.biased[r]]
        if biased:
            where = torch.tensor([line for line, _ in biased], device=scores.device)
            scores[where] += self.bias[[r for _, r in biased]]
        for line, r in pairs:
            if self.penalised[r]:
                scores[line] = self._penalise(scores[line], r)
        dried = [(line, r) for line, r in pairs if self.dry_on[r]]
        if dried:
            scores = self._dry(scores, dried)
        chosen = scores.argmax(-1)
        sampled = [(line, r) for line, r in pairs if not self.greedy[r]]
        probs = None
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
        if any(self.banned[r] for r in rows):
            self._unban(chosen, scores, probs, pairs, sampled)
        for line, r in pairs:
            if self.penalised[r]:
                self.seen[r, chosen[line]] += 1
                self.made[r, chosen[line]] += 1
        if dried:
            for line, r in dried:
                if self.length[r] < self.history.shape[1]:
                    self.history[r, self.length[r]] = chosen[line]
                    self.length[r] += 1
        return chosen

    def _dry(self, scores: torch.Tensor, dried: list[tuple[int, int]]) -> torch.Tensor:
        """DRY for the rows that have it on, all at once: their histories right-aligned in one [R, L] view."""
        spans = [self.dry_range[r] or self.length[r] for _, r in dried]
        spans = [min(n, self.length[r]) for n, (_, r) in zip(spans, dried, strict=True)]
        width = max(spans)
        params = torch.tensor([r for _, r in dried], device=self.device)
        ends = torch.tensor([self.length[r] for _, r in dried], device=self.device)
        starts = ends - torch.tensor(spans, device=self.device)
        places = ends[:, None] - width + torch.arange(width, device=self.device)[None, :]
        history = self.history[params[:, None], places.clamp(min=0)]
        history = torch.where(places >= starts[:, None], history, torch.full_like(history, -1))
        where = torch.tensor([line for line, _ in dried], device=scores.device)
        multiplier, base, allowed = self.dry[params].unbind(-1)
        scores[where] = samplers.dry(scores[where], history, self.breakers[params], multiplier, base, allowed.long())
        return scores

    def _unban(self, chosen, scores, probs, pairs, sampled) -> None:
        """Draw again, for rows with banned strings, any token that would complete one (host side: decoding)."""
        at = {line: j for j, (line, _) in enumerate(sampled)}
        for line, r in pairs:
            if not self.banned[r]:
                continue
            tokenizer, reply = self.tokenizers[r], self.reply[r]
            ruled_out: list[int] = []
            while True:
                token = int(chosen[line])
                text = tokenizer.decode([*reply, token], skip_special_tokens=False)
                if not any(s in text for s in self.banned[r]):
                    break
                ruled_out.append(token)
                if len(ruled_out) >= 64:  # the model insists: the step's least bad untried token
                    break
                if line in at:
                    weights = probs[at[line]].clone()
                    weights[ruled_out] = 0
                    if float(weights.sum()) > 0:
                        chosen[line] = torch.multinomial(weights, 1, generator=self.generators[r])[0]
                        continue
                row = scores[line].clone()
                row[ruled_out] = float("-inf")
                chosen[line] = row.argmax()
            reply.append(int(chosen[line]))

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
        if any(self.top_p_host[r] < 1.0 for r in rows):
            ordered, order = x.sort(-1, descending=False)
            cumulative = ordered.softmax(-1).cumsum(-1)
            drop = cumulative <= (1 - top_p)[:, None]
            drop[:, -1] = False  # keep at least the most likely token
            x = x.masked_fill(drop.scatter(-1, order, drop), lowest)
        if any(self.typical_host[r] < 1.0 for r in rows):
            x = samplers.typical(x, self.typical[params], lowest)
        min_p = self.min_p[params]
        if any(self.min_p_host[r] > 0 for r in rows):
            probs = x.softmax(-1)
            x = x.masked_fill(probs < min_p[:, None] * probs.max(-1, keepdim=True).values, lowest)
        fired = [self._fires(r) for r in rows]
        if any(fired):
            off = torch.zeros((), dtype=torch.bool, device=self.device)
            fire = torch.stack([f if f is not None else off for f in fired])
            guard = self.xtc_guard[params]
            x = samplers.xtc(x, self.xtc_threshold[params], fire.to(x.device), guard, lowest)
        return x

    def _fires(self, r: int) -> torch.Tensor | None:
        """Whether XTC acts on row r this step (a draw from the row's own generator, on the device); None: off."""
        if self.xtc_host[r] <= 0:
            return None
        draw = torch.rand((), generator=self.generators[r], device=self.device)
        return draw < self.xtc_probability[r]
