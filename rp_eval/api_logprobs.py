"""`logprobs` / `top_logprobs` of a Chat Completion (SillyTavern's token-probability view): the log-probability
of every generated token after the prompt and the tokens before it, with its best alternatives, in OpenAI's
`choices[i].logprobs.content` shape. Scored by one forward pass of the prompt and the reply after the reply is
made (`rp_eval.scoring`, as the text route's `logprobs`), so the numbers are the model's own distribution,
before temperature and the other samplers reshape it."""

from __future__ import annotations

from rp_eval import scoring
from rp_eval.chat.generate import context_of


def _entry(text: str, logprob: float) -> dict:
    return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8", "replace"))}


def chat_logprobs(loaded, prompt_ids: list[int], made: list[int], top: int) -> dict:
    """OpenAI's chat `logprobs` object for the reply `made` (every id sampled, the end token included)."""
    if not made:
        return {"content": [], "refusal": None}
    tok = loaded.tokenizer
    scores = scoring.score(loaded.model, tok, prompt_ids + made, top, context_of(loaded.model))
    texts = scoring.pieces(tok, scores.ids)
    content = []
    for i in range(len(prompt_ids), len(scores.ids)):
        alternatives = [
            _entry(texts[i] if alt == scores.ids[i] else tok.decode([alt], skip_special_tokens=False), value)
            for alt, value in scores.top[i] or []
        ]
        content.append({**_entry(texts[i], scores.logprobs[i]), "top_logprobs": alternatives})
    return {"content": content, "refusal": None}
