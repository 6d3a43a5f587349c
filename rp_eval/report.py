"""`rp-eval report`: one page of what the workspace knows, from the store alone (no model is loaded).

Every registered model with its lineage (base, fine-tuned adapter, merge, and what it was made from), its latest
finished automatic evaluation on the current task, re-scored with the current weights (so calibrating the
weights on the ratings changes the report without generating again), and its human ratings (Bradley-Terry
score, votes, Likert means): the loop's automatic and human judgements side by side.
"""

from __future__ import annotations

import argparse
import html
import json
from pathlib import Path

import pandas as pd

from rp_eval.evaluate import report as eval_report
from rp_eval.evaluate.runner import EvalResult, mark_interrupted
from rp_eval.evaluate.score import load_weights
from rp_eval.evaluate.task import Task, load_task
from rp_eval.store import Store, get_store
from rp_eval.store import evaluation as db


def stored_result(store: Store, task: Task | None = None, weights: str | None = None) -> EvalResult:
    """Each model's newest finished run on this task version, its stored replies scored with `weights`."""
    task = task or load_task()
    scoring = load_weights(weights)
    items = {i.id: i for i in task.items}
    result = EvalResult([], task_version=task.version)
    mark_interrupted(store)
    for run in db.list_runs(store):  # newest first
        if run.status != "done" or run.task_version != task.version or run.model in result.runs:
            continue
        eval_report.add_stored_run(result, store, run, task, items, scoring)
    return result


def summary(store: Store, result: EvalResult) -> pd.DataFrame:
    """One row per registered model: lineage, the evaluation's means and the human ratings."""
    lineage = pd.DataFrame(
        [
            {"model": m.name, "kind": m.kind, "parents": ", ".join(m.parents or []), "made_by": _made_by(m.made_by)}
            for m in store.list_models()
        ],
        columns=["model", "kind", "parents", "made_by"],
    )
    scores = eval_report.model_table(result, eval_report.human_table(store))
    if scores.empty:
        return lineage
    out = lineage.merge(scores, on="model", how="left")
    return out.sort_values("combined", ascending=False, na_position="last").reset_index(drop=True)


def _made_by(made: dict | None) -> str:
    """A short line of how a model was made (a recipe, a training run, an evolution), for the table."""
    if not made:
        return ""
    return json.dumps(made, ensure_ascii=False, default=str)[:120]


def html_page(table: pd.DataFrame, result: EvalResult) -> str:
    head = [
        "<h2>Models: lineage, automatic evaluation and human ratings</h2>",
        f"<p>{len(table)} registered models; {len(result.runs)} with a finished evaluation on task version "
        f"{html.escape(result.task_version)} ({len(result.rows)} replies, scored with the current weights).</p>",
        eval_report.bars(table, [c for c in ("combined", "natural_stop") if c in table]),
    ]
    if not result.rows:
        return (
            "<!doctype html><html lang='ja'><meta charset='utf-8'><title>rp_eval report</title><body>"
            + "".join(head)
            + "<p>No evaluation yet: run one in the Evaluate tab or with <code>rp-eval eval run</code>.</p></body></html>"
        )
    page = eval_report.html_report(result, eval_report.human_table(None), title="rp_eval report")
    at = page.index("</h1>") + len("</h1>")
    return page[:at] + "\n".join(head) + page[at:]


def write(path: Path, text: str) -> Path:
    return eval_report.write_text(Path(path), text)


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="every model: lineage, automatic evaluation and human ratings, from the store")
    p.add_argument("--out", default=None, help="write the one-file HTML report here")
    p.add_argument("--weights", default=None, help="weights YAML path or workspace name (default: the task's)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    store = get_store()
    result = stored_result(store, weights=args.weights)
    table = summary(store, result)
    if args.out:
        print(f"wrote {write(args.out, html_page(table, result))}")
    if args.json:
        print(json.dumps(json.loads(table.to_json(orient="records", force_ascii=False)), ensure_ascii=False))
    elif not args.out:
        print(table.to_string(index=False))
    return 0
