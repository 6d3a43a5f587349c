"""The Evaluate table's prediction-powered columns: the automatic score of every reply corrected by the human
scores of the result's own replies; models without human scores, scores of another run's replies."""

from __future__ import annotations

import math

import numpy as np

from rp_eval.evaluate import human_ppi
from rp_eval.evaluate.metrics import METRICS
from rp_eval.evaluate.report import model_table
from rp_eval.evaluate.runner import EvalResult, EvalRow
from rp_eval.store import evaluation as eval_store
from rp_eval.store import get_store
from rp_eval.store import ratings as table

ITEMS = 40
ZEROS = {m.name: 0.0 for m in METRICS}  # the metrics are not what is tested here


def _run(store, model: str, key: str, combined: np.ndarray) -> tuple[int, list[EvalRow]]:
    run = eval_store.open_run(store, key, model, "v1", {})
    eval_store.add_replies(
        store, run.id, [dict(item_id=f"i{k}", text="返事", finish_reason="eos") for k in range(ITEMS)]
    )
    eval_store.finish_run(store, run.id)
    rows = [
        EvalRow(model, f"i{k}", "samurai", "dev", False, "返事", "eos", False, 3, 0.1, ZEROS, float(c))
        for k, c in enumerate(combined)
    ]
    return run.id, rows


def _score(store, rater: str, model: str, reply_id: int, overall: int) -> None:
    item = table.open_item(
        store, table.RatingItemRow(kind="single", rater=rater, models=[model], conversations=[[]], finish_reasons=[[]])
    )
    scores = {"naturalness": overall, "consistency": overall, "length_fit": overall, "overall": overall}
    table.add_score(
        store,
        table.ScoreRow(
            item_id=item.id,
            rater=rater,
            model=model,
            conversation=[],
            reply="返事",
            scores=scores,
            source_kind="eval_reply",
            source_id=str(reply_id),
            item_key=item.id,
        ),
    )


def test_ppi_columns_where_human_scores_exist(workspace):
    store = get_store()
    rng = np.random.default_rng(0)
    quality = rng.uniform(1, 5, ITEMS)  # the humans' score of each reply of model "good"
    auto = (quality - 1) / 4 * 0.6 + 0.1 + rng.normal(0, 0.05, ITEMS)  # an automatic score that follows it
    good_run, good_rows = _run(store, "good", "k-good", auto)
    plain_run, plain_rows = _run(store, "plain", "k-plain", rng.uniform(0.2, 0.4, ITEMS))
    old_run, _ = _run(store, "good", "k-good-old", auto)  # an older run of the same model: another set of replies
    result = EvalResult(rows=good_rows + plain_rows, runs={"good": good_run, "plain": plain_run})

    replies = eval_store.replies(store, good_run)
    rated = rng.choice(ITEMS, 15, replace=False)
    for n, k in enumerate(rated):
        _score(store, f"r{n % 5}", "good", replies[k].id, int(round(quality[k])))
    for reply in eval_store.replies(store, old_run)[:5]:  # scores of the old run's replies: not of these texts
        _score(store, "r0", "good", reply.id, 1)

    human = human_ppi.human_scores(store, result)
    assert len(human) == 15 and set(human["model"]) == {"good"}
    ppi, problems = human_ppi.ppi_table(store, result)
    assert list(ppi.columns) == human_ppi.COLUMNS and list(ppi["model"]) == ["good"] and problems == []
    row = ppi.iloc[0]
    assert row["human_ratings"] == 15
    true_mean = float(np.round(quality).mean())
    assert row["ppi_lower"] <= row["ppi"] <= row["ppi_upper"] and row["ppi_lower"] < true_mean < row["ppi_upper"]
    # the automatic score follows the humans, so the corrected interval is narrower than the humans' alone
    assert row["ppi_upper"] - row["ppi_lower"] < row["human_upper"] - row["human_lower"]

    shown, _ = human_ppi.with_ppi(model_table(result), store, result)
    by_model = shown.set_index("model")
    assert by_model.loc["good", "human_ratings"] == 15 and math.isnan(by_model.loc["plain", "ppi"])
    assert {"combined", "ppi", "human_mean"} <= set(shown.columns)

    # what the Evaluate tab shows: the same columns under their headers, beside the automatic ones
    from rp_eval.ui import evaluate_tab

    page = evaluate_tab._outputs(result)[0].set_index("model")
    assert page.loc["good", "human ratings"] == 15 and page.loc["good", "human score, prediction-powered (1-5)"] > 0


def test_no_human_scores_leave_the_table_as_it_was(workspace):
    store = get_store()
    run_id, rows = _run(store, "only", "k-only", np.linspace(0.1, 0.9, ITEMS))
    result = EvalResult(rows=rows, runs={"only": run_id})
    before = model_table(result)
    after, problems = human_ppi.with_ppi(before, store, result)
    assert after.equals(before) and problems == []
    # one rater only: the score is there, its interval is not (and it says why)
    _score(store, "solo", "only", eval_store.replies(store, run_id)[0].id, 4)
    ppi, problems = human_ppi.ppi_table(store, result)
    assert ppi.iloc[0]["human_ratings"] == 1 and math.isnan(ppi.iloc[0]["ppi_lower"])
    assert [p.key for p in problems] == ["ppi_one_unit"]
