"""One Bradley-Terry ranking from several vote sources: blind A/B votes, chat preferences and judge pairwise votes.

Each vote is a row (model_a, model_b, winner, source, rater; len_a and len_b, the replies' lengths in characters,
optional). The model of one vote from source s is

    logit P(a beats b) = scale[s] * (beta[a] - beta[b]) + length[s] * x,    x = (len_a - len_b) / (len_a + len_b)

- beta: the models' strengths, shared by every source (natural-log units; reported on bt.py's Elo scale);
- scale[s]: how decisive source s is on the strength scale of the reference source (blind votes when there are
  any: scale 1). A judge that is sure of itself has a scale above 1; chat choices made in passing, below 1. Without
  it a source on another scale would stretch or shrink every strength (and the intervals would miss);
- length[s]: the source's own preference for longer replies (Chatbot Arena's style control, one covariate per
  source, so a judge that likes length does not move the strengths);
- weight[s]: how much the source's votes count in the likelihood, given or fitted by how well the fit predicts
  held-out blind votes (`fit_weights`).
A tie or "both bad" counts as half a win for each side (as in bt.py).

The 95% intervals come from a bootstrap over raters: raters are drawn with replacement with all their votes, of
every source (a rater's votes share the rater's taste, so they are not independent); judge votes and a source with
a single rater are resampled over their votes. Percentile intervals, as bt.py's.

The point fit is scipy's L-BFGS-B on the exact gradient. The bootstrap rounds and the cross-validated weight grid
are many fits of one small problem with different vote weights; scipy minimises one problem per call, so these
are solved together by Gauss-Newton steps (Fisher scoring) written out in numpy below on a (rounds × votes ×
parameters) array: 1,000 rounds cost about as much as a handful of scipy calls. A test checks both solvers agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from rp_eval.errors import RpEvalError, Said
from rp_eval.ratings.bt import PRIOR, to_elo

SOURCES: tuple[str, ...] = ("blind", "chat", "judge")  # the reference source first
WEIGHT_GRID: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0)
OUTCOME = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "bothbad": 0.5}
COLUMNS = ["rank", "model", "score", "lower", "upper", "votes"]


class RankingError(RpEvalError):
    """Votes from which no ranking can be computed."""


@dataclass
class Combined:
    models: list[str]
    score: dict[str, float]  # Elo scale, centred on 1000
    lower: dict[str, float] = field(default_factory=dict)
    upper: dict[str, float] = field(default_factory=dict)
    rank: dict[str, int] = field(default_factory=dict)
    votes: dict[str, int] = field(default_factory=dict)  # votes each source gave (dropped sources included)
    raters: dict[str, int] = field(default_factory=dict)  # raters behind each used source
    weights: dict[str, float] = field(default_factory=dict)  # the weight each used source had
    scale: dict[str, float] = field(default_factory=dict)
    length: dict[str, float] = field(default_factory=dict)  # per source; empty when no lengths were given
    reference: str = ""
    rounds: int = 0
    problems: list[str] = field(default_factory=list)  # Said messages: what was left out, and why

    def table(self) -> pd.DataFrame:
        """COLUMNS, best first; `votes` counts every source's votes about the model."""
        rows = [
            {
                "rank": self.rank[m],
                "model": m,
                "score": round(self.score[m], 1),
                "lower": round(self.lower.get(m, math.nan), 1),
                "upper": round(self.upper.get(m, math.nan), 1),
                "votes": self._model_votes.get(m, 0),
            }
            for m in self.models
        ]
        return pd.DataFrame(rows, columns=COLUMNS).sort_values(["rank", "score"], ascending=[True, False])

    _model_votes: dict[str, int] = field(default_factory=dict, repr=False)


@dataclass
class _Design:
    """The votes as arrays: the fit's only input."""

    models: list[str]
    sources: list[str]  # used sources, reference first
    a: np.ndarray
    b: np.ndarray
    s: np.ndarray
    x: np.ndarray | None  # length covariate, None without lengths
    y: np.ndarray
    w: np.ndarray  # the source weight of each vote
    cluster: np.ndarray  # bootstrap unit of each vote (a rater, or the vote itself for a one-rater source)

    def __post_init__(self) -> None:
        self.diff = np.zeros((len(self.y), len(self.models)))  # +1 for model a, −1 for model b
        np.add.at(self.diff, (np.arange(len(self.y)), self.a), 1.0)
        np.add.at(self.diff, (np.arange(len(self.y)), self.b), -1.0)

    @property
    def n_params(self) -> int:
        k = len(self.sources)
        return len(self.models) + (k - 1) + (k if self.x is not None else 0)

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """theta (..., p) → beta, scale (reference fixed at 1), length (zeros without lengths)."""
        n, k = len(self.models), len(self.sources)
        beta = theta[..., :n]
        scale = np.concatenate([np.ones(theta.shape[:-1] + (1,)), theta[..., n : n + k - 1]], axis=-1)
        length = theta[..., n + k - 1 :] if self.x is not None else np.zeros(theta.shape[:-1] + (k,))
        return beta, scale, length

    def start(self) -> np.ndarray:
        theta = np.zeros(self.n_params)
        theta[len(self.models) : len(self.models) + len(self.sources) - 1] = 1.0
        return theta


