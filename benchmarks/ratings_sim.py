"""Are the ratings statistics honest? Simulated labs with known truth, through rp_eval.ratings.combined and .ppi.

    python benchmarks/ratings_sim.py --json             # 1,000 labs (one CPU core, a few minutes)
    python benchmarks/ratings_sim.py --labs 20 --json   # a quick check

Each lab (its own seed) has:
- models with true strengths s ~ N(0, 0.5²) (natural-log Bradley-Terry units) and their own typical reply length;
- raters, each with a taste of their own (a bias per model, N(0, 0.35²)), a preference for side A (N(0, 0.2²)),
  and a number of blind votes (1 + Poisson(15)); a blind vote is a tie 10% of the time;
- chat choices from the same raters (1 + Poisson(20) each): noisy preferences, half as decisive as a blind vote,
  with the rater's same taste plus noise;
- a judge model voting on random pairs: 1.3 × as decisive as a blind vote and with a strong preference for the
  longer reply (2.5 × the relative length difference, a length difference of 30% moves it by 0.75 in logit);
  `--judge-bias SD` adds a per-model judge bias that has nothing to do with length (no method can remove it);
- for the prediction-powered scores, per model: 160 items with a true quality ~ N(3 + s, 0.7²), an automatic score
  that follows the quality (0.7 ×) plus a length bias (0.8 × the reply's standardised length) plus noise (0.4),
  and 40 items rated by a random rater (the rater's bias N(0, 0.3²), noise 0.6).

The combined ranking's target is what an unlimited number of blind votes from the same rater population would
give (the strengths a blind-votes-only Bradley-Terry fit tends to, length covariate included): computed per lab
by the same fitting code on the exact expected outcome of every pair. The PPI target is the model's mean human
score over items and raters (3 + s). Printed: coverage of the 95% intervals, their mean width, and the Spearman
correlation of the ranking with the true strengths, for the combined fit and for blind votes alone (and for
PPI, PPI++ and human ratings alone).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rp_eval.ratings import combined  # noqa: E402
from rp_eval.ratings.ppi import ppi_scores  # noqa: E402

SD_TASTE, SD_SIDE, TIES = 0.35, 0.2, 0.1
CHAT_SCALE, CHAT_NOISE = 0.5, 0.5
JUDGE_SCALE, JUDGE_LENGTH, JUDGE_NOISE = 1.3, 2.5, 0.3
HERMITE = np.polynomial.hermite_e.hermegauss(24)  # nodes and weights for E over a standard normal


def lengths(rng, mean_log: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return 120 * np.exp(mean_log[idx] + rng.normal(0, 0.35, idx.shape))


def pairs(rng, n_models: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    a = rng.integers(n_models, size=k)
    b = (a + rng.integers(1, n_models, size=k)) % n_models
    return a, b


def outcome(rng, logit: np.ndarray, ties: float = 0.0) -> np.ndarray:
    won = rng.random(logit.shape) < expit(logit)
    tie = rng.random(logit.shape) < ties
    return np.where(tie, "tie", np.where(won, "model_a", "model_b"))


def simulate_votes(rng, s, mean_log, raters: int, judge_votes: int, judge_bias: float) -> pd.DataFrame:
    n = len(s)
    taste = rng.normal(0, SD_TASTE, (raters, n))
    side = rng.normal(0, SD_SIDE, raters)
    frames = []
    for source, per_rater in (("blind", 15), ("chat", 20)):
        counts = 1 + rng.poisson(per_rater, raters)
        r = np.repeat(np.arange(raters), counts)
        a, b = pairs(rng, n, len(r))
        gap = s[a] - s[b] + taste[r, a] - taste[r, b]
        if source == "blind":
            y = outcome(rng, gap + side[r], TIES)
        else:
            y = outcome(rng, CHAT_SCALE * gap + rng.normal(0, CHAT_NOISE, len(r)))
        la, lb = lengths(rng, mean_log, a), lengths(rng, mean_log, b)
        frames.append(pd.DataFrame({"model_a": a, "model_b": b, "winner": y, "source": source, "rater": r,
                                    "len_a": la, "len_b": lb}))  # fmt: skip
    a, b = pairs(rng, n, judge_votes)
    la, lb = lengths(rng, mean_log, a), lengths(rng, mean_log, b)
    bias = rng.normal(0, judge_bias, n) if judge_bias else np.zeros(n)
    logit = JUDGE_SCALE * (s[a] - s[b]) + bias[a] - bias[b] + JUDGE_LENGTH * (la - lb) / (la + lb)
    y = outcome(rng, logit + rng.normal(0, JUDGE_NOISE, judge_votes))
    frames.append(pd.DataFrame({"model_a": a, "model_b": b, "winner": y, "source": "judge", "rater": "judge",
                                "len_a": la, "len_b": lb}))  # fmt: skip
    votes = pd.concat(frames, ignore_index=True)
    votes["model_a"] = "m" + votes["model_a"].astype(str)
    votes["model_b"] = "m" + votes["model_b"].astype(str)
    return votes


def blind_target(rng, s, mean_log) -> np.ndarray:
    """The strengths (Elo scale, centred) of a blind-votes fit on unlimited votes: the fit's own design on every
    ordered pair × 200 length draws, with each vote's exact expected outcome over the rater population
    (uses the fit's private design type: the outcomes here are probabilities, which votes can not carry)."""
    n = len(s)
    a, b = np.divmod(np.arange(n * n), n)
    a, b = np.repeat(a[a != b], 200), np.repeat(b[a != b], 200)
    la, lb = lengths(rng, mean_log, a), lengths(rng, mean_log, b)
    sd = np.sqrt(2 * SD_TASTE**2 + SD_SIDE**2)
    nodes, weights = HERMITE
    p = (expit(s[a, None] - s[b, None] + sd * nodes[None]) @ weights) / weights.sum()
    y = (1 - TIES) * p + TIES * 0.5
    d = combined._Design(
        models=[f"m{i}" for i in range(n)], sources=["blind"], a=a, b=b, s=np.zeros(len(a), int),
        x=(la - lb) / (la + lb), y=y, w=np.full(len(a), 1e3 / len(a) * n * n), cluster=np.zeros(len(a), int),
    )  # fmt: skip
    theta = combined._fit_many(d, d.w[None], d.start())[0]
    return combined._strengths(d, theta)


def simulate_ppi(rng, s, raters: int, items: int, rated: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(s)
    bias = rng.normal(0, 0.3, raters)
    quality = 3 + s[:, None] + rng.normal(0, 0.7, (n, items))
    zlen = rng.normal(0, 1, (n, 1)) * 0.5 + rng.normal(0, 1, (n, items))  # each model has its own typical length
    auto = 0.7 * quality + 0.8 * zlen + rng.normal(0, 0.4, (n, items))
    model, item = np.divmod(np.arange(n * items), items)
    auto_frame = pd.DataFrame({"model": model, "item": item, "score": auto.ravel()})
    pick = np.argsort(rng.random((n, items)), axis=1)[:, :rated]
    m = np.repeat(np.arange(n), rated)
    i = pick.ravel()
    r = rng.integers(raters, size=len(m))
    human = quality[m, i] + bias[r] + rng.normal(0, 0.6, len(m))
    return auto_frame, pd.DataFrame({"model": m, "item": i, "score": human, "rater": r})


def lab(seed: int, args) -> dict:
    rng = np.random.default_rng(seed)
    n = args.models
    s = rng.normal(0, 0.5, n)
    mean_log = rng.normal(0, 0.35, n)
    votes = simulate_votes(rng, s, mean_log, args.raters, args.judge_votes, args.judge_bias)
    truth = blind_target(rng, s, mean_log)
    names = [f"m{i}" for i in range(n)]
    out = {}
    for what, sources in (("combined", None), ("blind", ["blind"])):
        fit = combined.combined_ranking(votes, sources=sources, rounds=args.rounds, seed=seed)
        score = np.array([fit.score[m] for m in names])
        lo, hi = np.array([fit.lower[m] for m in names]), np.array([fit.upper[m] for m in names])
        out[what] = {
            "cover": ((lo <= truth) & (truth <= hi)).tolist(),
            "width": (hi - lo).tolist(),
            "spearman": float(stats.spearmanr(score, s)[0]),
            "error": (score - truth).tolist(),
        }
        if what == "combined":
            out["scale"] = fit.scale
            out["length"] = fit.length
    auto, human = simulate_ppi(rng, s, args.raters, args.items, args.rated)
    true_mean = 3 + s
    for what, tuned in (("ppi", False), ("ppi++", True)):
        table, _ = ppi_scores(auto, human, tuned=tuned)
        lo, hi = table["ppi_lower"].to_numpy(), table["ppi_upper"].to_numpy()
        out[what] = {"cover": ((lo <= true_mean) & (true_mean <= hi)).tolist(), "width": (hi - lo).tolist()}
    lo, hi = table["human_lower"].to_numpy(), table["human_upper"].to_numpy()
    out["human"] = {"cover": ((lo <= true_mean) & (true_mean <= hi)).tolist(), "width": (hi - lo).tolist()}
    out["votes"] = votes["source"].value_counts().to_dict()
    return out


def summary(labs: list[dict], args, seconds: float) -> dict:
    def cover(what: str) -> float:
        return round(float(np.mean([c for lab in labs for c in lab[what]["cover"]])), 4)

    def width(what: str) -> float:
        return round(float(np.mean([w for lab in labs for w in lab[what]["width"]])), 3)

    result = {
        "labs": len(labs),
        "models": args.models,
        "raters": args.raters,
        "rounds": args.rounds,
        "judge_bias": args.judge_bias,
        "votes_per_lab": {k: round(float(np.mean([lab["votes"][k] for lab in labs])), 1) for k in labs[0]["votes"]},
        "ranking": {
            what: {
                "coverage": cover(what),
                "width_elo": width(what),
                "spearman": round(float(np.mean([lab[what]["spearman"] for lab in labs])), 4),
                "rmse_elo": round(float(np.sqrt(np.mean([e**2 for lab in labs for e in lab[what]["error"]]))), 2),
            }
            for what in ("combined", "blind")
        },
        "fitted_scale": {k: round(float(np.mean([lab["scale"][k] for lab in labs])), 3) for k in labs[0]["scale"]},
        "fitted_length": {k: round(float(np.mean([lab["length"][k] for lab in labs])), 3) for k in labs[0]["length"]},
        "ppi": {what: {"coverage": cover(what), "width": width(what)} for what in ("ppi", "ppi++", "human")},
        "seconds": round(seconds, 1),
    }
    r, p = result["ranking"], result["ppi"]
    result["ranking"]["width_ratio_combined_to_blind"] = round(r["combined"]["width_elo"] / r["blind"]["width_elo"], 3)
    result["ppi"]["width_ratio_ppi_to_human"] = round(p["ppi"]["width"] / p["human"]["width"], 3)
    result["ppi"]["width_ratio_ppi++_to_human"] = round(p["ppi++"]["width"] / p["human"]["width"], 3)
    result["in_band"] = {w: 0.93 <= c <= 0.97 for w, c in (
        ("combined", r["combined"]["coverage"]), ("ppi", p["ppi"]["coverage"]), ("ppi++", p["ppi++"]["coverage"]))}  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labs", type=int, default=1000)
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--raters", type=int, default=16)
    parser.add_argument("--judge-votes", type=int, default=400)
    parser.add_argument("--judge-bias", type=float, default=0.0, help="sd of a per-model judge bias (not length)")
    parser.add_argument("--items", type=int, default=160)
    parser.add_argument("--rated", type=int, default=40, help="human-rated items per model")
    parser.add_argument("--rounds", type=int, default=100, help="bootstrap rounds per fit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    labs = [lab(args.seed * 100_000 + i, args) for i in range(args.labs)]
    result = summary(labs, args, time.perf_counter() - start)
    print(json.dumps(result, ensure_ascii=False) if args.json else json.dumps(result, indent=2, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
