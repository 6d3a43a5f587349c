"""The runner: every model over the chosen items, in batches through `generate_batch` (the chat's own cut),
each reply scored and stored as soon as its batch is done.

`run_evaluation` is a generator: it yields `Progress` while it works and an `EvalResult` at the end, so the
tab and the CLI stream the same job. Runs are cached by (model, task version, settings): replies already in
the store are reused, so a crash loses at most the batch in flight, and a model that fails to load or to
generate is reported and skipped while the others go on.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from rp_eval.chat.generate import BATCH, GenerationResult, GenerationSettings, generate_batch
from rp_eval.errors import RpEvalError, Said, said
from rp_eval.evaluate.metrics import LengthTarget, Reply, measure
from rp_eval.evaluate.score import Weights, combined, load_weights
from rp_eval.evaluate.task import Item, Split, Task, load_task

EVAL_GENERATION = GenerationSettings(max_new_tokens=64, temperature=0.7, top_p=0.9)


class EvalConfig(BaseModel, frozen=True):
    models: list[str] = Field(min_length=1)
    split: Split = "dev"
    limit: int | None = Field(None, ge=1)  # a seeded subset of the split; None: all of it
    seed: int = 0
    batch_size: int = Field(16, ge=1, le=512)
    generation: GenerationSettings = EVAL_GENERATION
    target: LengthTarget = LengthTarget()
    weights: str | None = None  # a weights YAML path or workspace name; None: prompts/eval/weights.yaml
    judge_model: str | None = None  # optional LLM judge (any registered model)
    reference_model: str | None = None  # optional reference model for the reply likelihood
    user: str = "あなた"


@dataclass
class EvalRow:
    model: str
    item_id: str
    persona: str
    split: str
    multi_turn: bool
    text: str
    finish_reason: str
    cut_mid_sentence: bool
    new_tokens: int
    seconds: float
    metrics: dict[str, float]
    combined: float


@dataclass
class Progress:
    done: int  # replies finished, all models together
    total: int
    message: str  # English; a `Said`, so the page can show it in its own language
    model: str = ""


@dataclass
class EvalResult:
    rows: list[EvalRow]
    failed: dict[str, str] = field(default_factory=dict)  # model -> why
    task_version: str = ""
    config: EvalConfig | None = None
    runs: dict[str, int] = field(default_factory=dict)  # model -> run id in the store


def batch_seed(seed: int, items: list[Item]) -> int:
    """The sampling seed of one batch: fixed by the run seed and the items in it, so a resumed run draws the same."""
    return zlib.crc32(f"{seed}:{','.join(i.id for i in items)}".encode())


def generate_items(
    model,
    tokenizer,
    fmt,
    task: Task,
    items: list[Item],
    settings: GenerationSettings,
    batch_size: int,
    seed: int,
    user: str = "あなた",
) -> Iterator[tuple[list[Item], list[GenerationResult]]]:
    """Replies to `items` from one loaded model, a batch at a time."""
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        conversations = [item.messages(task.personas[item.persona], user) for item in batch]
        batch_settings = settings.model_copy(update={"seed": batch_seed(seed, batch)})
        yield batch, generate_batch(model, tokenizer, fmt, conversations, batch_settings, priority=BATCH)


def to_reply(
    item: Item, task: Task, text: str, finish_reason: str, cut: bool, target: LengthTarget, user: str
) -> Reply:
    persona = task.personas[item.persona]
    return Reply(
        text=text,
        finish_reason=finish_reason,
        cut_mid_sentence=cut,
        last_user=persona.fill(item.turns[-1].content, user),
        system=persona.system_text(user),
        character=persona.name,
        style=persona.style,
        others=tuple(p.style for pid, p in task.personas.items() if pid != item.persona),
        target=target,
        user=user,
        history=(persona.greeting(user), *(persona.fill(t.content, user) for t in item.turns if t.role == "assistant")),
    )


def score_row(
    model: str, item: Item, task: Task, stored: dict, target: LengthTarget, weights: Weights, user: str
) -> EvalRow:
    """An `EvalRow` from a stored or fresh reply (`text`, `finish_reason`, `cut_mid_sentence`, ...)."""
    reply = to_reply(item, task, stored["text"], stored["finish_reason"], stored["cut_mid_sentence"], target, user)
    metrics = {**measure(reply), **stored.get("extras", {})}
    return EvalRow(
        model=model,
        item_id=item.id,
        persona=item.persona,
        split=item.split,
        multi_turn=item.multi_turn,
        text=stored["text"],
        finish_reason=stored["finish_reason"],
        cut_mid_sentence=stored["cut_mid_sentence"],
        new_tokens=stored.get("new_tokens", 0),
        seconds=stored.get("seconds", 0.0),
        metrics=metrics,
        combined=combined(metrics, weights),
    )


def run_key(row, task_version: str, config: EvalConfig) -> tuple[str, dict]:
    """The cache key of a run: the model (name, files, when registered), the task version and the settings."""
    settings = {
        "generation": config.generation.model_dump(mode="json"),
        "seed": config.seed,
        "batch_size": config.batch_size,
        "user": config.user,
    }
    ident = [row.name, row.source, str(row.created_at), task_version, settings]
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:32], settings


INTERRUPTED = "interrupted: the process running it ended; run it again to finish (stored replies are kept)"


def mark_interrupted(store) -> list[int]:
    """Runs left "running" by a process that is gone (killed, crashed) are shown as failed, with the reason."""
    from rp_eval import processes
    from rp_eval.store import evaluation as db

    return db.fail_running(store, processes.gone, INTERRUPTED)


def run_evaluation(config: EvalConfig, store=None, task: Task | None = None) -> Iterator[Progress | EvalResult]:
    """Evaluate every model of `config` (`store`: a `rp_eval.store.Store`, default the workspace's); yields
    Progress, then one EvalResult. See the module docstring. Its runs are owned by one job of this process
    (`rp_eval.processes`): left unfinished, they are shown interrupted, not running."""
    from rp_eval import processes

    with processes.running() as who:
        yield from _run_evaluation(config, store, task, who)


def _run_evaluation(config: EvalConfig, store, task: Task | None, who: dict) -> Iterator[Progress | EvalResult]:
    # imported here so that the fitness (generate_items, score_row) runs on a worker without a database
    from rp_eval.evaluate import extras
    from rp_eval.models.loading import model_cache
    from rp_eval.models.registry import get_model
    from rp_eval.store import evaluation as db
    from rp_eval.store import get_store

    store = store or get_store()
    mark_interrupted(store)
    task = task or load_task()
    weights = load_weights(config.weights)
    if config.judge_model:  # a judge that can not serve is refused before any reply is made or stored
        from rp_eval.evaluate.judge import load_judge

        load_judge(config.judge_model)
    items = task.select(config.split, config.limit, config.seed)
    if not items:
        raise RpEvalError(key="err_eval_split_empty", split=config.split)
    total, done = len(items) * len(config.models), 0
    result = EvalResult([], task_version=task.version, config=config)
    for name in config.models:
        yield Progress(done, total, Said("progress_loading", model=name), name)
        run_id = None
        try:
            row = get_model(name)
            key, settings = run_key(row, task.version, config)
            run_id = db.open_run(store, key, name, task.version, settings, who).id
            result.runs[name] = run_id
            have = {r.item_id: r for r in db.replies(store, run_id)}
            todo = [i for i in items if i.id not in have]
            done += len(items) - len(todo)
            if todo:
                loaded = model_cache().get(row)
                for batch, results in generate_items(
                    loaded.model,
                    loaded.tokenizer,
                    loaded.format,
                    task,
                    todo,
                    config.generation,
                    config.batch_size,
                    config.seed,
                    config.user,
                ):
                    fresh = [_stored(item, r, task, config) for item, r in zip(batch, results, strict=True)]
                    db.add_replies(store, run_id, fresh)
                    done += len(batch)
                    empty = sum(1 for r in results if not r.text)
                    key = "progress_replies_empty" if empty else "progress_replies"
                    yield Progress(done, total, Said(key, model=name, done=done, total=total, empty=empty), name)
            extras.add_optional(store, run_id, name, items, task, config)
            stored = {r.item_id: r for r in db.replies(store, run_id)}
            for item in items:
                s = stored[item.id]
                fields = {
                    k: getattr(s, k)
                    for k in ("text", "finish_reason", "cut_mid_sentence", "new_tokens", "seconds", "extras")
                }
                result.rows.append(score_row(name, item, task, fields, config.target, weights, config.user))
            db.finish_run(store, run_id)
        except Exception as err:  # noqa: BLE001 - one model failing must not stop the others; the reason is kept
            reason = said(err) if str(err) else type(err).__name__
            reason = reason if isinstance(reason, Said) else reason.splitlines()[0]
            result.failed[name] = reason
            if run_id is not None:
                db.finish_run(store, run_id, reason)
            yield Progress(done, total, Said("progress_failed", model=name, reason=reason), name)
    yield result


def _stored(item: Item, r: GenerationResult, task: Task, config: EvalConfig) -> dict:
    reply = to_reply(item, task, r.text, r.finish_reason, r.cut_mid_sentence, config.target, config.user)
    return {
        "item_id": item.id,
        "text": r.text,
        "raw_text": r.raw_text,
        "finish_reason": r.finish_reason,
        "cut_mid_sentence": r.cut_mid_sentence,
        "new_tokens": r.new_tokens,
        "seconds": r.seconds,
        "metrics": measure(reply),
    }


def evaluate(config: EvalConfig, store=None, task: Task | None = None) -> EvalResult:
    """`run_evaluation` run to its end."""
    *_, result = run_evaluation(config, store, task)
    return result
