"""Past evaluations: listed from the store and reopened after the process that made them is gone, with the
user's line in the drill-down; the tab opens on them; its numbers are checked before a run starts."""

from __future__ import annotations

import pandas as pd
import pytest

from rp_eval import store as store_module
from rp_eval.chat import generate as gen
from rp_eval.evaluate import plots, report
from rp_eval.evaluate.runner import EvalConfig, evaluate
from rp_eval.store import evaluation as db
from rp_eval.store import get_store

SMALL = dict(limit=4, batch_size=4, generation=gen.GenerationSettings(max_new_tokens=12, temperature=0.7))


def _reload() -> None:
    """What a new page (or a restarted server) sees: a store opened afresh, nothing kept in memory."""
    get_store().engine.dispose()
    store_module._open.cache_clear()


def test_a_run_is_listed_and_reopened_with_the_same_scores(tiny_registered, task):
    first = evaluate(EvalConfig(models=[tiny_registered], **SMALL), task=task)
    second = evaluate(EvalConfig(models=[tiny_registered], seed=7, **SMALL), task=task)
    _reload()
    runs = report.past_runs(get_store())
    assert list(runs.columns) == report.RUN_COLUMNS
    assert list(runs["run"]) == [second.runs["tiny"], first.runs["tiny"]]  # newest first
    assert list(runs["replies"]) == [4, 4] and set(runs["status"]) == {"done"}
    assert list(runs["seed"]) == [7, 0]
    assert report.latest_runs(runs, task.version) == [second.runs["tiny"]]

    again = report.reopen(get_store(), [first.runs["tiny"]], task)
    assert not again.failed and again.runs == first.runs
    key = lambda r: (r.item_id, r.text, round(r.combined, 9))  # noqa: E731
    assert sorted(map(key, again.rows)) == sorted(map(key, first.rows))
    pd.testing.assert_frame_equal(report.model_table(again), report.model_table(first))

    both = report.reopen(get_store(), [second.runs["tiny"], first.runs["tiny"], 999], task)
    assert both.runs == {"tiny": second.runs["tiny"]}  # one run per model shown; the other says why
    assert "already shown" in both.failed[f"tiny (#{first.runs['tiny']})"] and "#999" in both.failed


def test_a_run_on_another_task_version_is_not_scored_against_changed_items(tiny_registered, task):
    first = evaluate(EvalConfig(models=[tiny_registered], **SMALL), task=task)
    with get_store().transaction() as s:
        s.get(db.EvalRunRow, first.runs["tiny"]).task_version = "older"
    again = report.reopen(get_store(), [first.runs["tiny"]], task)
    assert again.rows == [] and "task version older" in again.failed[f"tiny (#{first.runs['tiny']})"]
    assert report.latest_runs(report.past_runs(get_store()), task.version) == []


def test_the_drill_down_carries_the_users_line(tiny_registered, task):
    result = evaluate(EvalConfig(models=[tiny_registered], **SMALL), task=task)
    items = report.item_table(result, task)
    by_id = {i.id: i for i in task.items}
    for _, row in items.iterrows():
        item = by_id[row["item"]]
        wanted = task.personas[item.persona].fill(item.turns[-1].content, "あなた")
        assert row["user_line"] == wanted and wanted and "{{" not in wanted
    assert "user_line" not in report.item_table(result)  # only when the task is given


def test_the_heat_map_has_one_cell_per_model_and_metric(tiny_registered, task):
    result = evaluate(EvalConfig(models=[tiny_registered], **SMALL), task=task)
    table = report.model_table(result)
    everything = plots.heatmap_frame(table)
    assert list(everything.index) == ["tiny"] and everything.columns[0] == "combined"
    assert ((everything >= 0) & (everything <= 1)).all().all()
    assert everything.loc["tiny", "empty_reply"] == 1 - table.loc[0, "empty_reply"]  # turned: 1 = good
    ending = plots.heatmap_frame(table, "ending")
    expected = [m.name for m in plots.METRICS if m.group == "ending" and m.good is not None and m.name in table]
    assert list(ending.columns) == expected
    assert expected[:4] == ["natural_stop", "length_capped", "cut_mid_sentence", "empty_reply"]
    figure = plots.metric_heatmap(table, "ending")
    assert len(figure.axes[0].texts) == len(expected)  # every cell written with its value
    assert plots.metric_heatmap(pd.DataFrame()) is None


def test_the_tab_opens_on_the_stored_runs(tiny_registered, task):
    from rp_eval.ui import evaluate_tab

    made = evaluate(EvalConfig(models=[tiny_registered], **SMALL), task=task)
    _reload()
    runs, picker, status, table, heat, finish, lengths, drill, state = evaluate_tab._page_open("all")
    assert picker["value"] == [made.runs["tiny"]] and len(picker["choices"]) == 1
    assert "1" in status and list(table["model"]) == ["tiny"] and heat is not None
    assert len(drill) == 4 and drill["user_line"].str.len().min() > 0
    csv, page, message = evaluate_tab._export(state)
    assert pd.read_csv(csv)["user_line"].notna().all() and page.endswith(".html")


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("limit", -5, "Items must be at least 0"),
        ("limit", 2.5, "Items must be a whole number"),
        ("seed", 1e30, "Seed must be at most"),
        ("seed", float("nan"), "Seed"),
        ("max_new_tokens", 0, "Max new tokens must be at least 1"),
        ("temperature", -1, "Temperature must be at least 0"),
        ("batch_size", None, "Batch size is empty"),
    ],
)
def test_a_bad_number_is_refused_by_name_and_nothing_is_stored(tiny_registered, field, value, words):
    from rp_eval.ui import evaluate_tab

    form = dict(models=["tiny"], split="dev", limit=2, seed=0, max_new_tokens=8, temperature=0.7, batch_size=2,
                weights="", judge="", reference="", group="all")  # fmt: skip
    form[field] = value
    events = list(evaluate_tab._run(**form))
    assert len(events) == 1
    progress, status, *rest = events[0]
    assert status.startswith("⚠️") and words.replace("**", "") in status.replace("**", "")
    assert db.list_runs(get_store()) == []
