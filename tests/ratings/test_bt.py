"""Bradley-Terry against cases with a known answer."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from rp_eval.ratings.bt import bradley_terry, expected_win_rate
from rp_eval.ratings.leaderboard import arena_table, win_rates
from tests.ratings.conftest import tournament

STRENGTHS = {"alpha": 1250.0, "bravo": 1100.0, "charlie": 1000.0, "delta": 900.0, "echo": 750.0}


def test_recovers_order_and_gaps_of_known_strengths():
    votes = tournament(STRENGTHS, 4000, seed=3)
    fit = bradley_terry(votes, rounds=200, seed=1)
    order = sorted(fit.score, key=fit.score.get, reverse=True)
    assert order == list(STRENGTHS)
    centre = np.mean(list(STRENGTHS.values()))
    for m, true in STRENGTHS.items():
        assert fit.score[m] == pytest.approx(true - centre + 1000, abs=40), m
        assert fit.lower[m] < fit.score[m] < fit.upper[m]
        # the 95% interval holds the truth (each could miss 5% of the time; 40 points of slack keeps it stable)
        assert fit.lower[m] - 40 < true - centre + 1000 < fit.upper[m] + 40
    assert [fit.rank[m] for m in STRENGTHS] == [1, 2, 3, 4, 5]  # 100+ points apart: intervals separate


def test_model_that_always_wins_ranks_first_and_scores_are_centred():
    rows = [{"model_a": "champ", "model_b": o, "winner": "model_a"} for o in ("x", "y") for _ in range(30)]
    rows += [{"model_a": "x", "model_b": "y", "winner": w} for w in ["model_a", "model_b", "tie"] * 10]
    fit = bradley_terry(pd.DataFrame(rows), rounds=100)
    assert fit.rank["champ"] == 1 and fit.rank["x"] == fit.rank["y"] == 2
    assert fit.score["champ"] > fit.score["x"] + 400
    assert np.isfinite(list(fit.score.values())).all()
    assert np.mean(list(fit.score.values())) == pytest.approx(1000, abs=1e-6)
    assert fit.score["x"] == pytest.approx(fit.score["y"], abs=1)


def test_ties_and_both_bad_count_as_half_a_win():
    votes = pd.DataFrame(
        [
            {"model_a": "p", "model_b": "q", "winner": w}
            for w in ["tie"] * 10 + ["bothbad"] * 10 + ["model_a"] * 2 + ["model_b"] * 2
        ]
    )
    fit = bradley_terry(votes, rounds=0)
    assert fit.score["p"] == pytest.approx(fit.score["q"], abs=0.5)
    one_sided = pd.DataFrame([{"model_a": "p", "model_b": "q", "winner": w} for w in ["model_a"] * 3 + ["tie"] * 2])
    fit = bradley_terry(one_sided, rounds=0)
    # MLE: p wins 4 of 5 (ties as halves) -> p - q = 400 * log10(4) (the weak prior pulls it in a little)
    assert fit.score["p"] - fit.score["q"] == pytest.approx(400 * np.log10(4), rel=0.05)


def test_overlapping_intervals_share_a_rank():
    votes = tournament({"a": 1010, "b": 1000, "c": 600}, 300, seed=5)
    fit = bradley_terry(votes, rounds=200)
    assert fit.rank["a"] == fit.rank["b"] == 1
    assert fit.rank["c"] == 3


def test_bootstrap_is_fast_and_repeatable():
    votes = tournament({f"m{i}": 900 + 20 * i for i in range(12)}, 20000, seed=2)
    start = time.perf_counter()
    first = bradley_terry(votes, rounds=1000, seed=7)
    seconds = time.perf_counter() - start
    assert seconds < 20, seconds
    assert all(first.lower[m] < first.score[m] < first.upper[m] for m in first.models)
    small = votes.head(2000)
    assert bradley_terry(small, rounds=100, seed=7).upper == bradley_terry(small, rounds=100, seed=7).upper


def test_win_rate_matrix_and_table_counts():
    votes = pd.DataFrame(
        [{"model_a": "a", "model_b": "b", "winner": "model_a"}] * 3
        + [{"model_a": "b", "model_b": "a", "winner": "model_a"}]
        + [{"model_a": "a", "model_b": "b", "winner": "tie"}] * 2
        + [{"model_a": "c", "model_b": "a", "winner": "bothbad"}]
    )
    rates, counts = win_rates(votes)
    assert rates.loc["a", "b"] == pytest.approx((3 + 1) / 6, abs=1e-3)
    assert rates.loc["b", "a"] == pytest.approx(1 - rates.loc["a", "b"], abs=1e-3)
    assert np.isnan(rates.loc["b", "c"]) and counts.loc["b", "c"] == 0
    assert counts.loc["a", "b"] == 6 and counts.loc["a", "c"] == 1
    table = arena_table(votes, rounds=100).set_index("model")
    assert table.loc["a", ["votes", "wins", "losses", "ties"]].tolist() == [7, 3, 1, 3]
    assert table.loc["a", "win_rate"] == pytest.approx(4.5 / 7, abs=1e-3)
    assert expected_win_rate(1400, 1000) == pytest.approx(10 / 11)
