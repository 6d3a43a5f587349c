"""Calibration against people: do the metrics and the combined score rank replies and models as raters do?

- `rated_replies`: every Likert-scored reply in the ratings store, measured with the automatic metrics
  (the metrics are pure text functions, so any rated reply can be measured, whatever produced it);
- `correlations`: Spearman and Kendall (scipy) of each directed metric and the combined score with the
  human score, with percentile bootstrap intervals (resampling replies, or models);
- `fit_weights`: non-negative ridge regression of the human score on the directed metrics (scipy's NNLS on
  the ridge-augmented system; written here because scikit-learn is not a dependency), saved as a weights
  config the fitness can use; `calibrate` reports the combined score's correlation before and after, in
  sample and cross-validated (k folds), and next to it how often each set of weights prefers the better reply
  of the meta-evaluation pairs (`meta.py`): agreement with people and with pairs built to be told apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from rp_eval.chat.personas import StyleMarkers
from rp_eval.errors import Said
from rp_eval.evaluate.metrics import Reply, measure
from rp_eval.evaluate.score import OPTIONAL, Weights, combined, directed
from rp_eval.evaluate.task import Task
from rp_eval.store import Store

CORRELATION_COLUMNS = ["what", "n", "spearman", "spearman_lo", "spearman_hi", "kendall", "kendall_lo", "kendall_hi"]


@dataclass
class Calibration:
    per_reply: pd.DataFrame  # CORRELATION_COLUMNS, one row per metric and "combined"
    weights: Weights  # the fitted weights
    before: float  # Spearman of the combined score with the default weights
    after: float  # ... with the fitted weights, in sample
    after_cv: float  # ... with weights fitted on the other folds (an honest estimate)
    n: int
    meta_before: float | None = None  # meta-evaluation accuracy of the default weights (None: no pairs file)
    meta_after: float | None = None  # ... of the fitted weights


def rated_replies(store: Store, task: Task, human: str = "overall") -> pd.DataFrame:
    """One row per scored reply: model, persona, human score (mean over its raters), and every metric."""
    from rp_eval.ratings.records import AXIS_NAMES, load_scores

    scores = load_scores(store)
    if scores.empty:
        return pd.DataFrame()
    column = human if human in AXIS_NAMES else None
    scores["human"] = scores[column] if column else scores[AXIS_NAMES].mean(axis=1)
    scores = (
        scores.groupby("item_key", sort=False)
        .agg(
            model=("model", "first"),
            persona=("persona_id", "first"),
            reply=("reply", "first"),
            finish_reason=("finish_reason", "first"),
            conversation=("conversation", "first"),
            human=("human", "mean"),
        )
        .reset_index()
    )
    rows = []
    for s in scores.itertuples():
        persona = task.personas.get(s.persona)
        users = [m["content"] for m in (s.conversation or []) if m.get("role") == "user"]
        reply = Reply(
            text=s.reply or "",
            finish_reason=s.finish_reason or "eos",
            cut_mid_sentence=s.finish_reason == "length",
            last_user=users[-1] if users else "",
            system=persona.system_text() if persona else "",
            character=persona.name if persona else "",
            style=persona.style if persona else StyleMarkers(),
            others=tuple(p.style for pid, p in task.personas.items() if pid != s.persona),
        )
        rows.append(
            {"model": s.model, "persona": s.persona, "item_key": s.item_key, "human": s.human, **measure(reply)}
        )
    return pd.DataFrame(rows)


def _corr(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    return float(stats.spearmanr(x, y).statistic), float(stats.kendalltau(x, y).statistic)


def correlate(x, y, rounds: int = 500, seed: int = 0, what: str = "") -> dict:
    """Spearman and Kendall of x with y, with 95% percentile bootstrap intervals over the pairs."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    rho, tau = _corr(x, y)
    rng = np.random.default_rng(seed)
    draws = (
        np.array([_corr(x[i], y[i]) for i in rng.integers(0, len(x), (rounds, len(x)))]) if len(x) else np.empty((0, 2))
    )
    with np.errstate(all="ignore"):
        lo, hi = (
            np.nanpercentile(draws, q, axis=0) if np.isfinite(draws).any() else (math.nan, math.nan)
            for q in (2.5, 97.5)
        )
    lo, hi = np.broadcast_to(lo, 2), np.broadcast_to(hi, 2)
    r = lambda v: round(float(v), 4) if np.isfinite(v) else math.nan  # noqa: E731
    return {
        "what": what,
        "n": len(x),
        "spearman": r(rho),
        "spearman_lo": r(lo[0]),
        "spearman_hi": r(hi[0]),
        "kendall": r(tau),
        "kendall_lo": r(lo[1]),
        "kendall_hi": r(hi[1]),
    }


