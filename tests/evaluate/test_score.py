from __future__ import annotations

import pytest

from rp_eval.evaluate.metrics import BY_NAME
from rp_eval.evaluate.score import Weights, WeightsError, combined, load_weights, save_weights


def test_default_weights_load_and_the_score_lies_in_0_1():
    w = load_weights()
    assert w.name == "default" and w.weights["natural_stop"] > 0
    # every weighted metric at its good end (1 for "high", 0 for "low"; the optional ones are on [0, 1], 1 good)
    best = {name: 0.0 if name in BY_NAME and BY_NAME[name].good == "low" else 1.0 for name in w.weights}
    worst = {k: 1.0 - v for k, v in best.items()}
    assert combined(best, w) == 1.0 and combined(worst, w) == 0.0
    assert 0.0 < combined({**best, "natural_stop": 0.0}, w) < 1.0


def test_a_metric_left_out_is_not_counted():
    w = Weights(weights={"natural_stop": 1.0, "judge": 1.0})
    assert combined({"natural_stop": 1.0}, w) == 1.0
    assert combined({"natural_stop": 1.0, "judge": 0.0}, w) == 0.5


def test_bad_weights_are_named(tmp_path):
    with pytest.raises(WeightsError, match="'chars' is not a metric with a direction"):
        Weights(name="x", weights={"chars": 1.0}).check()
    with pytest.raises(WeightsError, match="negative"):
        Weights(name="x", weights={"natural_stop": -1.0}).check()
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "none.yaml")


def test_weights_round_trip_by_name(workspace):
    path = save_weights(Weights(name="mine", weights={"natural_stop": 2.0, "japanese_share": 1.0}))
    assert path.parent.name == "weights" and load_weights("mine").weights["natural_stop"] == 2.0
