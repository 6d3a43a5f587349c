"""Tables, plot data, CSV and a one-file HTML report from an `EvalResult` (pandas; no UI code here).

- `model_table`: one row per model, the combined score and every metric's mean as columns, and the human
  Bradley-Terry score and Likert means joined from the ratings when there are any;
- `finish_table`, `length_table`: the finish-reason breakdown and the distribution of reply lengths;
- `item_table`: every reply with its scores and the user's line it answers (the drill-down), also what the CSV holds;
- `past_runs`, `reopen`: the runs kept in the store, and any of them scored again as an `EvalResult`, so a
  result outlives the page that started it;
- `html_report`: all of it in one HTML file with bar plots (pandas Styler bars), for a research meeting.
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

import pandas as pd

from rp_eval.errors import Said
from rp_eval.evaluate.metrics import BY_NAME, METRICS, LengthTarget
from rp_eval.evaluate.runner import EvalResult, score_row
from rp_eval.evaluate.score import load_weights
from rp_eval.evaluate.task import Task, load_task
from rp_eval.store import Store

FINISH_REASONS = ("eos", "stop_string", "length_trimmed", "length")
LENGTH_BINS = (0, 10, 20, 40, 60, 80, 120, 200, 10_000)
LENGTH_LABELS = [f"{a}-{b - 1}" if b < 10_000 else f"{a}+" for a, b in zip(LENGTH_BINS, LENGTH_BINS[1:], strict=False)]


def item_table(result: EvalResult, task: Task | None = None) -> pd.DataFrame:
    """Every reply with its scores; with `task`, also the user's line it answers (`user_line`)."""
    user = result.config.user if result.config else "あなた"
    lines = {}
    if task is not None:
        by_id = {i.id: i for i in task.items}
        for r in result.rows:
            item = by_id.get(r.item_id)
            if item is not None and r.item_id not in lines:
                lines[r.item_id] = task.personas[item.persona].fill(item.turns[-1].content, user)
    rows = []
    for r in result.rows:
        head = {
            "model": r.model,
            "item": r.item_id,
            "persona": r.persona,
            "split": r.split,
            "multi_turn": r.multi_turn,
            **({"user_line": lines.get(r.item_id, "")} if task is not None else {}),
            "reply": r.text,
            "finish_reason": r.finish_reason,
            "combined": r.combined,
        }
        rows.append({**head, **r.metrics})
    return pd.DataFrame(rows)


def human_table(store: Store | None) -> pd.DataFrame:
    """Per model: the ratings' Bradley-Terry score and Likert means (empty when there are no ratings)."""
    try:
        from rp_eval.ratings import leaderboard
    except ImportError:  # the ratings feature is not installed in this checkout
        return pd.DataFrame(columns=["model"])
    if store is None:
        return pd.DataFrame(columns=["model"])
    board = leaderboard.from_store(store, rounds=200)
    out = pd.DataFrame(columns=["model"])
    if not board.arena.empty:
        out = board.arena[["model", "score", "votes"]].rename(columns={"score": "human_bt", "votes": "human_votes"})
    if not board.likert.empty:
        likert = board.likert.pivot(index="model", columns="axis", values="mean").add_prefix("likert_").reset_index()
        out = likert if out.empty else out.merge(likert, on="model", how="outer")
    return out


