"""The combined Bradley-Terry ranking over several vote sources, against votes drawn from known strengths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from rp_eval.ratings import combined
from rp_eval.ratings.bt import to_elo
from rp_eval.ratings.combined import RankingError, combined_ranking, fit_weights, votes_from_grades

TRUE = np.array([0.9, 0.4, 0.0, -0.5, -0.8])
NAMES = ["alpha", "bravo", "charlie", "delta", "echo"]


def draw(
    rng, n: int, source: str, raters: int, scale: float = 1.0, length: float = 0.0, taste: float = 0.0, lens=None
) -> pd.DataFrame:
    """Votes from strengths TRUE: scale × gap + length × relative length difference + the rater's taste."""
    bias = rng.normal(0, taste, (raters, len(TRUE)))
    r = rng.integers(raters, size=n)
    a = rng.integers(len(TRUE), size=n)
    b = (a + rng.integers(1, len(TRUE), size=n)) % len(TRUE)
    mean = np.zeros(len(TRUE)) if lens is None else lens
    la, lb = 100 * np.exp(mean[a] + rng.normal(0, 0.3, n)), 100 * np.exp(mean[b] + rng.normal(0, 0.3, n))
    logit = scale * (TRUE[a] - TRUE[b]) + bias[r, a] - bias[r, b] + length * (la - lb) / (la + lb)
    won = rng.random(n) < expit(logit)
    return pd.DataFrame(
        {
            "model_a": np.array(NAMES)[a],
            "model_b": np.array(NAMES)[b],
            "winner": np.where(won, "model_a", "model_b"),
            "source": source,
            "rater": [f"{source}{i}" if source != "judge" else "judge" for i in r],
            "len_a": la,
            "len_b": lb,
        }
    )


def elo(fit) -> np.ndarray:
    return np.array([fit.score[m] for m in NAMES])


def truth() -> np.ndarray:
    return to_elo(TRUE - TRUE.mean())


def test_recovers_known_strengths_from_three_sources_on_their_own_scales():
    rng = np.random.default_rng(1)
    votes = pd.concat(
        [
            draw(rng, 1500, "blind", 30),
            draw(rng, 1500, "chat", 30, scale=0.5),
            draw(rng, 2000, "judge", 1, scale=1.5, length=3.0),
        ]
    )
    fit = combined_ranking(votes, rounds=100, seed=2)
    assert list(fit.table()["model"]) == NAMES
    assert np.abs(elo(fit) - truth()).max() < 30
    assert fit.scale["chat"] == pytest.approx(0.5, abs=0.12) and fit.scale["judge"] == pytest.approx(1.5, abs=0.25)
    assert fit.length["judge"] == pytest.approx(3.0, abs=0.6) and abs(fit.length["blind"]) < 0.6
    assert fit.votes == {"blind": 1500, "chat": 1500, "judge": 2000}
    assert fit.raters == {"blind": 30, "chat": 30, "judge": 1}
    assert all(fit.lower[m] < fit.score[m] < fit.upper[m] for m in NAMES)
    assert fit.table()["votes"].sum() == 2 * 5000


def test_each_source_alone_and_the_scipy_fit_agrees_with_the_batched_one():
    rng = np.random.default_rng(3)
    votes = pd.concat([draw(rng, 800, "blind", 20), draw(rng, 800, "judge", 1, scale=1.5, length=2.0)])
    alone = combined_ranking(votes, sources=["judge"], rounds=0)
    assert alone.reference == "judge" and alone.votes == {"judge": 800} and alone.scale == {"judge": 1.0}
    d, _ = combined._prepare(votes, None, None, None)
    point = combined._fit_point(d)
    batched = combined._fit_many(d, d.w[None], d.start(), tol=1e-9)[0]
    assert np.abs(point - batched).max() < 1e-4


def test_length_covariate_removes_a_pure_length_bias():
    # equal strengths; the longer-writing models win only because the judge likes length
    rng = np.random.default_rng(5)
    lens = np.array([0.6, 0.3, 0.0, -0.3, -0.6])
    global TRUE
    saved, TRUE = TRUE, np.zeros(5)
    try:
        votes = draw(rng, 6000, "judge", 1, length=4.0, lens=lens)
    finally:
        TRUE = saved
    with_length = combined_ranking(votes, rounds=0)
    without = combined_ranking(votes.drop(columns=["len_a", "len_b"]), rounds=0)
    spread = elo(without).max() - elo(without).min()
    assert spread > 150  # length shows up as strength when not controlled
    # what is left is noise: the length coefficient is estimated, and the models' lengths differ (seeds 5-9 of
    # 3,000 votes left 6-39 points)
    assert elo(with_length).max() - elo(with_length).min() < 50
    assert without.length == {} and with_length.length["judge"] == pytest.approx(4.0, abs=0.7)


