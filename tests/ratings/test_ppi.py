"""Prediction-powered scores: the formula's edge cases and coverage in a small simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rp_eval.ratings.ppi import ppi_scores


def frames(rng, mu: float, items: int = 120, rated: int = 30, raters: int = 12, model: str = "m"):
    quality = rng.normal(mu, 0.7, items)
    auto = pd.DataFrame(
        {"model": model, "item": np.arange(items), "score": 0.9 * quality + rng.normal(0, 0.3, items) - 0.5}
    )
    picked = rng.choice(items, rated, replace=False)
    bias = rng.normal(0, 0.2, raters)
    r = rng.integers(raters, size=rated)
    human = pd.DataFrame(
        {"model": model, "item": picked, "score": quality[picked] + bias[r] + rng.normal(0, 0.5, rated), "rater": r}
    )
    return auto, human


def test_a_zero_automatic_score_gives_the_classical_mean_and_t_interval():
    rng = np.random.default_rng(0)
    auto, human = frames(rng, 3.0)
    human = human.drop(columns="rater")
    table, problems = ppi_scores(auto.assign(score=0.0), human)
    row = table.iloc[0]
    y = human["score"].to_numpy()
    half = stats.t.ppf(0.975, len(y) - 1) * y.std(ddof=1) / np.sqrt(len(y))  # the classical t interval
    assert row["ppi"] == pytest.approx(y.mean()) == row["human"]
    assert row["ppi_lower"] == pytest.approx(y.mean() - half) and row["ppi_upper"] == pytest.approx(y.mean() + half)
    assert (row["items"], row["rated_items"], row["ratings"], row["lam"]) == (120, 30, 30, 1.0)
    assert row["auto"] == 0.0 and problems == []


def test_an_informative_automatic_score_narrows_the_interval_and_it_covers():
    rng = np.random.default_rng(1)
    hits, ppi_width, human_width = [], [], []
    for _ in range(300):
        auto, human = frames(rng, 3.2)
        row = ppi_scores(auto, human, tuned=True)[0].iloc[0]
        hits.append(row["ppi_lower"] <= 3.2 <= row["ppi_upper"])
        ppi_width.append(row["ppi_upper"] - row["ppi_lower"])
        human_width.append(row["human_upper"] - row["human_lower"])
    # 300 intervals: a binomial 95% band around 0.95 is about 0.925-0.975
    assert 0.92 <= np.mean(hits) <= 0.98  # 0.96 at this seed; 0.887 with the normal quantile in place of t
    assert np.mean(ppi_width) < 0.85 * np.mean(human_width)


def test_models_without_ratings_or_scores_are_named():
    rng = np.random.default_rng(2)
    auto, human = frames(rng, 3.0, model="a")
    auto_b, _ = frames(rng, 3.0, model="b")
    _, human_c = frames(rng, 3.0, model="c")
    stray = human.head(2).assign(item=[1000, 1001])
    table, problems = ppi_scores(pd.concat([auto, auto_b]), pd.concat([human, stray, human_c]))
    assert list(table["model"]) == ["a", "b"]
    b = table.set_index("model").loc["b"]
    assert np.isnan(b["ppi"]) and b["ratings"] == 0 and not np.isnan(b["auto"])
    assert table.set_index("model").loc["a", "ratings"] == 30
    assert [p.key for p in problems] == ["ppi_unknown_items", "ppi_no_ratings", "ppi_no_auto"]
    assert "a: 2 human ratings are on items without an automatic score" in problems[0]
    one = ppi_scores(auto, human.assign(rater=0))
    assert np.isnan(one[0].iloc[0]["ppi_lower"]) and one[1][0].key == "ppi_one_unit"