def _prepare(
    votes: pd.DataFrame, weights: dict[str, float] | None, sources: list[str] | None, raters: list[str] | None
) -> tuple[_Design, Combined]:
    problems: list[str] = []
    votes = votes.copy()
    if "source" not in votes:
        votes["source"] = "blind"
    if "rater" not in votes:
        votes["rater"] = ""
    bad = sorted(set(votes["winner"]) - set(OUTCOME))
    if bad:
        raise RankingError(key="err_rating_winner", known=list(OUTCOME), winner=bad[0])
    asked = list(sources) if sources else sorted(set(votes["source"]) | set(weights or {}), key=_source_order)
    counts = {s: int((votes["source"] == s).sum()) for s in asked}
    used = []
    for s in asked:
        weight = 1.0 if weights is None or s not in weights else weights[s]
        part = votes[votes["source"] == s]
        if part.empty:
            problems.append(Said("combined_no_votes", source=s))
        elif not weight > 0:  # also catches NaN
            problems.append(Said("combined_weight", source=s, weight=weight))
        elif (part["winner"].map(OUTCOME) == 0.5).all():
            problems.append(Said("combined_constant", source=s, n=len(part)))
        else:
            used.append((s, float(weight)))
    for r in raters or []:
        if not (votes["rater"] == r).any():
            problems.append(Said("combined_rater_no_votes", rater=r))
    if not used:
        raise RankingError(key="err_combined_nothing", sources=list(asked) or ["-"])
    votes = votes[votes["source"].isin([s for s, _ in used])]
    models = sorted(set(votes["model_a"]) | set(votes["model_b"]))
    index = {m: i for i, m in enumerate(models)}
    names = [s for s, _ in used]
    s_idx = votes["source"].map({s: i for i, s in enumerate(names)}).to_numpy()
    x = None
    if {"len_a", "len_b"} <= set(votes) and votes[["len_a", "len_b"]].notna().all().all():
        la, lb = votes["len_a"].to_numpy(float), votes["len_b"].to_numpy(float)
        x = np.where(la + lb > 0, (la - lb) / np.maximum(la + lb, 1e-9), 0.0)
    # bootstrap units: a rater, with their votes of every source (their blind votes and chat choices share their
    # taste); judge votes (one or a few judge models, not drawn from a population) and a source with one rater: each
    # vote
    per_source_raters = votes.groupby("source")["rater"].nunique()
    unit = np.where(
        (votes["source"].map(per_source_raters).to_numpy() > 1) & (votes["source"] != "judge").to_numpy(),
        "r\x00" + votes["rater"].astype(str),
        votes["source"].astype(str) + "\x00#" + np.arange(len(votes)).astype(str),
    )
    design = _Design(
        models=models,
        sources=names,
        a=votes["model_a"].map(index).to_numpy(),
        b=votes["model_b"].map(index).to_numpy(),
        s=s_idx,
        x=x,
        y=votes["winner"].map(OUTCOME).to_numpy(float),
        w=np.array([dict(used)[s] for s in votes["source"]]),
        cluster=pd.factorize(pd.Series(unit))[0],
    )
    side = pd.concat([votes["model_a"], votes["model_b"]]).value_counts()
    result = Combined(models, {}, votes=counts, reference=names[0], problems=problems)
    result.weights = dict(used)
    result.raters = {s: int(per_source_raters.get(s, 0)) for s in names}
    result._model_votes = {m: int(side.get(m, 0)) for m in models}
    return design, result


def _source_order(s: str) -> tuple[int, str]:
    return (SOURCES.index(s) if s in SOURCES else len(SOURCES), s)


