"""The Evaluate table's prediction-powered columns: each model's automatic score corrected by the humans' 1-5 scores.

The automatic score is the combined score (metrics + judge) of every reply of the result; the human scores are
the Rate tab's "overall" scores of those very replies (a score stored with source `eval_reply` and the reply's id,
kept only when the reply belongs to the run the result shows: a score of another run's reply is of another text).
`rp_eval.ratings.ppi.ppi_scores` does the statistics. The estimate is of the humans' mean score (1-5): the
automatic mean over every item plus the mean human − automatic residual on the rated items. The combined score
lies on [0, 1] and the human score on 1-5, so the tuned form (PPI++) is used: its λ also rescales the automatic
score, where plain PPI (λ = 1) would carry the scale gap as a residual of large variance.
"""

from __future__ import annotations

import pandas as pd

from rp_eval.evaluate.report import item_table
from rp_eval.evaluate.runner import EvalResult
from rp_eval.ratings.ppi import ppi_scores
from rp_eval.store import Store
from rp_eval.store import evaluation as eval_store
from rp_eval.store import ratings as table

AXIS = "overall"
COLUMNS = ["model", "ppi", "ppi_lower", "ppi_upper", "human_mean", "human_lower", "human_upper", "human_ratings"]


def human_scores(store: Store, result: EvalResult) -> pd.DataFrame:
    """The human `AXIS` scores of the result's own replies (columns model, item, score, rater)."""
    run_model = {run_id: model for model, run_id in result.runs.items()}
    reply_of: dict[str, tuple[str, str]] = {}
    for run_id, model in run_model.items():
        for reply in eval_store.replies(store, run_id):
            reply_of[str(reply.id)] = (model, reply.item_id)
    rows = []
    for s in table.list_scores(store):
        if s.source_kind == "eval_reply" and s.source_id in reply_of and AXIS in (s.scores or {}):
            model, item = reply_of[s.source_id]
            rows.append({"model": model, "item": item, "score": float(s.scores[AXIS]), "rater": s.rater})
    return pd.DataFrame(rows, columns=["model", "item", "score", "rater"])


def ppi_table(store: Store, result: EvalResult) -> tuple[pd.DataFrame, list[str]]:
    """Per model with human scores: the prediction-powered score and interval, the human-only mean and interval,
    the number of human ratings used (COLUMNS); empty when no reply of the result has a human score. The
    problems (`Said`) name what was left out."""
    human = human_scores(store, result)
    if human.empty or not result.rows:
        return pd.DataFrame(columns=COLUMNS), []
    items = item_table(result)
    auto = items[["model", "item", "combined"]].rename(columns={"combined": "score"})
    scores, problems = ppi_scores(auto, human, tuned=True)
    scores = scores[scores["ratings"] > 0].rename(
        columns={"human": "human_mean", "ratings": "human_ratings"}
    )  # models without ratings keep only their automatic columns
    problems = [p for p in problems if getattr(p, "key", "") != "ppi_no_ratings"]
    return scores[COLUMNS].round(3).reset_index(drop=True), problems


def with_ppi(model_table: pd.DataFrame, store: Store | None, result: EvalResult) -> tuple[pd.DataFrame, list[str]]:
    """The Evaluate table with the prediction-powered columns joined where human scores exist."""
    if store is None or model_table.empty:
        return model_table, []
    ppi, problems = ppi_table(store, result)
    if ppi.empty:
        return model_table, problems
    return model_table.merge(ppi, on="model", how="left"), problems
