"""`rp-eval report`: lineage, the stored evaluation (re-scored) and the human ratings of every model, one page."""

from __future__ import annotations

import json

from rp_eval.cli import main
from rp_eval.store import get_store
from rp_eval.store.ratings import RatingItemRow, VoteRow, add_vote, open_item
from tests.conftest import use_workspace


def _votes(store, a: str, b: str, wins: int, losses: int) -> None:
    for k in range(wins + losses):
        winner = "model_a" if k < wins else "model_b"
        open_item(store, RatingItemRow(id=f"r{k}", kind="pair", rater="ann", models=[a, b],
                                       conversations=[[], []], finish_reasons=[[], []]))  # fmt: skip
        add_vote(store, VoteRow(item_id=f"r{k}", rater="ann", model_a=a, model_b=b, winner=winner,
                                conversation_a=[], conversation_b=[], finish_a=[], finish_b=[], item_key=f"k{k}"))  # fmt: skip


def test_report_joins_lineage_evaluation_and_ratings(demo_workspace, tmp_path, capsys, monkeypatch):
    use_workspace(demo_workspace, monkeypatch)
    assert main(["report", "--json"]) == 0  # nothing evaluated yet: lineage only, no crash
    before = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert before["demo-llama-b"]["parents"] == "demo-llama-a" and "combined" not in before["demo-llama-b"]

    args = ["eval", "run", "--models", "demo-llama-a,demo-mistral", "--limit", "3", "--max-new-tokens", "8"]
    assert main([*args, "--batch-size", "3", "--json"]) == 0
    evaluated = {r["model"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    _votes(get_store(), "demo-llama-a", "demo-mistral", wins=7, losses=3)

    page = tmp_path / "report.html"
    assert main(["report", "--json", "--out", str(page)]) == 0
    out = capsys.readouterr().out
    rows = {r["model"]: r for r in json.loads(out[out.index("\n") + 1 :])}
    assert set(rows) == {"demo-llama-a", "demo-llama-b", "demo-mistral", "demo-llama-eos", "demo-mistral-long"}
    for name in ("demo-llama-a", "demo-mistral"):  # the stored replies, scored again: the same figures
        assert rows[name]["replies"] == 3
        assert abs(rows[name]["combined"] - evaluated[name]["combined"]) < 1e-6
    assert rows["demo-llama-b"]["combined"] is None  # registered, never evaluated
    assert rows["demo-llama-a"]["human_bt"] > rows["demo-mistral"]["human_bt"]
    assert rows["demo-llama-a"]["human_votes"] == 10
    text = page.read_text(encoding="utf-8")
    assert "lineage" in text and "demo-llama-b" in text and "How replies ended" in text
