"""Aggregates from records: Likert intervals, agreement, exports, and the CLI printing the same table."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from rp_eval.cli import main
from rp_eval.ratings import agreement, arena, leaderboard
from rp_eval.ratings.records import AXIS_NAMES, RatingFilter, read_jsonl
from rp_eval.store import ratings as table
from tests.ratings.conftest import tournament

MODELS = ["m-one", "m-two", "m-three"]


def _scores(rows):
    return pd.DataFrame(
        [{"model": m, "rater": r, "item_key": k, **dict(zip(AXIS_NAMES, v, strict=True))} for m, r, k, v in rows]
    )


def test_likert_means_and_intervals():
    rows = [("a", f"r{i}", f"k{i}", (v, 3, 4, v)) for i, v in enumerate([2, 3, 4, 5, 4, 3])]
    rows.append(("b", "r0", "kb", (5, 5, 5, 5)))
    table = leaderboard.likert_table(_scores(rows)).set_index(["model", "axis"])
    mean = 3.5
    sd = pd.Series([2, 3, 4, 5, 4, 3]).std()
    half = 2.5706 * sd / math.sqrt(6)  # t(0.975, 5)
    assert table.loc[("a", "naturalness"), "mean"] == pytest.approx(mean)
    assert table.loc[("a", "naturalness"), "lower"] == pytest.approx(mean - half, abs=1e-3)
    assert table.loc[("a", "naturalness"), "upper"] == pytest.approx(mean + half, abs=1e-3)
    assert table.loc[("a", "consistency"), "lower"] == table.loc[("a", "consistency"), "upper"] == 3
    assert math.isnan(table.loc[("b", "overall"), "lower"]) and table.loc[("b", "overall"), "n"] == 1
    assert list(table.loc["a"].index) == AXIS_NAMES


def test_krippendorff_alpha_for_scores_and_votes():
    same = [("a", r, f"k{i}", (v, v, v, v)) for i, v in enumerate([1, 3, 5, 2]) for r in ("r1", "r2")]
    result = {a.what: a for a in agreement.score_agreement(_scores(same))}
    assert result["overall"].alpha == pytest.approx(1.0) and result["overall"].items == 4
    flipped = [("a", "r1", f"k{i}", (v,) * 4) for i, v in enumerate([1, 2, 4, 5])]
    flipped += [("a", "r2", f"k{i}", (6 - v,) * 4) for i, v in enumerate([1, 2, 4, 5])]
    flipped.append(("a", "r3", "solo", (3,) * 4))  # judged once: not an item for agreement
    result = {a.what: a for a in agreement.score_agreement(_scores(flipped))}
    assert result["overall"].alpha < 0 and result["overall"].items == 4 and result["overall"].raters == 2
    assert math.isnan(agreement.score_agreement(_scores(flipped[-1:]))[0].alpha)
    # votes: "A" for one rater and "B" for the other are the same judgement when the sides were swapped
    votes = pd.DataFrame(
        [
            {"item_key": "p1", "rater": "r1", "model_a": "x", "model_b": "y", "winner": "model_a"},
            {"item_key": "p1", "rater": "r2", "model_a": "y", "model_b": "x", "winner": "model_b"},
            {"item_key": "p2", "rater": "r1", "model_a": "x", "model_b": "y", "winner": "tie"},
            {"item_key": "p2", "rater": "r2", "model_a": "x", "model_b": "y", "winner": "tie"},
            {"item_key": "p3", "rater": "r1", "model_a": "x", "model_b": "y", "winner": "model_b"},
            {"item_key": "p3", "rater": "r2", "model_a": "y", "model_b": "x", "winner": "model_a"},
        ]
    )
    assert agreement.vote_agreement(votes).alpha == pytest.approx(1.0)
    votes.loc[5, "winner"] = "model_b"
    assert agreement.vote_agreement(votes).alpha < 1.0


def test_leaderboard_from_store_export_and_cli(store, reply, tmp_path, capsys):
    synthetic = tournament({"m-one": 1300, "m-two": 1000, "m-three": 700}, 120, seed=4)
    for i, v in synthetic.iterrows():
        view = arena.open_pair(
            store,
            v["rater"],
            persona_id="samurai" if i % 2 else "butler",
            models=[v["model_a"], v["model_b"]],
            reply=reply,
        )
        shown = table.get_item(store, view.item_id).models  # the sides are shuffled: vote for the model that won
        swap = {"model_a": "model_b", "model_b": "model_a"}
        winner = v["winner"] if shown[0] == v["model_a"] else swap.get(v["winner"], v["winner"])
        arena.vote(store, view.item_id, v["rater"], winner)
    good = {"naturalness": 4, "consistency": 4, "length_fit": 3, "overall": 4}
    for n in range(6):
        view = arena.open_single(store, f"r{n % 2}", models=MODELS, reply=reply)
        arena.score(store, view.item_id, f"r{n % 2}", good)
    board = leaderboard.from_store(store, rounds=100)
    assert list(board.arena["model"]) == ["m-one", "m-two", "m-three"]
    assert board.arena["votes"].sum() == 2 * 120
    assert board.counts.to_numpy().sum() == 2 * 120
    only_ann = leaderboard.from_store(store, RatingFilter(rater="r0"), rounds=100)
    assert only_ann.arena["votes"].sum() == 2 * (synthetic["rater"] == "r0").sum()

    # the CLI prints the same table, from the store and from an export of it
    assert main(["ratings", "leaderboard", "--rounds", "100", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in printed["arena"]] == list(board.arena["model"])
    assert [r["score"] for r in printed["arena"]] == list(board.arena["score"])
    assert [r["upper"] for r in printed["arena"]] == list(board.arena["upper"])
    assert main(["ratings", "export", "--out", str(tmp_path / "out"), "--rounds", "100"]) == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == sorted(
        f"{n}.jsonl" for n in ["votes", "scores", "arena", "likert", "win_rates", "vote_counts", "agreement"]
    )
    assert len(read_jsonl(tmp_path / "out" / "votes.jsonl")) == 120
    capsys.readouterr()
    out_votes, out_scores = str(tmp_path / "out" / "votes.jsonl"), str(tmp_path / "out" / "scores.jsonl")
    assert (
        main(["ratings", "leaderboard", "--votes", out_votes, "--scores", out_scores, "--rounds", "100", "--json"]) == 0
    )
    again = json.loads(capsys.readouterr().out)
    assert again["arena"] == printed["arena"] and again["likert"] == printed["likert"]
    assert (
        main(["ratings", "leaderboard", "--votes", out_votes, "--persona", "samurai", "--rounds", "100", "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["votes"] == 60
    assert main(["ratings", "export", "--out", str(tmp_path / "csv"), "--format", "csv", "--rounds", "100"]) == 0
    csv = pd.read_csv(tmp_path / "csv" / "votes.csv")
    assert len(csv) == 120 and json.loads(csv.loc[0, "conversation_a"])[-1]["role"] == "assistant"
    assert main(["ratings", "leaderboard", "--rounds", "100"]) == 0
    text = capsys.readouterr().out
    assert "m-one" in text and "Krippendorff" in text
    # mistakes get one line and exit 2
    assert main(["ratings", "leaderboard", "--since", "yesterday"]) == 2
    assert main(["ratings", "leaderboard", "--rounds", "10"]) == 2
    assert main(["ratings", "leaderboard", "--votes", str(tmp_path / "none.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_file_filters_match_the_store_and_figures_draw(store, reply, artifacts):
    from datetime import UTC, datetime, timedelta

    from rp_eval.ratings import plots
    from rp_eval.ratings.records import apply_filter, load_votes, vote_frame

    for rater in ("ann", "bob", "ann"):
        view = arena.open_pair(store, rater, persona_id="samurai", models=MODELS, reply=reply)
        arena.vote(store, view.item_id, rater, "model_a")
    frame = vote_frame(table.list_votes(store))
    frame["created_at"] = frame["created_at"].map(lambda d: d.isoformat())  # as read back from JSONL
    soon = datetime.now(UTC) + timedelta(hours=1)
    for where in [
        RatingFilter(rater="ann"),
        RatingFilter(exclude_raters=("ann",)),
        RatingFilter(persona="butler"),
        RatingFilter(since=soon),
        RatingFilter(until=soon.replace(tzinfo=None)),
    ]:
        assert list(apply_filter(frame, where)["item_id"]) == list(load_votes(store, where)["item_id"]), where
    board = leaderboard.from_store(store, rounds=100)
    for name, figure in [
        ("scores", plots.scores_figure(board.arena)),
        ("win-rates", plots.win_rate_figure(board.win_rates, board.counts)),
    ]:
        assert figure is not None
        figure.savefig(artifacts / f"ratings-{name}.png")
    assert plots.likert_figure(board.likert) is None and plots.scores_figure(board.arena.head(0)) is None
