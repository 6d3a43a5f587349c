"""The combined ranking read from the store: blind votes, chat preferences between models, judge grades; the
Leaderboard's section over them; nothing to rank, one model, a deleted preference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rp_eval.ratings import sources
from rp_eval.ratings.combined import RankingError
from rp_eval.ratings.records import RatingFilter
from rp_eval.store import evaluation as eval_store
from rp_eval.store import preferences as prefs
from rp_eval.store import ratings as table
from rp_eval.ui import leaderboard_tab

MODELS = ["m-strong", "m-mid", "m-weak"]
STRENGTH = {"m-strong": 1.0, "m-mid": 0.0, "m-weak": -1.0}


def _blind(store, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        a, b = rng.choice(MODELS, 2, replace=False)
        win = rng.random() < 1 / (1 + math.exp(STRENGTH[b] - STRENGTH[a]))
        item = table.open_item(
            store,
            table.RatingItemRow(
                kind="pair", rater=f"r{i % 4}", models=[a, b], conversations=[[], []], finish_reasons=[[], []]
            ),
        )
        conv = [{"role": "user", "content": "やあ"}, {"role": "assistant", "content": "こんにちは" * (1 + i % 3)}]
        table.add_vote(
            store,
            table.VoteRow(
                item_id=item.id,
                rater=f"r{i % 4}",
                model_a=a,
                model_b=b,
                winner="model_a" if win else "model_b",
                conversation_a=conv,
                conversation_b=conv[:1],
                finish_a=[],
                finish_b=[],
                item_key=str(i),
            ),
        )


def _pref(owner: str, chosen: str, rejected: str, turn: int, kind: str = "side") -> prefs.PreferenceRow:
    return prefs.PreferenceRow(
        conversation_id=turn,
        kind=kind,
        owner=owner,
        chosen_turn=turn,
        rejected_turn=None if kind == "edit" else turn + 1000,
        chosen_model=chosen,
        rejected_model=rejected,
        chosen="良い返事です。",
        rejected="だめ",
    )


def _judge(store) -> None:
    for model, grade in (("m-strong", 0.9), ("m-mid", 0.5), ("m-weak", 0.2)):
        run = eval_store.open_run(store, f"key-{model}", model, "v1", {})
        eval_store.add_replies(
            store,
            run.id,
            [
                dict(item_id=f"i{k}", text="返事" * (k + 1), finish_reason="eos", extras={"judge": grade + 0.01 * k})
                for k in range(5)
            ],
        )
        eval_store.finish_run(store, run.id)


def test_every_source_is_read_and_counted(store):
    _blind(store, 60)
    prefs.record(
        store,
        [_pref("mika", "m-strong", "m-weak", 1), _pref("ken", "m-mid", "m-weak", 2)]
        + [_pref("mika", "m-mid", "m-mid", 3, "kept"), _pref("mika", "m-weak", "m-weak", 4, "edit")],
    )
    _judge(store)
    votes = sources.all_votes(store)
    assert votes.groupby("source").size().to_dict() == {"blind": 60, "chat": 2, "judge": 15}  # 3 pairs × 5 items
    chat = votes[votes["source"] == "chat"]
    assert set(chat["rater"]) == {"mika", "ken"}  # edits and one-model choices are no votes between models
    winners = [r.model_a if r.winner == "model_a" else r.model_b for r in chat.itertuples()]
    assert sorted(winners) == ["m-mid", "m-strong"]
    assert votes[["len_a", "len_b"]].notna().all().all()

    board = sources.combined_board(store, rounds=200)
    assert board.counts == {"blind": 60, "chat": 2, "judge": 15}
    assert list(board.table["model"]) == MODELS  # the true order
    row = board.table.set_index("model").loc["m-weak"]
    assert (row["votes_chat"], row["votes_judge"]) == (2, 10)
    assert (board.table["lower"] <= board.table["score"]).all() and (board.table["score"] <= board.table["upper"]).all()

    alone = sources.combined_board(store, rounds=100, sources=["chat"])  # one source alone
    assert set(alone.fit.weights) == {"chat"} and int(alone.table["votes_blind"].sum()) == 0

    # the leaderboard's filters apply to the chat preferences too
    assert len(sources.chat_votes(store, RatingFilter(rater="ken"))) == 1


def test_nothing_to_rank_one_model_and_a_deleted_preference(store):
    with pytest.raises(RankingError, match="no votes to rank from"):
        sources.combined_board(store, rounds=100)
    text, shown, plot = leaderboard_tab.combined(RatingFilter(), 100, "equal", "all")
    assert text.startswith("No combined ranking yet: no votes to rank from") and plot is None

    # one model only: its choices between its own replies are no votes between models
    prefs.record(store, [_pref("mika", "m-mid", "m-mid", 1, "kept"), _pref("mika", "m-mid", "m-mid", 2, "stopped")])
    with pytest.raises(RankingError):
        sources.combined_board(store, rounds=100)

    # two chat votes: ranked, with the "few votes" line; deleting one leaves one, deleting both leaves none
    prefs.record(store, [_pref("mika", "m-strong", "m-mid", 3), _pref("ken", "m-mid", "m-strong", 4)])
    text, shown, plot = leaderboard_tab.combined(RatingFilter(), 100, "equal", "all")
    assert "chat preferences: 2 votes from 2 raters" in text and "Only 2 votes" in text and plot is not None
    assert "source 'blind votes' has no votes" in text  # the missing sources are named, in the page's words
    ken = prefs.list_preferences(store, "ken")[0].id
    assert prefs.delete_preferences(store, [ken], "ken") == 1
    one = sources.combined_board(store, rounds=100)
    assert one.counts["chat"] == 1
    assert one.table["lower"].isna().all() and list(one.table["rank"]) == [1, 1]  # one vote: no interval, no order
    prefs.delete_preferences(store, [r.id for r in prefs.list_preferences(store, None)], None)
    with pytest.raises(RankingError):
        sources.combined_board(store, rounds=100)

    # weights to fit from the blind votes of one rater: named, every source keeps weight 1
    _blind(store, 1)
    prefs.record(store, [_pref("mika", "m-strong", "m-mid", 5)])
    text, _, _ = leaderboard_tab.combined(RatingFilter(), 100, "fit", "all")
    assert "fewer than two raters gave blind votes" in text and "(weight 1, scale" in text