def _logits(d: _Design, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """η (..., V), the strength gap (..., V) and each vote's scale (..., V) for parameters theta (..., p)."""
    beta, scale, length = d.split(theta)
    gap = beta[..., d.a] - beta[..., d.b]
    sc = scale[..., d.s]
    eta = sc * gap
    if d.x is not None:
        eta = eta + length[..., d.s] * d.x
    return eta, gap, sc


def _jacobian(d: _Design, theta: np.ndarray) -> np.ndarray:
    """dη/dθ, shape (B, V, p), for theta (B, p)."""
    k, v = len(d.sources), len(d.y)
    _, gap, sc = _logits(d, theta)
    onehot = np.eye(k)[d.s]  # (V, k)
    parts = [sc[..., None] * d.diff, gap[..., None] * onehot[None, :, 1:]]
    if d.x is not None:
        parts.append(np.broadcast_to((d.x[:, None] * onehot)[None], (theta.shape[0], v, k)))
    return np.concatenate(parts, axis=-1)


def _prior(d: _Design, theta: np.ndarray) -> np.ndarray:
    """The weak Gaussian prior's centre is 0 for strengths and lengths and 1 for scales."""
    return theta - d.start()


def _nll(theta: np.ndarray, d: _Design, w: np.ndarray) -> tuple[float, np.ndarray]:
    eta = _logits(d, theta)[0]
    loss = -(w * (d.y * eta + log_expit(-eta))).sum()
    resid = w * (d.y - expit(eta))
    grad = -(resid @ _jacobian(d, theta[None])[0]) + PRIOR * _prior(d, theta)
    return float(loss + PRIOR / 2 * _prior(d, theta) @ _prior(d, theta)), grad


def _fit_point(d: _Design) -> np.ndarray:
    res = minimize(
        _nll,
        d.start(),
        args=(d, d.w),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9},
    )
    return res.x


def _fit_many(d: _Design, w: np.ndarray, start: np.ndarray, steps: int = 40, tol: float = 1e-5) -> np.ndarray:
    """Fits for every row of vote weights w (B, V) at once: Gauss-Newton (Fisher scoring) steps, halved when the
    loss would rise (hand-written: see the module's docstring). Stops when no row's step exceeds `tol`."""
    theta = np.broadcast_to(start, (w.shape[0], start.size)).copy()
    eye = PRIOR * np.eye(start.size)

    def loss(t: np.ndarray) -> np.ndarray:
        eta = _logits(d, t)[0]
        pr = t - d.start()
        # y·log σ(η) + (1 − y)·log σ(−η) = y·η + log σ(−η)
        return -(w * (d.y * eta + log_expit(-eta))).sum(-1) + PRIOR / 2 * (pr * pr).sum(-1)

    current = loss(theta)
    for _ in range(steps):
        p = expit(_logits(d, theta)[0])
        jac = _jacobian(d, theta)
        grad = np.matmul((w * (d.y - p))[:, None, :], jac)[:, 0] - PRIOR * (theta - d.start())
        fisher = np.matmul(jac.transpose(0, 2, 1) * (w * p * (1 - p))[:, None, :], jac) + eye
        step = np.linalg.solve(fisher, grad[..., None])[..., 0]
        if np.abs(step).max() < tol:
            break
        size = np.ones(w.shape[0])
        for _ in range(6):  # halve the steps of the rows whose loss would rise (beyond rounding)
            new = loss(theta + size[:, None] * step)
            worse = new > current + 1e-9 * np.abs(current)
            if not worse.any():
                break
            size = np.where(worse, size / 2, size)
        keep = ~worse
        theta[keep] += size[keep, None] * step[keep]
        current = np.where(keep, new, current)
    return theta


def _strengths(d: _Design, theta: np.ndarray) -> np.ndarray:
    beta = d.split(theta)[0]
    return to_elo(beta - beta.mean(axis=-1, keepdims=True))


def combined_ranking(
    votes: pd.DataFrame,
    weights: dict[str, float] | str | None = None,
    sources: list[str] | None = None,
    raters: list[str] | None = None,
    rounds: int = 1000,
    seed: int = 0,
) -> Combined:
    """One ranking of every model in `votes` from the sources asked for (all present by default).

    weights: a weight per source (1 where not given), or "fit" (`fit_weights`: chosen by held-out blind votes).
    raters: the lab's raters, so that one without votes is named in `problems`. A source with no votes, a weight
    of 0 or less, or only ties (a judge whose grades are constant) is left out and named in `problems`; the ranking
    comes from what is left. RankingError when nothing is left.
    rank: 1 + the number of models whose interval lies wholly above this model's (bt.py's rule).
    """
    problems: list[str] = []
    if isinstance(weights, str):
        fitted = fit_weights(votes, sources=sources)
        weights, problems = fitted.weights, fitted.problems
    d, result = _prepare(votes, weights, sources, raters)
    result.problems = problems + result.problems
    theta = _fit_point(d)
    score = _strengths(d, theta)
    _, scale, length = d.split(theta)
    result.score = dict(zip(d.models, score, strict=True))
    result.scale = dict(zip(d.sources, scale.round(4), strict=True))
    result.length = dict(zip(d.sources, length.round(4), strict=True)) if d.x is not None else {}
    result.rounds = rounds
    if rounds:
        boot = _strengths(d, _fit_many(d, d.w * rater_draws(d.cluster, rounds, seed), theta))
        lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
        result.lower = dict(zip(d.models, lo, strict=True))
        result.upper = dict(zip(d.models, hi, strict=True))
        result.rank = {m: 1 + sum(result.lower[o] > result.upper[m] for o in d.models) for m in d.models}
    else:
        order = sorted(d.models, key=lambda m: -result.score[m])
        result.rank = {m: order.index(m) + 1 for m in d.models}
    return result


