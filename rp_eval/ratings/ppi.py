"""Prediction-powered scores: a model's automatic score on every item, corrected by the humans where they rated.

For one model with N items, automatic scores f (metrics + judge, any scale) and human ratings Y on n of the items
(Angelopoulos et al., "Prediction-powered inference", Science 2023; λ tuning from "PPI++", 2023):

    score = λ · mean(f over all N items) + mean(Y − λ·f over the human ratings)

λ = 1 is plain PPI: the automatic mean plus the mean human-minus-automatic residual. `tuned=True` picks the λ of
least variance (PPI++), which also rescales an automatic score on another scale and falls back to the human mean
(λ = 0) when the automatic score says nothing. The estimate is unbiased for the humans' mean score whatever the
automatic score's bias, provided the rated items are a random subset.

95% interval (the CLT interval). The rated items are inside the N, so the score is split into two independent
parts, mean(Y − λ(1 − n/N)·f) over the ratings and λ(N − n)/N · mean(f over the unrated items); the first part's
variance is cluster-robust over raters when they are given (a rater's ratings share the rater's bias), else over
items; the second part's is the plain variance of a mean. The half-width uses Student's t with one degree of
freedom fewer than the clusters. Written with numpy: a few lines of sums (the `ppi_py`
package does the same for independent sets and is not a dependency).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from rp_eval.errors import Said

COLUMNS = ["model", "ppi", "ppi_lower", "ppi_upper", "auto", "human", "human_lower", "human_upper"]
COLUMNS += ["items", "rated_items", "ratings", "lam"]


@dataclass
class PPIScore:
    model: str
    ppi: float
    ppi_lower: float
    ppi_upper: float
    auto: float  # mean automatic score over every item
    human: float  # mean human rating (human-only estimate)
    human_lower: float
    human_upper: float
    items: int
    rated_items: int
    ratings: int  # human ratings used
    lam: float


def _cluster_var(d: np.ndarray, groups: np.ndarray) -> float:
    """Variance of the mean of d with units grouped (cluster-robust, with the G/(G−1) small-sample factor)."""
    ids, inv = np.unique(groups, return_inverse=True)
    g = len(ids)
    if g < 2:
        return math.nan
    sums = np.bincount(inv, weights=d - d.mean(), minlength=g)
    return float(g / (g - 1) * (sums @ sums) / len(d) ** 2)


def ppi_model(
    auto: pd.Series, ratings: pd.DataFrame, tuned: bool = False, model: str = ""
) -> tuple[PPIScore, list[str]]:
    """One model. auto: automatic score by item id; ratings: columns item, score (rater optional)."""
    problems: list[str] = []
    f_all = auto.astype(float)
    known = ratings["item"].isin(f_all.index)
    if not known.all():
        problems.append(Said("ppi_unknown_items", model=model, n=int((~known).sum())))
        ratings = ratings[known]
    n_items, m = len(f_all), len(ratings)
    auto_mean = float(f_all.mean()) if n_items else math.nan
    nan = math.nan
    if m == 0:
        problems.append(Said("ppi_no_ratings", model=model))
        return PPIScore(model, nan, nan, nan, auto_mean, nan, nan, nan, n_items, 0, 0, nan), problems
    y = ratings["score"].to_numpy(float)
    f = f_all.loc[ratings["item"]].to_numpy(float)
    groups = ratings["rater"].to_numpy() if "rater" in ratings else ratings["item"].to_numpy()
    rated = ratings["item"].unique()
    n = len(rated)
    unrated = f_all.drop(index=rated).to_numpy()
    c1, c2 = 1 - n / n_items, (n_items - n) / n_items
    var_u = float(unrated.var(ddof=1)) / len(unrated) if len(unrated) > 1 else 0.0
    lam = 1.0
    if tuned:
        cov = float(np.cov(y, f)[0, 1]) if m > 1 else 0.0
        var_f = float(f.var(ddof=1)) if m > 1 else 0.0
        denom = c1 * c1 * var_f / m + c2 * c2 * var_u
        lam = max(0.0, c1 * cov / m / denom) if denom > 0 else 0.0
    part = y - lam * c1 * f
    score = float(part.mean() + (lam * c2 * unrated.mean() if len(unrated) else 0.0))
    var = _cluster_var(part, groups) + lam * lam * c2 * c2 * var_u
    human, var_h = float(y.mean()), _cluster_var(y, groups)
    if math.isnan(var):
        problems.append(Said("ppi_one_unit", model=model))
    # Student's t with (clusters − 1) degrees of freedom: a cluster-robust variance from a dozen raters is itself
    # noisy, and the normal quantile then under-covers (the usual small-sample rule for clustered errors)
    q = float(stats.t.ppf(0.975, len(np.unique(groups)) - 1)) if len(np.unique(groups)) > 1 else nan
    half, half_h = q * math.sqrt(var) if var == var else nan, q * math.sqrt(var_h) if var_h == var_h else nan
    return (
        PPIScore(
            model,
            score,
            score - half,
            score + half,
            auto_mean,
            human,
            human - half_h,
            human + half_h,
            n_items,
            n,
            m,
            lam,
        ),  # fmt: skip
        problems,
    )


def ppi_scores(auto: pd.DataFrame, human: pd.DataFrame, tuned: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Every model's prediction-powered score beside its automatic-only and human-only estimates (COLUMNS).

    auto: one row per (model, item) with the automatic score (columns model, item, score); human: one row per human
    rating (columns model, item, score, and rater for intervals over raters). A model with no human ratings keeps
    its automatic mean, with NaN for the rest; ratings of items without an automatic score are left out. Both are
    named in the returned problems (Said messages)."""
    rows, problems = [], []
    for model, part in auto.groupby("model", sort=True):
        series = part.groupby("item")["score"].mean()
        mine = human[human["model"] == model]
        score, said = ppi_model(series, mine, tuned, str(model))
        rows.append(score.__dict__)
        problems += said
    for model in sorted(set(human["model"]) - set(auto["model"])):
        problems.append(Said("ppi_no_auto", model=model))
    return pd.DataFrame(rows, columns=COLUMNS), problems
