"""Calibration on synthetic ratings with a known relation to the metrics."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from rp_eval.evaluate.calibrate import calibrate, correlate, fit_weights, model_correlations, rated_replies
from rp_eval.evaluate.metrics import Reply, measure
from rp_eval.evaluate.score import Weights, load_weights

IN_CHARACTER = ["拙者、参るでござる。", "よき雨でござるな。", "団子はうまいでござる。", "殿、こちらへ。"]
OUT_OF_CHARACTER = ["そうやで、うちが行くわ。", "はい、わかりました。", "了解しました。", "ほな行こか。"]


def synthetic(n: int = 120, seed: int = 0, personas=None) -> pd.DataFrame:
    """Replies whose human score is 1 + 3 * in-character + noise, and worse when they loop."""
    rng = random.Random(seed)
    samurai, others = personas["samurai"].style, tuple(p.style for k, p in personas.items() if k != "samurai")
    rows = []
    for _ in range(n):
        good = rng.random() < 0.5
        text = rng.choice(IN_CHARACTER if good else OUT_OF_CHARACTER)
        loop = rng.random() < 0.2
        text = text * 4 if loop else text
        metrics = measure(Reply(text=text, style=samurai, others=others, character="鷹森源之丞"))
        human = 1 + 3 * good - 1.5 * loop + rng.gauss(0, 0.4)
        rows.append({"model": f"m{rng.randrange(4)}", "human": human, **metrics})
    return pd.DataFrame(rows)


def test_fitted_weights_find_the_metrics_people_follow(personas):
    frame = synthetic(personas=personas)
    w = fit_weights(frame)
    character = w.weights.get("expected_markers", 0) + w.weights.get("other_persona_markers", 0)
    character += w.weights.get("politeness_match", 0) + w.weights.get("forbidden_markers", 0)
    assert character > 5  # most of the 10 points go to the character metrics people followed
    assert w.weights.get("natural_stop", 0) == 0  # constant here: carries no information


def test_calibration_improves_the_rank_correlation_out_of_sample(personas):
    frame = synthetic(personas=personas)
    default = Weights(
        weights={"natural_stop": 1.0, "length_in_range": 1.0, "japanese_share": 1.0, "expected_markers": 0.1}
    )
    cal = calibrate(frame, default, rounds=100)
    assert cal.after > cal.before and cal.after_cv > 0.7
    combined_row = cal.per_reply.iloc[0]
    assert (
        combined_row["what"] == "combined"
        and combined_row["spearman_lo"] <= combined_row["spearman"] <= combined_row["spearman_hi"]
    )
    assert {"spearman", "kendall", "kendall_lo"} <= set(cal.per_reply.columns)


def test_fitted_weights_are_reported_with_their_meta_evaluation_accuracy(personas, tmp_path):
    from pathlib import Path

    from rp_eval.evaluate.calibrate import meta_accuracy

    pairs = Path(__file__).parent / "data" / "meta_pairs.jsonl"
    frame = synthetic(personas=personas)
    default = Weights(weights={"natural_stop": 1.0})  # the same for both replies of every pair: all ties
    cal = calibrate(frame, default, rounds=50, pairs=pairs)
    assert cal.meta_before == 0.5
    # fitted to people who followed the voice, the weights now tell the pairs apart too, and say how well
    assert cal.meta_after == meta_accuracy(cal.weights, pairs) and cal.meta_after > 0.6
    assert f"meta-evaluation accuracy {cal.meta_after:.3f}" in cal.weights.notes
    assert calibrate(frame, default, rounds=50, pairs=tmp_path / "none.jsonl").meta_after is None


def test_bootstrap_interval_brackets_a_known_correlation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    y = x + rng.normal(scale=0.5, size=200)
    out = correlate(x, y, rounds=200)
    assert 0.75 < out["spearman"] < 0.95 and out["spearman_lo"] < out["spearman"] < out["spearman_hi"]
    assert np.isnan(correlate([1, 1, 1, 1], [1, 2, 3, 4], rounds=10)["spearman"])


def test_per_model_correlation_needs_three_rated_models():
    table = pd.DataFrame(
        {
            "model": list("abcd"),
            "combined": [0.2, 0.4, 0.6, 0.8],
            "natural_stop": [0.1, 0.5, 0.6, 0.9],
            "human_bt": [900, 980, 1010, 1100],
        }
    )
    out = model_correlations(table, rounds=50)
    assert out.set_index("what").loc["combined", "spearman"] == pytest.approx(1.0)
    assert model_correlations(table.head(2)).empty


def test_rated_replies_measures_what_people_scored(workspace, task):
    from rp_eval.ratings import arena
    from rp_eval.store import get_store

    store = get_store()
    persona = task.personas["samurai"]
    for k, (text, grade) in enumerate([("拙者が参ろう。", 5), ("うちが行くやで。", 1), ("よき雨でござる。", 4)]):
        conversation = [
            *persona.opening(),
            {"role": "user", "content": "雨ですね。"},
            {"role": "assistant", "content": text},
        ]
        view = arena.open_stored(
            store, "r1", f"m{k}", conversation, "eos", persona_id="samurai", persona_name=persona.name
        )
        arena.score(
            store, view.item_id, "r1", {a: grade for a in ("naturalness", "consistency", "length_fit", "overall")}
        )
    frame = rated_replies(store, task)
    assert len(frame) == 3 and list(frame["human"]) == [5, 1, 4]
    assert list(frame["first_person_ok"]) == [1.0, 0.0, 1.0]
    assert load_weights().weights  # the defaults still load in this workspace


def test_calibrate_command_fits_and_saves_weights_the_fitness_can_use(workspace, task, capsys):
    import json

    from rp_eval.cli import main
    from rp_eval.ratings import arena
    from rp_eval.store import get_store

    store, persona, rng = get_store(), task.personas["samurai"], random.Random(3)
    for k in range(30):
        good = k % 2 == 0
        text = rng.choice(IN_CHARACTER if good else OUT_OF_CHARACTER)
        conversation = [*persona.opening(), {"role": "user", "content": f"今日は{k}日ですね。"}]
        conversation.append({"role": "assistant", "content": text})
        view = arena.open_stored(store, "r", f"m{k % 3}", conversation, "eos", persona_id="samurai")
        grade = min(5, max(1, round(1 + 3 * good + rng.gauss(0, 0.5))))
        arena.score(
            store, view.item_id, "r", {a: grade for a in ("naturalness", "consistency", "length_fit", "overall")}
        )
    assert main(["eval", "calibrate", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["replies"] == 30 and out["spearman_after"] > 0.7 and out["spearman_after_cv"] > 0.5
    assert set(out) >= {"meta_accuracy_before", "meta_accuracy_after"}
    fitted = load_weights("calibrated")
    assert fitted.name == "calibrated" and sum(fitted.weights.values()) == pytest.approx(10, abs=0.01)
