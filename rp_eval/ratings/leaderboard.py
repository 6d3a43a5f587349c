"""The leaderboard, computed from rating records only (as FastChat's elo_analysis.py): the same function serves
the Leaderboard tab, `rp-eval ratings leaderboard` and a JSONL file exported from another machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from rp_eval.ratings import agreement, bt
from rp_eval.ratings.records import AXIS_NAMES, RatingFilter, load_scores, load_votes, write_frame
from rp_eval.store import Store

ARENA_COLUMNS = ["rank", "model", "score", "lower", "upper", "votes", "wins", "losses", "ties", "win_rate"]
LIKERT_COLUMNS = ["model", "axis", "mean", "lower", "upper", "n"]


@dataclass
class Leaderboard:
    arena: pd.DataFrame  # ARENA_COLUMNS, best first
    win_rates: pd.DataFrame  # row model's win rate against column model (ties half), NaN where they never met
    counts: pd.DataFrame  # votes between every two models
    likert: pd.DataFrame  # LIKERT_COLUMNS
    agreement: list[agreement.Agreement] = field(default_factory=list)
    rounds: int = 0

    def agreement_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [a.__dict__ for a in self.agreement], columns=["what", "alpha", "items", "raters", "judgements"]
        )


def arena_table(votes: pd.DataFrame, rounds: int = 1000, seed: int = 0) -> pd.DataFrame:
    if votes.empty:
        return pd.DataFrame(columns=ARENA_COLUMNS)
    fit = bt.bradley_terry(votes, rounds=rounds, seed=seed)
    rows = []
    for m in fit.models:
        as_a, as_b = votes[votes["model_a"] == m], votes[votes["model_b"] == m]
        wins = int((as_a["winner"] == "model_a").sum() + (as_b["winner"] == "model_b").sum())
        losses = int((as_a["winner"] == "model_b").sum() + (as_b["winner"] == "model_a").sum())
        n = len(as_a) + len(as_b)
        ties = n - wins - losses
        rows.append(
            {
                "rank": fit.rank[m],
                "model": m,
                "score": round(fit.score[m], 1),
                "lower": round(fit.lower.get(m, math.nan), 1),
                "upper": round(fit.upper.get(m, math.nan), 1),
                "votes": n,
                "wins": wins,
                "losses": losses,
                "ties": ties,
                "win_rate": round((wins + ties / 2) / n, 3),
            }
        )
    return (
        pd.DataFrame(rows, columns=ARENA_COLUMNS)
        .sort_values(["rank", "score"], ascending=[True, False])
        .reset_index(drop=True)
    )


def win_rates(votes: pd.DataFrame, order: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(win rate of the row model against the column model with ties as half, number of votes between them)."""
    models = order or sorted(set(votes["model_a"]) | set(votes["model_b"]))
    if not models:
        return pd.DataFrame(), pd.DataFrame()
    cells, counts, _ = bt._cells(votes, models)
    w = bt.win_matrix(cells, counts, len(models))
    n = w + w.T
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, w / n, np.nan)
    return (
        pd.DataFrame(rate.round(3), index=models, columns=models),
        pd.DataFrame(n.astype(int), index=models, columns=models),
    )


def likert_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean per model and axis with a 95% t-interval (no interval from a single score)."""
    rows = []
    if not scores.empty:
        for (model, axis), values in scores.melt(id_vars="model", value_vars=AXIS_NAMES, var_name="axis").groupby(
            ["model", "axis"], sort=False
        )["value"]:
            x = values.dropna().astype(float).to_numpy()
            mean = float(x.mean())
            half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan
            rows.append(
                {
                    "model": model,
                    "axis": axis,
                    "mean": round(mean, 3),
                    "lower": round(max(1.0, mean - half), 3) if half == half else math.nan,  # half is nan for n=1
                    "upper": round(min(5.0, mean + half), 3) if half == half else math.nan,
                    "n": len(x),
                }
            )
    frame = pd.DataFrame(rows, columns=LIKERT_COLUMNS)
    frame["axis"] = pd.Categorical(frame["axis"], AXIS_NAMES)
    return frame.sort_values(["model", "axis"]).reset_index(drop=True).astype({"axis": str})


def compute(votes: pd.DataFrame, scores: pd.DataFrame, rounds: int = 1000, seed: int = 0) -> Leaderboard:
    arena = arena_table(votes, rounds, seed)
    rates, counts = win_rates(votes, list(arena["model"])) if not votes.empty else (pd.DataFrame(), pd.DataFrame())
    agree = [agreement.vote_agreement(votes), *agreement.score_agreement(scores)]
    return Leaderboard(arena, rates, counts, likert_table(scores), agree, rounds)


def from_store(store: Store, where: RatingFilter = RatingFilter(), rounds: int = 1000, seed: int = 0) -> Leaderboard:
    return compute(load_votes(store, where), load_scores(store, where), rounds, seed)


def text_table(frame: pd.DataFrame) -> str:
    return frame.to_string(index=False) if not frame.empty else "(no ratings yet)"


def export(board: Leaderboard, folder: Path, fmt: Literal["csv", "jsonl"] = "csv") -> list[Path]:
    """Every aggregate as one file in `folder`: arena, likert, win_rates, counts, agreement."""
    folder = Path(folder)
    frames = {
        "arena": board.arena,
        "likert": board.likert,
        "win_rates": board.win_rates.rename_axis("model").reset_index(),
        "vote_counts": board.counts.rename_axis("model").reset_index(),
        "agreement": board.agreement_frame(),
    }
    return [write_frame(f, folder / f"{name}.{fmt}", fmt) for name, f in frames.items()]
