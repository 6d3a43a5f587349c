"""Which two models to show next: every pair can come up, pairs with few votes so far come up more often.

Weight of a pair = 1 / (1 + votes so far)^2, so a pair with no votes is four times as likely as one with a
single vote, and the leaderboard's intervals narrow evenly instead of around the first pairs that were drawn.
Which of the two is shown as "A" is a coin flip.
"""

from __future__ import annotations

import itertools
import random

from rp_eval.ratings.records import RatingError


def pair_weights(models: list[str], counts: dict[tuple[str, str], int]) -> dict[tuple[str, str], float]:
    pairs = list(itertools.combinations(sorted(set(models)), 2))
    return {p: 1.0 / (1 + counts.get(p, 0)) ** 2 for p in pairs}


def pick_pair(
    models: list[str], counts: dict[tuple[str, str], int], rng: random.Random | None = None
) -> tuple[str, str]:
    """(model shown as A, model shown as B)."""
    rng = rng or random.Random()
    weights = pair_weights(models, counts)
    if not weights:
        raise RatingError(
            f"a blind pair needs two registered models; there {'is' if len(models) == 1 else 'are'} {len(models)}"
        )
    pairs = list(weights)
    a, b = rng.choices(pairs, weights=[weights[p] for p in pairs])[0]
    return (a, b) if rng.random() < 0.5 else (b, a)
