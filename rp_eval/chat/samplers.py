"""The role-play samplers, over a batch of rows with per-row settings (used by rp_eval/chat/sampling.py).

Hand-written because the libraries that have them (text-generation-webui, llama.cpp, transformers' logits
processors) take one setting for a whole batch or one row at a time; these are the same algorithms as tensor
operations over every row that asked for them at once, with no host synchronisation:

- DRY ("don't repeat yourself", p-e-w's sampler in text-generation-webui and llama.cpp): a token that would
  extend a repetition of the row's history by one more token loses `multiplier * base ** (n - allowed_length)`
  from its logit, `n` the length of the repeated run it would extend (at least `allowed_length`); a run stops at
  a sequence breaker (a token of "\\n", ":", '"', "*" by default). Runs are followed back at most
  `DRY_MAX_MATCH` tokens: past that the penalty is already beyond any logit at any base above 1.
- XTC ("exclude top choices", also p-e-w's): with probability `xtc_probability` per step, every token at least
  `xtc_threshold` likely is removed but the least likely of them; not when that would remove a newline or the
  end token (text-generation-webui's rule).
- typical sampling (Meister et al., as transformers' TypicalLogitsWarper): keep the tokens whose surprise is
  closest to the distribution's entropy, up to `typical_p` of the probability mass.
"""

from __future__ import annotations

import torch

DRY_MAX_MATCH = 64


def dry(scores: torch.Tensor, history: torch.Tensor, breakers: torch.Tensor, multiplier, base, allowed):
    """`scores` [R, V] less DRY's penalties. `history` [R, L]: each row's tokens, left-padded with -1;
    `breakers` [R, V] bool; `multiplier`, `base`, `allowed` [R] (a row with multiplier 0 is left as it is)."""
    rows, length = history.shape
    if length < 2:
        return scores
    last = history[:, -1]
    safe = history.clamp(min=0)
    is_break = breakers.gather(1, safe) | (history < 0)  # [R, L]: a padding place breaks a run too
    # candidates: an earlier place i holding the last token, whose next token is not a breaker
    before, after = history[:, :-1], history[:, 1:]
    candidate = (before == last[:, None]) & ~is_break[:, 1:] & ~is_break[:, -1:]
    # the run length at i: 1 + how many tokens before i equal those before the last one, back to a breaker
    depth = min(DRY_MAX_MATCH, length - 1)
    padded = torch.cat([torch.full((rows, depth), -1, dtype=history.dtype, device=history.device), history], 1)
    k = torch.arange(1, depth, device=history.device)
    i = torch.arange(length - 1, device=history.device)
    earlier = padded[:, depth + i[None, :] - k[:, None]]  # [R, depth-1, L-1]: history[i - k]
    target = history[:, length - 1 - k]  # [R, depth-1]: history[L-1-k]
    same = (earlier == target[:, :, None]) & ~is_break[:, length - 1 - k][:, :, None] & (target >= 0)[:, :, None]
    run = 1 + same.to(torch.int32).cumprod(1).sum(1)  # [R, L-1]
    hit = candidate & (run >= allowed[:, None])
    exponent = (run - allowed[:, None]).clamp(min=0).float()
    penalty = torch.where(hit, multiplier[:, None] * base[:, None] ** exponent, torch.zeros((), device=scores.device))
    per_token = torch.zeros_like(scores).scatter_reduce(1, after.clamp(min=0), penalty, "amax")
    return scores - per_token


def typical(x: torch.Tensor, mass: torch.Tensor, lowest: float) -> torch.Tensor:
    """Typical sampling over rows [S, V] with per-row `mass` [S]; rows with mass 1 are returned as they are."""
    normalized = x.log_softmax(-1)
    p = normalized.exp()
    entropy = -(normalized * p).nansum(-1, keepdim=True)
    shifted = (-normalized - entropy).abs()
    ordered, order = shifted.sort(-1)
    cumulative = x.gather(-1, order).softmax(-1).cumsum(-1)
    last = (cumulative < mass[:, None]).sum(-1).clamp(max=x.shape[-1] - 1)
    drop_sorted = ordered > ordered.gather(1, last[:, None])
    drop_sorted[:, 0] = False  # keep at least one token
    drop = drop_sorted.scatter(1, order, drop_sorted) & (mass < 1.0)[:, None]
    return x.masked_fill(drop, lowest)


def xtc(x: torch.Tensor, threshold: torch.Tensor, fire: torch.Tensor, guard: torch.Tensor, lowest: float):
    """XTC over rows [S, V]: rows where `fire` [S] lose their tokens above `threshold` [S] but the least likely
    of those, unless that would remove a token of `guard` [S, V] (newline, end of text). No sort: the least
    likely of the tokens above the threshold is a minimum (tokens tied with it are all kept)."""
    probs = x.softmax(-1)
    above = probs >= threshold[:, None]
    least = torch.where(above, probs, torch.full_like(probs, 2.0)).min(-1, keepdim=True).values
    drop = above & (probs > least)
    fire = fire & ~(drop & guard).any(-1)
    return x.masked_fill(drop & fire[:, None], lowest)


def breaker_ids(tokenizer, breakers) -> list[int]:
    """The token that ends each breaker string when it follows a letter (text-generation-webui's rule: the
    breaker as the model would write it inside text, not at the start of a prompt)."""
    out = []
    for s in breakers:
        ids = tokenizer.encode(f"a{s}", add_special_tokens=False)
        if ids:
            out.append(ids[-1])
    return out


def guard_ids(tokenizer) -> list[int]:
    """What XTC must never remove: the newline token and the end token."""
    ids = tokenizer.encode("\n", add_special_tokens=False)[-1:]
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return ids
