"""The fitness of a model for the evolutionary merge: the combined score's mean over a seeded subset of a split.

One number on [0, 1], higher is better. Cheap (a subset, greedy, 64 new tokens, one batch per 32 items) and
deterministic for a given seed (greedy decoding; the subset is drawn by the seed). It takes a loaded model
(e.g. an in-memory merge that is not registered) and goes through the same `generate_batch` cut as chat and
evaluation; nothing is stored.
"""

from __future__ import annotations

import time

from rp_eval.chat.generate import GenerationSettings
from rp_eval.evaluate.extras import judge as judge_replies
from rp_eval.evaluate.metrics import LengthTarget
from rp_eval.evaluate.runner import EvalRow, generate_items, score_row
from rp_eval.evaluate.score import Weights, load_weights
from rp_eval.evaluate.task import Split, Task, load_task

FITNESS_GENERATION = GenerationSettings(max_new_tokens=64, temperature=0.0)


def fitness_rows(
    model,
    tokenizer,
    fmt,
    *,
    split: Split = "dev",
    limit: int | None = 32,
    seed: int = 0,
    batch_size: int = 32,
    weights: Weights | None = None,
    task: Task | None = None,
    generation: GenerationSettings = FITNESS_GENERATION,
    target: LengthTarget = LengthTarget(),
    name: str = "candidate",
    judge=None,
    seconds: dict[str, float] | None = None,
) -> list[EvalRow]:
    """Every scored reply behind the fitness (for a candidate's drill-down). `judge`: a `Judge` (judge.py) that
    grades each batch's replies as the `judge` metric, weighted as the weights say. `seconds`, if given, gets
    the time spent generating and scoring (keys "generation", "prefill" (a part of generation) and "metrics",
    added to what is there)."""
    task = task or load_task()
    weights = weights or load_weights()
    items = task.select(split, limit, seed)
    rows = []
    seconds = {} if seconds is None else seconds
    clock = time.perf_counter()
    for batch, results in generate_items(model, tokenizer, fmt, task, items, generation, batch_size, seed):
        now = time.perf_counter()
        seconds["generation"] = seconds.get("generation", 0.0) + now - clock
        # the batch's prefill: until its last row had its first token (the rows are prefilled together)
        prefill = max((r.first_token_seconds for r in results), default=0.0)
        seconds["prefill"] = seconds.get("prefill", 0.0) + min(prefill, now - clock)
        grades = judge_replies(judge, batch, task, [r.text for r in results]) if judge else [None] * len(batch)
        for item, r, grade in zip(batch, results, grades, strict=True):
            stored = {
                "text": r.text,
                "finish_reason": r.finish_reason,
                "cut_mid_sentence": r.cut_mid_sentence,
                "new_tokens": r.new_tokens,
                "seconds": r.seconds,
                "extras": {} if grade is None else {"judge": grade},
            }
            rows.append(score_row(name, item, task, stored, target, weights, "あなた"))
        clock = time.perf_counter()
        seconds["metrics"] = seconds.get("metrics", 0.0) + clock - now
    return rows


def fitness(model, tokenizer, fmt, **options) -> float:
    """Mean combined score over the chosen items (options as `fitness_rows`)."""
    rows = fitness_rows(model, tokenizer, fmt, **options)
    return round(sum(r.combined for r in rows) / len(rows), 6) if rows else 0.0
