"""Votes and scores in the store: exactly once under concurrency, clear messages for bad input, filters."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from rp_eval.errors import RpEvalError
from rp_eval.ratings import arena
from rp_eval.ratings.records import RatingFilter, load_scores, load_votes
from rp_eval.store import ratings as table

MODELS = ["m-one", "m-two", "m-three"]
GOOD = {"naturalness": 4, "consistency": 5, "length_fit": 3, "overall": 4}


def test_eight_raters_two_hundred_votes_each_stored_exactly_once(store, reply):
    per_rater, raters = 200, 8
    errors: list[BaseException] = []
    expected: dict[str, str] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(raters)

    def rate(n: int) -> None:
        rng = random.Random(n)
        name = f"rater-{n}"
        try:
            barrier.wait()
            for _ in range(per_rater):
                view = arena.open_pair(store, name, message="こんにちは", models=MODELS, reply=reply, rng=rng)
                winner = rng.choice(["model_a", "model_b", "tie", "bothbad"])
                arena.vote(store, view.item_id, name, winner)
                with lock:
                    expected[view.item_id] = winner
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    start = time.perf_counter()
    threads = [threading.Thread(target=rate, args=(n,)) for n in range(raters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    assert not errors, errors[:3]
    votes = load_votes(store)
    assert len(votes) == per_rater * raters == len(expected)
    assert votes["item_id"].is_unique
    assert dict(zip(votes["item_id"], votes["winner"], strict=True)) == expected
    assert votes.groupby("rater").size().tolist() == [per_rater] * raters
    assert table.count_rows(store)["open_items"] == 0
    assert store.integrity_ok()
    print(f"\n{per_rater * raters} votes from {raters} threads in {seconds:.1f} s")


def test_double_vote_and_concurrent_double_click_store_one(store, reply):
    view = arena.open_pair(store, "ann", models=MODELS, reply=reply)
    arena.vote(store, view.item_id, "ann", "model_a")
    with pytest.raises(RpEvalError, match="already judged"):
        arena.vote(store, view.item_id, "ann", "model_b")
    # two clicks at the same moment: one lands, the other gets the message
    view = arena.open_pair(store, "ann", models=MODELS, reply=reply)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def click() -> None:
        barrier.wait()
        try:
            arena.vote(store, view.item_id, "ann", "tie")
            outcomes.append("ok")
        except RpEvalError as err:
            outcomes.append(str(err))

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1 and all("already judged" in o for o in outcomes if o != "ok")
    votes = load_votes(store)
    assert len(votes) == 2 and votes["winner"].tolist() == ["model_a", "tie"]


def test_bad_input_gets_a_message_and_stores_nothing(store, reply):
    view = arena.open_pair(store, "ann", models=MODELS, reply=reply)
    with pytest.raises(RpEvalError, match="no longer exists"):
        arena.vote(store, "0" * 32, "ann", "model_a")
    table.delete_item(store, view.item_id)
    with pytest.raises(RpEvalError, match="no longer exists"):
        arena.vote(store, view.item_id, "ann", "model_a")
    view = arena.open_pair(store, "ann", models=MODELS, reply=reply)
    with pytest.raises(RpEvalError, match="type your name"):
        arena.vote(store, view.item_id, "   ", "model_a")
    with pytest.raises(RpEvalError, match="one of"):
        arena.vote(store, view.item_id, "ann", "model_c")
    with pytest.raises(RpEvalError, match="type your name"):
        arena.open_pair(store, "", models=MODELS, reply=reply)
    with pytest.raises(RpEvalError, match="two registered models"):
        arena.open_pair(store, "ann", models=["solo"], reply=reply)
    single = arena.open_single(store, "ann", models=MODELS, reply=reply)
    for bad, pattern in [
        ({**GOOD, "overall": 6}, "from 1 to 5"),
        ({**GOOD, "overall": 0}, "from 1 to 5"),
        ({**GOOD, "overall": 2.5}, "from 1 to 5"),
        ({k: v for k, v in GOOD.items() if k != "naturalness"}, "naturalness"),
        ({**GOOD, "humour": 3}, "unknown rating axis"),
    ]:
        with pytest.raises(RpEvalError, match=pattern):
            arena.score(store, single.item_id, "ann", bad)
    with pytest.raises(RpEvalError, match="vote A, B"):
        arena.score(store, view.item_id, "ann", GOOD)
    with pytest.raises(RpEvalError, match="not a vote"):
        arena.vote(store, single.item_id, "ann", "tie")
    assert table.count_rows(store)["votes"] == table.count_rows(store)["scores"] == 0
    # the open items are still there and can be judged afterwards
    arena.vote(store, view.item_id, "ann", "model_b")
    reveal = arena.score(store, single.item_id, "ann", GOOD, "  ok  ")
    assert reveal.models[0] in MODELS
    scores = load_scores(store)
    assert scores.loc[0, "comment"] == "ok" and scores.loc[0, "overall"] == 4


def test_multi_turn_pair_keeps_both_sides_and_finish_reasons(store, reply):
    view = arena.open_pair(store, "ann", persona_id="samurai", message="雨ですね", models=MODELS, reply=reply)
    assert view.persona_name and view.greeting and len(view.turns) == 1
    view = arena.continue_item(store, view.item_id, "団子はお好きですか？", reply=reply)
    assert [t[0] for t in view.turns] == ["雨ですね", "団子はお好きですか？"]
    reveal = arena.vote(store, view.item_id, "ann", "model_a")
    row = load_votes(store).iloc[0]
    assert row["turns"] == 2 and row["persona_id"] == "samurai" and row["prompt"] == "雨ですね"
    assert row["finish_a"] == ["eos", "eos"] and [row["model_a"], row["model_b"]] == reveal.models
    assert row["conversation_a"][0]["role"] == "system" and row["conversation_a"][-1]["role"] == "assistant"
    with pytest.raises(RpEvalError, match="already judged"):
        arena.continue_item(store, view.item_id, "もう一言", reply=reply)
    with pytest.raises(RpEvalError, match="unknown persona"):
        arena.open_pair(store, "ann", persona_id="nobody", models=MODELS, reply=reply)


def test_filters_by_persona_rater_and_date(store, reply):
    for rater, persona in [("ann", "samurai"), ("bob", "samurai"), ("bob", "butler"), ("cy", "butler")]:
        view = arena.open_pair(store, rater, persona_id=persona, models=MODELS, reply=reply)
        arena.vote(store, view.item_id, rater, "model_a")
    assert len(load_votes(store, RatingFilter(persona="samurai"))) == 2
    assert set(load_votes(store, RatingFilter(rater="bob"))["persona_id"]) == {"samurai", "butler"}
    assert set(load_votes(store, RatingFilter(exclude_raters=("bob", "cy")))["rater"]) == {"ann"}
    now = datetime.now(UTC)
    assert len(load_votes(store, RatingFilter(since=now - timedelta(minutes=5)))) == 4
    assert len(load_votes(store, RatingFilter(until=now - timedelta(minutes=5)))) == 0
    assert table.raters(store) == ["ann", "bob", "cy"]
    assert table.personas_rated(store) == ["butler", "samurai"]


def test_stored_replies_and_repeats_for_agreement(store, reply):
    conversation = [{"role": "user", "content": "おはよう"}, {"role": "assistant", "content": "おはようでござる。"}]
    view = arena.open_stored(store, "ann", "m-one", conversation, "eos", "eval_reply", "17")
    arena.score(store, view.item_id, "ann", GOOD)
    # a reply of a stored chat is repeated only to its owner: turn 18 is in no conversation of bob's
    private = arena.open_stored(store, "ann", "m-two", conversation, "eos", "chat_turn", "18")
    arena.score(store, private.item_id, "ann", GOOD)
    assert arena.open_repeat(store, "ann", "") is None  # nothing ann has not scored
    again = arena.open_repeat(store, "bob", "")
    assert again.turns == [("おはよう", "おはようでござる。")]
    arena.score(store, again.item_id, "bob", {**GOOD, "overall": 2})
    scores = load_scores(store)
    assert scores["item_key"].nunique() == 2 and set(scores["source_kind"]) == {"eval_reply", "chat_turn"}
    assert sorted(scores["source_id"]) == ["17", "17", "18"]
    assert arena.open_repeat(store, "cy", "") is None  # two raters are enough
    with pytest.raises(RpEvalError, match="assistant"):
        arena.open_stored(store, "ann", "m-one", conversation[:1])


def test_hub_sync_is_off_by_default_and_snapshots_before_each_push(store, reply, monkeypatch):
    from rp_eval.ratings import hub_sync

    monkeypatch.delenv("RP_EVAL_RATINGS_HUB_REPO", raising=False)
    assert hub_sync.start_from_env() is None
    pushed: list[int] = []

    class FakeScheduler:  # CommitScheduler's interface, without a hub
        def __init__(self, *, repo_id, folder_path, every, repo_type, path_in_repo):
            assert repo_type == "dataset" and repo_id == "lab/ratings"
            self.folder, self.lock = folder_path, threading.Lock()

        def push_to_hub(self):
            pushed.append(len((self.folder / "votes.jsonl").read_text().splitlines()))

    scheduler = hub_sync.start("lab/ratings", 5, store, FakeScheduler)
    view = arena.open_pair(store, "ann", models=MODELS, reply=reply)
    arena.vote(store, view.item_id, "ann", "tie")
    scheduler.push_to_hub()
    view = arena.open_pair(store, "ann", models=MODELS, reply=reply)
    arena.vote(store, view.item_id, "ann", "model_a")
    scheduler.push_to_hub()
    assert pushed == [1, 2]
    assert hub_sync.start("lab/ratings", 5, store, FakeScheduler) is scheduler
    hub_sync._started.clear()


def test_stored_chat_turns_can_be_scored_with_their_context(store):
    from rp_eval.store import chat

    conv = chat.new_conversation(store, "samurai", {"name": "源之丞"}, ["m-one", "m-two"], "あなたは源之丞です。")
    chat.add_turn(store, conv.id, "assistant", "雨宿りでござるか。")
    chat.add_turn(store, conv.id, "user", "団子、おいしそうですね。")
    chat.add_turn(store, conv.id, "assistant", "一皿いかがでござる。", side="a", model="m-one", finish_reason="eos")
    chat.add_turn(store, conv.id, "assistant", "ほかの返事。", side="b", model="m-two", finish_reason="length")
    seen = set()
    for _ in range(2):
        view = arena.open_chat_turn(store, "ann", "")
        assert view.greeting == "雨宿りでござるか。" and view.persona_name == "源之丞"
        assert len(view.turns) == 1 and view.turns[0][0] == "団子、おいしそうですね。"
        seen.add(view.turns[0][1])
        arena.score(store, view.item_id, "ann", GOOD)
    assert seen == {"一皿いかがでござる。", "ほかの返事。"}  # the other side's reply is not in the context
    assert arena.open_chat_turn(store, "ann", "") is None  # ann scored both
    assert arena.open_chat_turn(store, "bob", "") is not None
    scores = load_scores(store)
    assert set(scores["source_kind"]) == {"chat_turn"} and set(scores["model"]) == {"m-one", "m-two"}
    assert scores.set_index("model").loc["m-two", "finish_reason"] == "length"


def test_evaluation_outputs_can_be_scored_with_their_task_item(store):
    from rp_eval.evaluate.task import load_task
    from rp_eval.store import evaluation

    task = load_task()
    item = task.items[0]
    run = evaluation.open_run(store, "k1", "m-one", task.version, {})
    evaluation.add_replies(
        store,
        run.id,
        [
            dict(item_id=item.id, text="承知した。", finish_reason="eos"),
            dict(item_id="no-such-item", text="", finish_reason="eos"),
        ],
    )
    view = arena.open_eval_reply(store, "ann")
    persona = task.personas[item.persona]
    assert view.persona_name == persona.name and view.turns[-1][1] == "承知した。"
    assert view.turns[-1][0] == item.turns[-1].content  # the item's last user line is what the reply answered
    arena.score(store, view.item_id, "ann", GOOD)
    assert arena.open_eval_reply(store, "ann") is None  # the empty reply is never offered; ann scored the other
    scores = load_scores(store)
    assert list(scores["source_kind"]) == ["eval_reply"] and list(scores["model"]) == ["m-one"]