def rater_draws(cluster: np.ndarray, rounds: int, seed: int = 0) -> np.ndarray:
    """(rounds, V): how many times each vote's unit is drawn when the units are resampled with replacement."""
    rng = np.random.default_rng(seed)
    units = cluster.max() + 1
    draws = rng.multinomial(units, np.full(units, 1 / units), size=rounds)
    return draws[:, cluster].astype(float)


@dataclass
class FittedWeights:
    weights: dict[str, float]
    log_loss: float  # mean held-out log-loss of the blind votes at these weights
    blind_only: float  # ... with blind votes alone
    folds: int
    problems: list[str] = field(default_factory=list)


def fit_weights(
    votes: pd.DataFrame, sources: list[str] | None = None, grid: tuple[float, ...] = WEIGHT_GRID, folds: int = 5
) -> FittedWeights:
    """Weights of the other sources (blind votes weigh 1) that best predict held-out blind votes: the blind raters
    are split into `folds` groups; each weight combination of the grid is fitted on the other groups' blind votes
    plus every vote of the other sources, and scored by the log-loss of the held-out group's votes. Fewer than
    two blind raters: every source keeps weight 1 and `problems` says why."""
    d, info = _prepare(votes, None, sources, None)
    others = d.sources[1:]
    if d.sources[0] != "blind" or not others:
        return FittedWeights(info.weights, math.nan, math.nan, 0, info.problems)
    blind = d.s == 0
    raters = np.unique(d.cluster[blind])
    if len(raters) < 2:
        return FittedWeights(info.weights, math.nan, math.nan, 0, [*info.problems, Said("combined_few_blind")])
    folds = min(folds, len(raters))
    fold_of = dict(zip(np.random.default_rng(0).permutation(raters), np.arange(len(raters)) % folds, strict=True))
    fold = np.array([fold_of.get(c, -1) for c in d.cluster])
    combos = np.array(np.meshgrid(*[grid] * len(others), indexing="ij")).reshape(len(others), -1).T
    rows, held = [], []
    for f in range(folds):
        for combo in combos:
            src_w = np.concatenate([[1.0], combo])[d.s]
            rows.append(np.where(fold == f, 0.0, src_w))
            held.append(fold == f)
    theta = _fit_many(d, np.array(rows), _fit_point(d))
    eta = _logits(d, theta)[0]
    ll = -(d.y * eta + log_expit(-eta))
    held = np.array(held)
    per_combo = (np.where(held, ll, 0.0).sum(1)).reshape(folds, len(combos)).sum(0) / blind.sum()
    best = int(np.argmin(per_combo))
    zero = int(np.flatnonzero((combos == 0).all(1))[0]) if (combos == 0).all(1).any() else best
    weights = {"blind": 1.0, **{s: float(w) for s, w in zip(others, combos[best], strict=True)}}
    return FittedWeights(weights, float(per_combo[best]), float(per_combo[zero]), folds, info.problems)


def votes_from_grades(grades: pd.DataFrame, source: str = "judge", rater: str = "judge") -> pd.DataFrame:
    """Pairwise votes from per-reply grades (columns item, model, grade; length optional): on every item, each two
    models' replies make one vote, the higher grade winning (equal grades a tie)."""
    cols = ["item", "model", "grade"] + (["length"] if "length" in grades else [])
    g = grades[cols]
    pairs = g.merge(g, on="item", suffixes=("_a", "_b"))
    pairs = pairs[pairs["model_a"] < pairs["model_b"]]
    winner = np.where(
        pairs["grade_a"] > pairs["grade_b"], "model_a", np.where(pairs["grade_a"] < pairs["grade_b"], "model_b", "tie")
    )
    out = pd.DataFrame(
        {"model_a": pairs["model_a"], "model_b": pairs["model_b"], "winner": winner, "source": source, "rater": rater}
    )
    if "length" in grades:
        out["len_a"], out["len_b"] = pairs["length_a"].to_numpy(), pairs["length_b"].to_numpy()
    return out.reset_index(drop=True)
