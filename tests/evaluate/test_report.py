"""Tables, plots data and files from a result, with the human ratings joined."""

from __future__ import annotations

import pandas as pd

from rp_eval.evaluate import report
from rp_eval.evaluate.metrics import Reply, measure
from rp_eval.evaluate.runner import EvalConfig, EvalResult, EvalRow

AXES = ("naturalness", "consistency", "length_fit", "overall")


def row(model: str, item: str, text: str, reason: str = "eos", combined: float = 0.5) -> EvalRow:
    metrics = measure(Reply(text=text, finish_reason=reason))
    return EvalRow(model, item, "samurai", "dev", False, text, reason, False, 5, 0.1, metrics, combined)


RESULT = EvalResult(
    [
        row("a", "x1", "うむ。", combined=0.9),
        row("a", "x2", "参ろう" * 20, "length", 0.2),
        row("b", "x1", "はい。", combined=0.6),
    ],
    task_version="v1",
    config=EvalConfig(models=["a", "b"]),
)


def test_model_table_joins_the_human_ratings(workspace, task):
    from rp_eval.ratings import arena
    from rp_eval.store import get_store

    store = get_store()
    conversation = [*task.personas["samurai"].opening(), {"role": "user", "content": "やあ"}]
    view = arena.open_stored(store, "r", "a", [*conversation, {"role": "assistant", "content": "うむ。"}], "eos")
    arena.score(store, view.item_id, "r", dict.fromkeys(AXES, 4))
    table = report.model_table(RESULT, report.human_table(store))
    assert list(table["model"]) == ["b", "a"]  # best combined first
    a = table.set_index("model").loc["a"]
    assert a["replies"] == 2 and a["combined"] == 0.55 and a["natural_stop"] == 0.5 and a["likert_overall"] == 4
    assert pd.isna(table.set_index("model").loc["b", "likert_overall"])


def test_plot_tables_and_files(tmp_path):
    finish = report.finish_table(RESULT)
    assert finish.groupby("model")["share"].sum().round(6).eq(1).all()
    lengths = report.length_table(RESULT)
    assert lengths.groupby("model")["replies"].sum().to_dict() == {"a": 2, "b": 1}
    assert lengths[lengths["model"] == "a"].set_index("chars").loc["40-59", "replies"] == 0
    long = report.metric_long(report.model_table(RESULT))
    leak = long[(long["model"] == "a") & (long["metric"] == "length_capped")]["value"].item()
    assert leak == 0.5  # turned so that 1 is the good end
    csv = report.write_csv(RESULT, tmp_path / "r.csv")
    assert pd.read_csv(csv)["reply"].tolist()[0] == "うむ。"
    page = report.write_report(RESULT, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "How replies ended" in page and "参ろう参ろう" in page and "task version v1" in page


def test_report_tables_escape_model_names():
    """Issue 29, finding 9: a model named `<script>…` shows as text in the report's tables, never as markup."""
    import pandas as pd

    from rp_eval.evaluate.report import bars

    name = "<script>alert('rp')</script>"
    page = bars(pd.DataFrame({"model": [name], "<b>score</b>": [0.5]}), ["<b>score</b>"])
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;" in page and "&lt;b&gt;score&lt;/b&gt;" in page