def test_bootstrap_over_raters_is_wider_than_over_votes_when_raters_are_biased():
    rng = np.random.default_rng(5)
    votes = draw(rng, 1200, "blind", 8, taste=0.6)
    by_rater = combined_ranking(votes, rounds=300, seed=1)
    by_vote = combined_ranking(votes.assign(rater="one"), rounds=300, seed=1)  # one rater: resampled by vote
    width = {k: np.mean([f.upper[m] - f.lower[m] for m in NAMES]) for k, f in (("r", by_rater), ("v", by_vote))}
    assert width["r"] > 1.4 * width["v"]


def test_weights_given_and_fitted():
    rng = np.random.default_rng(6)
    # a judge that ranks the models backwards: fitted weight 0 is best for held-out blind votes
    backwards = draw(rng, 1500, "judge", 1, scale=-1.0)
    blind = draw(rng, 600, "blind", 20)
    fitted = fit_weights(pd.concat([blind, backwards]))
    assert fitted.weights == {"blind": 1.0, "judge": 0.0} and fitted.folds == 5
    # a faithful chat source earns weight, and lowers the held-out loss
    chat = draw(rng, 1500, "chat", 20, scale=0.8)
    fitted = fit_weights(pd.concat([blind, chat]))
    assert fitted.weights["chat"] > 0 and fitted.log_loss < fitted.blind_only
    light = combined_ranking(pd.concat([blind, chat]), weights={"chat": 0.1}, rounds=0)
    assert light.weights == {"blind": 1.0, "chat": 0.1}
    auto = combined_ranking(pd.concat([blind, backwards]), weights="fit", rounds=0)
    assert auto.weights == {"blind": 1.0} and any("weight 0.0" in p for p in auto.problems)


def test_bad_sources_are_named_and_the_ranking_comes_from_what_is_left():
    rng = np.random.default_rng(7)
    blind = draw(rng, 600, "blind", 10)
    grades = pd.DataFrame({"item": np.repeat(np.arange(30), 5), "model": NAMES * 30, "grade": 3})
    constant = votes_from_grades(grades)  # a judge whose grades are constant: every pair a tie
    assert len(constant) == 30 * 10 and (constant["winner"] == "tie").all()
    fit = combined_ranking(
        pd.concat([blind, constant]),
        weights={"chat": 1.0, "judge": 1.0},
        sources=["blind", "chat", "judge"],
        raters=["blind0", "gone"],
        rounds=50,
    )
    assert fit.weights == {"blind": 1.0}
    assert fit.votes == {"blind": 600, "chat": 0, "judge": 300}
    text = " | ".join(fit.problems)
    assert "source 'chat' has no votes" in text
    assert "source 'judge' gave 300 votes, every one a tie" in text
    assert "rater 'gone' has no votes" in text and "blind0" not in text
    assert [p.key for p in fit.problems] == ["combined_no_votes", "combined_constant", "combined_rater_no_votes"]
    only_blind = combined_ranking(blind, rounds=50)
    assert fit.score == pytest.approx(only_blind.score)
    for w in (0.0, -1.0, float("nan")):
        chat = draw(rng, 300, "chat", 10)
        fit = combined_ranking(pd.concat([blind, chat]), weights={"chat": w}, rounds=0)
        assert fit.weights == {"blind": 1.0} and fit.problems[0].key == "combined_weight"
        assert "a weight must be above 0" in fit.problems[0]


def test_nothing_to_rank_and_unknown_outcomes_raise_a_clear_error():
    empty = pd.DataFrame(columns=["model_a", "model_b", "winner", "source", "rater"])
    with pytest.raises(RankingError, match=r"no votes to rank from \(sources: blind\)"):
        combined_ranking(empty, sources=["blind"])
    with pytest.raises(RankingError, match="not 'maybe'"):
        combined_ranking(pd.DataFrame([{"model_a": "x", "model_b": "y", "winner": "maybe"}]))
    assert issubclass(RankingError, ValueError)


def test_grades_become_pairwise_votes_with_lengths():
    grades = pd.DataFrame({"item": [1, 1, 1], "model": ["x", "y", "z"], "grade": [5, 3, 5], "length": [100, 50, 80]})
    v = votes_from_grades(grades).sort_values(["model_a", "model_b"])
    assert v[["model_a", "model_b", "winner"]].values.tolist() == [
        ["x", "y", "model_a"],
        ["x", "z", "tie"],
        ["y", "z", "model_b"],
    ]
    assert v["len_a"].tolist() == [100, 100, 50]