def model_table(result: EvalResult, human: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per model: replies, combined score, metric means; human columns joined when given."""
    items = item_table(result)
    if items.empty:
        return pd.DataFrame(columns=["model", "replies", "combined"])
    names = [m.name for m in METRICS] + [c for c in ("judge", "ref_likelihood") if c in items]
    table = items.groupby("model", sort=False).agg(replies=("item", "size"), combined=("combined", "mean"))
    table = table.join(items.groupby("model", sort=False)[names].mean()).reset_index()
    if human is not None and not human.empty:
        table = table.merge(human, on="model", how="left")
    return table.round(4).sort_values("combined", ascending=False).reset_index(drop=True)


def finish_table(result: EvalResult) -> pd.DataFrame:
    """Long form (model, finish_reason, replies, share) for a stacked bar plot."""
    items = item_table(result)
    if items.empty:
        return pd.DataFrame(columns=["model", "finish_reason", "replies", "share"])
    counts = items.groupby(["model", "finish_reason"]).size().rename("replies").reset_index()
    counts["share"] = (counts["replies"] / counts.groupby("model")["replies"].transform("sum")).round(4)
    return counts


def length_table(result: EvalResult) -> pd.DataFrame:
    """Long form (model, chars bin, replies) of reply lengths in characters."""
    items = item_table(result)
    if items.empty:
        return pd.DataFrame(columns=["model", "chars", "replies"])
    binned = pd.cut(items["chars"], bins=list(LENGTH_BINS), right=False, labels=LENGTH_LABELS)
    counts = items.assign(chars=binned).groupby(["model", "chars"], observed=False).size().rename("replies")
    return counts.reset_index().astype({"chars": str})


def metric_long(table: pd.DataFrame) -> pd.DataFrame:
    """(model, metric, value) for the combined score and the directed metrics, each turned so 1 is the good end."""
    keep = ["combined"] + [m.name for m in METRICS if m.good is not None and m.name in table]
    long = table.melt(id_vars="model", value_vars=keep, var_name="metric", value_name="value")
    turn = long["metric"].map(lambda n: n in BY_NAME and BY_NAME[n].good == "low")
    long.loc[turn, "value"] = 1 - long.loc[turn, "value"]
    return long


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path


def write_csv(result: EvalResult, path: Path, task: Task | None = None) -> Path:
    from rp_eval.ratings.records import neutral_cells  # no cell a spreadsheet would run as a formula

    return write_text(Path(path), neutral_cells(item_table(result, task)).to_csv(index=False))


def bars(frame: pd.DataFrame, columns: list[str], vmax: float = 1.0) -> str:
    cols = [c for c in columns if c in frame]
    style = frame.style.bar(subset=cols, color="#7aa6d8", vmin=0, vmax=vmax) if cols else frame.style
    # every cell and header as text: a model name such as `<script>...` must not run in the report's browser
    return style.format(precision=3, escape="html").format_index(escape="html", axis=1).hide(axis="index").to_html()


def html_report(result: EvalResult, human: pd.DataFrame | None = None, title: str = "rp_eval evaluation") -> str:
    table = model_table(result, human)
    cfg = result.config
    lines = [
        f"<!doctype html><html lang='ja'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 6px}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>task version {result.task_version}; split {cfg.split if cfg else ''}; "
        f"{len(result.rows)} replies; seed {cfg.seed if cfg else ''}; "
        f"settings {html.escape(cfg.generation.model_dump_json() if cfg else '')}</p>",
    ]
    if result.failed:
        lines.append(
            "<p><b>Failed:</b> "
            + "; ".join(f"{html.escape(m)}: {html.escape(e)}" for m, e in result.failed.items())
            + "</p>"
        )
    lines += ["<h2>Models</h2>", bars(table, ["combined", *[m.name for m in METRICS if m.good]])]
    finish = finish_table(result).pivot(index="model", columns="finish_reason", values="share").fillna(0).reset_index()
    lines += ["<h2>How replies ended (share)</h2>", bars(finish, list(FINISH_REASONS))]
    long = length_table(result)
    lengths = long.pivot(index="model", columns="chars", values="replies").fillna(0)
    lengths = lengths[[c for c in LENGTH_LABELS if c in lengths]].reset_index()  # bins in order, not alphabetical
    lines += [
        "<h2>Reply length (characters)</h2>",
        bars(lengths, [c for c in lengths.columns if c != "model"], max(1.0, lengths.iloc[:, 1:].to_numpy().max())),
    ]
    items = item_table(result)
    worst = items.sort_values("combined").head(20)[["model", "item", "reply", "finish_reason", "combined"]]
    lines += ["<h2>Lowest-scoring replies</h2>", worst.to_html(index=False, escape=True), "</body></html>"]
    return "\n".join(lines)


def write_report(result: EvalResult, path: Path, human: pd.DataFrame | None = None) -> Path:
    return write_text(Path(path), html_report(result, human))


# -- past runs, from the store ------------------------------------------------------------------------------

RUN_COLUMNS = ["run", "model", "status", "replies", "task_version", "temperature", "max_new_tokens", "seed", "updated"]


def past_runs(store: Store) -> pd.DataFrame:
    """Every stored evaluation run, newest first: one row per (model, settings), with its reply count."""
    from rp_eval.evaluate.runner import mark_interrupted
    from rp_eval.store import evaluation as db

    mark_interrupted(store)
    counts = db.reply_counts(store)
    rows = []
    for run in db.list_runs(store):
        gen = (run.settings or {}).get("generation", {})
        rows.append(
            {
                "run": run.id,
                "model": run.model,
                "status": run.status,
                "replies": counts.get(run.id, 0),
                "task_version": run.task_version,
                "temperature": gen.get("temperature"),
                "max_new_tokens": gen.get("max_new_tokens"),
                "seed": (run.settings or {}).get("seed"),
                "updated": run.updated_at.strftime("%Y-%m-%d %H:%M") if run.updated_at else "",
            }
        )
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def latest_runs(runs: pd.DataFrame, task_version: str) -> list[int]:
    """The newest finished run of each model on this task version (what the tab opens with)."""
    done = runs[(runs["status"] == "done") & (runs["task_version"] == task_version) & (runs["replies"] > 0)]
    return [int(r) for r in done.drop_duplicates("model")["run"]]


def reopen(store: Store, run_ids: list[int], task: Task | None = None, weights: str | None = None) -> EvalResult:
    """The stored replies of `run_ids` scored again (with `weights`, default the current ones) as one result.
    A run made on another task version is listed in `failed` with the reason, not scored against items that
    may have changed; so is a second run of a model already in the result."""
    from rp_eval.store import evaluation as db

    task = task or load_task()
    scoring = load_weights(weights)
    items = {i.id: i for i in task.items}
    result = EvalResult([], task_version=task.version)
    for run_id in run_ids:
        run = db.get_run(store, int(run_id))
        if run is None:
            result.failed[f"#{run_id}"] = Said("reopen_missing")
            continue
        label = f"{run.model} (#{run.id})"
        if run.task_version != task.version:
            result.failed[label] = Said("reopen_task_version", made=run.task_version, current=task.version)
            continue
        if run.model in result.runs:
            result.failed[label] = Said("reopen_shown", model=run.model, run=result.runs[run.model])
            continue
        add_stored_run(result, store, run, task, items, scoring)
    return result


STORED_FIELDS = ("text", "finish_reason", "cut_mid_sentence", "new_tokens", "seconds", "extras")


def add_stored_run(result: EvalResult, store: Store, run, task: Task, items: dict, scoring) -> None:
    """A stored run's replies, scored with `scoring`, added to `result` under the run's model."""
    from rp_eval.store import evaluation as db

    result.runs[run.model] = run.id
    user = (run.settings or {}).get("user", "あなた")
    for reply in db.replies(store, run.id):
        item = items.get(reply.item_id)
        if item is not None:
            fields = {k: getattr(reply, k) for k in STORED_FIELDS}
            result.rows.append(score_row(run.model, item, task, fields, LengthTarget(), scoring, user))
