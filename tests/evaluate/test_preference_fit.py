"""A fitness fitted on the lab's blind votes and chat preferences: its held-out agreement follows what the raters
did (high when they prefer what a metric sees, chance when they vote at random); too few votes are named; the
Evolve tab's button saves the weights, chooses them and shows the agreement."""

from __future__ import annotations

import numpy as np
import pytest

from rp_eval.evaluate import preference_fit as pf
from rp_eval.evaluate.score import load_weights
from rp_eval.store import get_store
from rp_eval.store import preferences as prefs
from rp_eval.store import ratings as table

GOOD = ["かしこまりました。すぐに紅茶をお持ちいたします。", "承知いたしました。少々お待ちくださいませ。"]
BAD = ["かしこまりました。すぐに紅茶をお持ちいたし", "承知いたしました。少々お待ち"]  # cut at the cap


def _vote(store, n: int, good_wins: bool, rater: str) -> None:
    k = n % 2
    good = [{"role": "user", "content": "紅茶をください。"}, {"role": "assistant", "content": GOOD[k]}]
    bad = [{"role": "user", "content": "紅茶をください。"}, {"role": "assistant", "content": BAD[k]}]
    item = table.open_item(
        store,
        table.RatingItemRow(
            kind="pair", rater=rater, models=["x", "y"], conversations=[[], []], finish_reasons=[[], []]
        ),
    )
    first_good = n % 3 == 0  # the good reply on either side
    conv_a, conv_b = (good, bad) if first_good else (bad, good)
    fin_a, fin_b = (["eos"], ["length"]) if first_good else (["length"], ["eos"])
    winner = ("model_a" if first_good else "model_b") if good_wins else ("model_b" if first_good else "model_a")
    table.add_vote(
        store,
        table.VoteRow(
            item_id=item.id,
            rater=rater,
            persona_id="butler",
            model_a="x",
            model_b="y",
            winner=winner,
            conversation_a=conv_a,
            conversation_b=conv_b,
            finish_a=fin_a,
            finish_b=fin_b,
            item_key=item.id,
        ),
    )


def _votes(store, n: int, p_good: float, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        _vote(store, i, rng.random() < p_good, f"r{i % 4}")


def _chat(store, n: int) -> None:
    rows = [
        prefs.PreferenceRow(
            conversation_id=0,  # no stored chat behind them: the texts are all the fit needs
            kind="edit",
            owner="mika",
            persona_id="butler",
            chosen_turn=100 + i,
            chosen=GOOD[i % 2],
            rejected=BAD[i % 2],
        )
        for i in range(n)
    ]
    prefs.record(store, rows)


def test_agreement_follows_the_raters(workspace):
    store = get_store()
    _votes(store, 40, p_good=0.9)
    _chat(store, 10)
    result = pf.fit_preferences(store)
    assert (result.blind, result.chat, result.held_out) == (40, 10, 40) and result.problems == []
    assert result.agreement >= 0.8  # held out, the fitted score orders the votes as most raters did
    ending = ("natural_stop", "length_capped", "cut_mid_sentence", "unfinished_ending")
    assert sum(result.weights.weights[m] for m in ending) > 5 and result.weights.weights["judge"] == 0  # of 10
    assert result.agreement > result.agreement_default  # here the default weights miss what the raters want
    path = pf.save(result)
    assert load_weights("human-preference").weights == result.weights.weights  # what the fitness loads
    assert pf.figures("human-preference")["agreement"] == result.agreement and path.exists()


def test_random_votes_give_chance_agreement(workspace):
    store = get_store()
    _votes(store, 60, p_good=0.5, seed=3)
    result = pf.fit_preferences(store)
    assert result.agreement is not None and result.agreement < 0.7


def test_too_few_votes_are_named(workspace):
    store = get_store()
    _votes(store, 5, p_good=1.0)
    with pytest.raises(pf.PreferenceFitError) as err:
        pf.fit_preferences(store)
    assert err.value.key == "err_prefit_few" and "5 blind votes with a winner, 0 chat" in str(err.value)
    _chat(store, 20)  # enough to fit, too few blind votes to measure agreement
    result = pf.fit_preferences(store)
    assert result.agreement is None and [p.key for p in result.problems] == ["prefit_few_blind"]


def test_the_evolve_tab_fits_saves_and_shows_the_agreement(workspace):
    from rp_eval.ui import evolve_tab

    choice, line = evolve_tab.fit_to_preferences()  # an empty lab: the reason, nothing chosen
    assert line.startswith("⚠️ too few preferences to calibrate the fitness: 0")
    store = get_store()
    _votes(store, 30, p_good=0.9)
    choice, line = evolve_tab.fit_to_preferences()
    assert choice["value"] == "human-preference" and "human-preference" in choice["choices"]
    assert "fitted on 30 blind votes and 0 chat preferences; agreement with held-out blind votes" in line
    assert evolve_tab.prefit_line("human-preference") in line and evolve_tab.prefit_line("") == ""
