"""Optional model-based metrics, off by default (each costs a second model):

- `judge`: an LLM judge (any registered model) rates the reply 1-5 on a role-play rubric; stored on [0, 1].
- `ref_likelihood`: a reference model's per-token likelihood of the reply given the conversation,
  exp(mean log p) = 1 / perplexity, on (0, 1].

Both go through the model cache; the judge's answer goes through `generate_batch` like every other reply.
"""

from __future__ import annotations

import math
import re

import torch

from rp_eval.chat.formats import Message, render_prompt
from rp_eval.chat.generate import GenerationSettings, generate_batch
from rp_eval.evaluate.task import Item, Task
from rp_eval.store import Store
from rp_eval.store import evaluation as db

RUBRIC = (
    "あなたはロールプレイ対話の審査員です。次のキャラクター設定と会話を読み、最後の{char}の返答を1から5の整数で"
    "採点してください。5: キャラクターの口調と性格が保たれ、自然な日本語で、会話として短く適切に応答している。"
    "3: おおむね適切だが、口調の揺れや不自然さがある。1: キャラクターが崩れている、意味が通らない、"
    "または相手の台詞まで書いている。数字だけを答えてください。"
)
JUDGE_SETTINGS = GenerationSettings(max_new_tokens=4, temperature=0.0, trim_to_sentence=False)


def parse_grade(text: str) -> float | None:
    """The first digit 1-5 (ASCII or full width) in the judge's answer, on [0, 1]; None if there is none."""
    match = re.search(r"[1-5１-５]", text)
    return None if match is None else (int(match.group().translate(str.maketrans("１２３４５", "12345"))) - 1) / 4


def judge_messages(item: Item, task: Task, reply: str, user: str = "あなた") -> list[Message]:
    persona = task.personas[item.persona]
    turns = "\n".join(
        f"{persona.name if t.role == 'assistant' else user}: {persona.fill(t.content, user)}" for t in item.turns
    )
    body = f"【キャラクター】\n{persona.system_text(user)}\n\n【会話】\n{turns}\n{persona.name}: {reply}\n\n点数:"
    return [Message(role="system", content=RUBRIC.format(char=persona.name)), Message(role="user", content=body)]


def judge(loaded, items: list[Item], task: Task, replies: list[str], batch_size: int = 16) -> list[float | None]:
    grades: list[float | None] = []
    for start in range(0, len(items), batch_size):
        conversations = [
            judge_messages(i, task, r)
            for i, r in zip(items[start : start + batch_size], replies[start : start + batch_size], strict=True)
        ]
        results = generate_batch(loaded.model, loaded.tokenizer, loaded.format, conversations, JUDGE_SETTINGS)
        grades += [parse_grade(r.raw_text) for r in results]
    return grades


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
            loaded = model_cache().get(config.judge_model)
            for item, grade in zip(need, judge(loaded, need, task, [stored[i.id].text for i in need]), strict=True):
                if grade is not None:
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
