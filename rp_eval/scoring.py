"""Log-probabilities of a token sequence under a loaded model, by one forward pass.

What loglikelihood evaluation needs (lm-eval's `local-completions` asks for `echo` with `logprobs`): for each
token after the first, the log-probability the model gave it after the tokens before it, and the `top` most
likely alternatives at that position. The first token has none (nothing comes before it), as in OpenAI's
answers. The numbers are the model's own distribution (log-softmax of its logits in float32), before any
sampler setting (temperature, top-p, penalties), as vLLM reports them by default.

The pass runs beside the generation service's steps on the same weights (no cache, inference mode), so it
takes no KV rows from chats in flight.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rp_eval.errors import RpEvalError

MAX_TOP = 20  # alternatives per position, OpenAI's limit for top_logprobs


class ScoringError(RpEvalError):
    """A sequence that can not be scored: `field` names what is at fault (ids, top, length)."""

    def __init__(self, message: str, field: str = "ids", tokens: int = 0, context: int = 0) -> None:
        super().__init__(message)
        self.field, self.tokens, self.context = field, tokens, context


@dataclass
class Scores:
    ids: list[int]
    logprobs: list[float | None]  # per token; None for the first
    top: list[list[tuple[int, float]] | None]  # per token, the `top` most likely ids, best first; None for the first


def vocab_size(model, tokenizer) -> int:
    """How many ids both the tokenizer can spell and the model's embedding can read."""
    rows = model.get_input_embeddings().weight.shape[0]
    return min(rows, len(tokenizer))


def check_ids(ids: list[int], model, tokenizer) -> None:
    size = vocab_size(model, tokenizer)
    bad = next((i for i in ids if not 0 <= i < size), None)
    if bad is not None:
        raise ScoringError(f"token id {bad} is not in the vocabulary (ids run from 0 to {size - 1})")


def score(model, tokenizer, ids: list[int], top: int = 0, context: int | None = None) -> Scores:
    """The log-probability of every token of `ids` after the ones before it, with the `top` best alternatives."""
    if not ids:
        raise ScoringError("nothing to score: the sequence is empty")
    if not 0 <= top <= MAX_TOP:
        raise ScoringError(f"{top} alternatives asked for; at most {MAX_TOP}", field="top")
    if context is not None and len(ids) > context:
        raise ScoringError(
            f"{len(ids)} tokens, but the model reads at most {context}",
            field="length",
            tokens=len(ids),
            context=context,
        )
    check_ids(ids, model, tokenizer)
    device = next(model.parameters()).device
    with torch.inference_mode():
        tokens = torch.tensor([ids], device=device)
        logits = model(input_ids=tokens, use_cache=False).logits[0, :-1].float()
        logp = logits.log_softmax(-1)
        chosen = logp.gather(-1, tokens[0, 1:, None])[:, 0].tolist()
        best = logp.topk(top, dim=-1) if top else None
    alternatives: list[list[tuple[int, float]] | None] = [None]
    if best is not None:
        values, where = best.values.tolist(), best.indices.tolist()
        alternatives += [list(zip(w, v, strict=True)) for w, v in zip(where, values, strict=True)]
    else:
        alternatives += [[] for _ in chosen]
    return Scores(ids=list(ids), logprobs=[None, *chosen], top=alternatives)


def pieces(tokenizer, ids: list[int]) -> list[str]:
    """Each token's text such that the pieces join into the decoded sequence (a character split over several
    byte tokens shows at the token that completes it). Decoded in a short window before each token, as vLLM's
    incremental detokenizer does, so the whole is not decoded once per token."""
    out: list[str] = []
    for i in range(len(ids)):
        start = max(0, i - 6)
        before = tokenizer.decode(ids[start:i], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        upto = tokenizer.decode(ids[start : i + 1], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if upto.startswith(before):
            out.append(upto[len(before) :])
        else:  # a character still open at the window's end: this token's text as it decodes alone
            out.append(tokenizer.decode([ids[i]], skip_special_tokens=False, clean_up_tokenization_spaces=False))
    return out
