"""Pair sampling: every pair can come up, pairs with few votes come up more, sides are shuffled."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from rp_eval.ratings.records import RatingError
from rp_eval.ratings.sampling import pick_pair

MODELS = ["a", "b", "c", "d"]


def test_pairs_with_few_votes_come_first():
    counts = {("a", "b"): 50, ("a", "c"): 50, ("a", "d"): 50, ("b", "c"): 50, ("b", "d"): 50}  # (c, d): none
    rng = random.Random(0)
    drawn = Counter(tuple(sorted(pick_pair(MODELS, counts, rng))) for _ in range(2000))
    assert drawn[("c", "d")] > 0.9 * 2000
    assert len(drawn) == 6 or sum(drawn.values()) == 2000  # every pair stays possible
    sides = Counter(pick_pair(["x", "y"], {}, rng)[0] for _ in range(2000))
    assert 850 < sides["x"] < 1150


def test_even_counts_draw_evenly_and_too_few_models_say_so():
    rng = random.Random(1)
    drawn = Counter(tuple(sorted(pick_pair(MODELS, {}, rng))) for _ in range(3000))
    assert len(drawn) == 6 and min(drawn.values()) > 350
    with pytest.raises(RatingError, match="two registered models"):
        pick_pair(["only"], {})


def test_rater_is_the_logged_in_user_when_there_is_one():
    from types import SimpleNamespace

    from rp_eval.ui.rate_tab import _who

    assert _who("typed", SimpleNamespace(username="alice")) == "alice"
    assert _who("  typed ", SimpleNamespace(username=None)) == "typed"
    assert _who("", None) == ""
