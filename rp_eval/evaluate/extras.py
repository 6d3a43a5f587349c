"""Optional model-based metrics, off by default (each costs a second model):

- `judge`: an LLM judge (any registered model) grades the reply 1-5 on a role-play rubric in one forward pass
  (the expected grade, `judge.py`); stored on [0, 1].
- `ref_likelihood`: a reference model's per-token likelihood of the reply given the conversation,
  exp(mean log p) = 1 / perplexity, on (0, 1].

Both go through the model cache.
"""

from __future__ import annotations

import math

import torch

from rp_eval.chat.formats import Message, render_prompt
from rp_eval.evaluate.judge import Case, Judge, load_judge
from rp_eval.evaluate.task import Item, Task
from rp_eval.store import Store
from rp_eval.store import evaluation as db


def judge_cases(items: list[Item], task: Task, replies: list[str], user: str = "あなた") -> list[Case]:
    """What the judge reads for each item's reply: persona, the item's turns (filled), the reply."""
    cases = []
    for item, reply in zip(items, replies, strict=True):
        persona = task.personas[item.persona]
        turns = [Message(role=t.role, content=persona.fill(t.content, user)) for t in item.turns]
        cases.append(Case(persona, turns, reply))
    return cases


def judge(loaded, items: list[Item], task: Task, replies: list[str], batch_size: int = 8) -> list[float]:
    """The `judge` metric of each reply on [0, 1]: the one-pass expected grade (`judge.py`)."""
    j = loaded if isinstance(loaded, Judge) else Judge(loaded.model, loaded.tokenizer, loaded.format, loaded.name)
    j.batch_size = batch_size
    return j.pointwise(judge_cases(items, task, replies))


def reply_likelihood(loaded, messages: list[Message], reply: str) -> float | None:
    """exp(mean log p(reply token | conversation, earlier reply tokens)) under a reference model."""
    tok = loaded.tokenizer
    prompt = tok(render_prompt(loaded.format, tok, messages), add_special_tokens=False)["input_ids"]
    answer = tok(reply, add_special_tokens=False)["input_ids"]
    if not answer:
        return None
    ids = torch.tensor([prompt + answer], device=loaded.model.device)
    with torch.inference_mode():
        logits = loaded.model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
    logp = logits.log_softmax(-1).gather(-1, ids[0, len(prompt) :, None]).mean().item()
    return round(math.exp(logp), 6)


def add_optional(store: Store, run_id: int, model: str, items: list[Item], task: Task, config) -> None:
    """Fill in the optional metrics the config turns on, for stored replies that lack them."""
    if not (config.judge_model or config.reference_model):
        return
    from rp_eval.models.loading import model_cache

    stored = {r.item_id: r for r in db.replies(store, run_id)}
    updates: dict[str, dict] = {}
    if config.judge_model:
        need = [i for i in items if "judge" not in stored[i.id].extras]
        if need:
            grades = judge(load_judge(config.judge_model), need, task, [stored[i.id].text for i in need])
            for item, grade in zip(need, grades, strict=True):
                updates.setdefault(item.id, {})["judge"] = grade
    if config.reference_model:
        need = [i for i in items if "ref_likelihood" not in stored[i.id].extras]
        if need:
            loaded = model_cache().get(config.reference_model)
            for item in need:
                value = reply_likelihood(
                    loaded, item.messages(task.personas[item.persona], config.user), stored[item.id].text
                )
                if value is not None:
                    updates.setdefault(item.id, {})["ref_likelihood"] = value
    if updates:
        db.set_extras(store, run_id, updates)
