"""Agreement between raters on items judged more than once: Krippendorff's alpha (the `krippendorff` package).

An item is identified by its content (`item_key`: the model(s), the conversation and the reply(s)), so the same
reply shown to two raters is one item. Likert axes are ordinal (1-5); a pairwise vote is nominal, read in a
fixed order of the two models (the first model by name wins / the second wins / tie / both bad), so "A" in one
rater's page and "B" in another's are the same judgement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import krippendorff
import numpy as np
import pandas as pd

from rp_eval.ratings.records import AXIS_NAMES


@dataclass
class Agreement:
    what: str  # "vote" or a Likert axis
    alpha: float  # nan when there is nothing to compare
    items: int  # items judged by two raters or more
    raters: int
    judgements: int


def _alpha(frame: pd.DataFrame, column: str, level: str, domain: list | None) -> Agreement:
    multi = frame.groupby("item_key")["rater"].transform("nunique") >= 2
    shared = frame[multi]
    if shared.empty:
        return Agreement(column, math.nan, 0, 0, 0)
    # one judgement per rater and item (the last one, if a rater judged an item twice)
    table = shared.pivot_table(index="rater", columns="item_key", values=column, aggfunc="last")
    data = table.to_numpy(dtype=float)
    values = np.unique(data[~np.isnan(data)])
    alpha = math.nan
    if len(values) >= 2:
        alpha = float(krippendorff.alpha(reliability_data=data, value_domain=domain, level_of_measurement=level))
    elif len(values) == 1:
        alpha = 1.0  # everyone gave the same answer everywhere: perfect agreement, though alpha is undefined
    return Agreement(column, alpha, table.shape[1], table.shape[0], int(np.sum(~np.isnan(data))))


VOTE_CODES = {"first": 0, "second": 1, "tie": 2, "bothbad": 3}


def vote_agreement(votes: pd.DataFrame) -> Agreement:
    """Nominal alpha of pairwise votes on the same pair of replies."""
    if votes.empty:
        return Agreement("vote", math.nan, 0, 0, 0)

    def code(row) -> int:
        if row["winner"] in ("tie", "bothbad"):
            return VOTE_CODES[row["winner"]]
        winner = row["model_a"] if row["winner"] == "model_a" else row["model_b"]
        return VOTE_CODES["first" if winner == min(row["model_a"], row["model_b"]) else "second"]

    frame = votes.assign(vote=votes.apply(code, axis=1))
    result = _alpha(frame, "vote", "nominal", None)
    result.what = "vote"
    return result


def score_agreement(scores: pd.DataFrame) -> list[Agreement]:
    """Ordinal alpha per Likert axis, over replies scored by two raters or more."""
    if scores.empty:
        return [Agreement(axis, math.nan, 0, 0, 0) for axis in AXIS_NAMES]
    return [_alpha(scores, axis, "ordinal", [1, 2, 3, 4, 5]) for axis in AXIS_NAMES]