def directed_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The directed metrics (1 = good end) of each row of a frame of raw metric values."""
    return pd.DataFrame([directed(row) for row in frame.to_dict("records")], index=frame.index)


def correlations(
    frame: pd.DataFrame, weights: Weights, human: str = "human", rounds: int = 500, seed: int = 0
) -> pd.DataFrame:
    """Each directed metric and the combined score against `human`, over the rows of `frame`."""
    good = directed_frame(frame)
    rows = [correlate(good[c], frame[human], rounds, seed, c) for c in good.columns]
    scores = [combined(r, weights) for r in frame.to_dict("records")]
    rows.insert(0, correlate(scores, frame[human], rounds, seed, "combined"))
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def fit_weights(frame: pd.DataFrame, human: str = "human", ridge: float = 1.0, name: str = "calibrated") -> Weights:
    """Non-negative ridge weights of the directed metrics for predicting `human` (centred, so only ranks matter)."""
    good = directed_frame(frame)
    good = good[[c for c in good.columns if good[c].std() > 0]]
    if good.empty:
        raise ValueError(Said("calibrate_no_variation"))
    x = good.to_numpy() - good.to_numpy().mean(axis=0)
    y = frame[human].to_numpy(float) - frame[human].mean()
    k = x.shape[1]
    w, _ = optimize.nnls(np.vstack([x, math.sqrt(ridge) * np.eye(k)]), np.concatenate([y, np.zeros(k)]))
    if not (w > 0).any():
        raise ValueError(Said("calibrate_no_predictor"))
    w = 10 * w / w.sum()
    fitted = {c: round(float(v), 4) for c, v in zip(good.columns, w, strict=True)}
    fitted.update({o: 0.0 for o in OPTIONAL if o not in fitted})
    return Weights(name=name, weights=fitted, notes=f"fitted on {len(frame)} rated replies, ridge {ridge}").check()


def calibrate(
    frame: pd.DataFrame,
    default: Weights,
    ridge: float = 1.0,
    folds: int = 5,
    rounds: int = 500,
    seed: int = 0,
    pairs=None,
) -> Calibration:
    """Correlations per reply, fitted weights, the combined score's Spearman before and after, and the
    meta-evaluation accuracy of both sets of weights on `pairs` (default: the shipped pairs file)."""
    fitted = fit_weights(frame, ridge=ridge)
    score = lambda w, f: [combined(r, w) for r in f.to_dict("records")]  # noqa: E731
    before = _corr(np.array(score(default, frame)), frame["human"].to_numpy(float))[0]
    after = _corr(np.array(score(fitted, frame)), frame["human"].to_numpy(float))[0]
    order = np.random.default_rng(seed).permutation(len(frame))
    predicted = np.zeros(len(frame))
    for fold in np.array_split(order, folds):
        train = frame.drop(frame.index[fold])
        try:
            w = fit_weights(train, ridge=ridge)
        except ValueError:
            w = default
        predicted[fold] = score(w, frame.iloc[fold])
    after_cv = _corr(predicted, frame["human"].to_numpy(float))[0]
    meta_before, meta_after = meta_accuracy(default, pairs), meta_accuracy(fitted, pairs)
    if meta_after is not None:
        fitted = fitted.model_copy(update={"notes": f"{fitted.notes}; meta-evaluation accuracy {meta_after:.3f}"})
    return Calibration(
        correlations(frame, fitted, rounds=rounds, seed=seed),
        fitted,
        round(before, 4),
        round(after, 4),
        round(after_cv, 4),
        len(frame),
        meta_before,
        meta_after,
    )


def meta_accuracy(weights: Weights, pairs=None) -> float | None:
    """Share of the meta-evaluation pairs where the combined score with `weights` prefers the better reply
    (ties half); None when there is no usable pairs file."""
    from rp_eval.evaluate.meta import MetaError, preferences, read_pairs

    try:
        found = read_pairs(pairs)
    except MetaError:
        return None
    prefs, _ = preferences(found, weights)
    return round(float(prefs["combined"].mean()), 4)


def model_correlations(table: pd.DataFrame, human: str = "human_bt", rounds: int = 500, seed: int = 0) -> pd.DataFrame:
    """Per model: each metric's mean and the combined score against a human column of `model_table`."""
    if human not in table or table[human].notna().sum() < 3:
        return pd.DataFrame(columns=CORRELATION_COLUMNS)
    t = table[table[human].notna()]
    good = directed_frame(t)
    rows = [correlate(t["combined"], t[human], rounds, seed, "combined")]
    rows += [correlate(good[c], t[human], rounds, seed, c) for c in good.columns]
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def calibrate_store(
    store: Store,
    weights: str | None = None,
    ridge: float = 1.0,
    seed: int = 0,
    save_as: str = "calibrated",
    rounds: int = 200,
):
    """Calibrate on every Likert-scored reply in the store and save the fitted weights in the workspace;
    returns (Calibration, path of the weights). Raises RpEvalError when there is too little to fit."""
    from rp_eval.errors import RpEvalError
    from rp_eval.evaluate.score import load_weights, save_weights
    from rp_eval.evaluate.task import load_task

    frame = rated_replies(store, load_task())
    if len(frame) < 10:
        raise RpEvalError(key="err_calibrate_few", n=len(frame))
    try:
        cal = calibrate(frame, load_weights(weights), ridge=ridge, rounds=rounds, seed=seed)
    except ValueError as err:
        raise RpEvalError(key="err_calibrate_failed", reason=err.args[0] if err.args else str(err)) from None
    return cal, save_weights(cal.weights.model_copy(update={"name": save_as}))
