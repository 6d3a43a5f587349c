"""Chat choices stored as preferences: a kept alternative, Stop then Regenerate, an edit, a side picked; the
setting that turns it off; owners see and delete only their own rows."""

from __future__ import annotations

import pytest

from rp_eval.chat import session
from rp_eval.chat.generate import GenerationSettings
from rp_eval.chat.personas import load_personas
from rp_eval.store import chat as chat_store
from rp_eval.store import preferences as prefs

GREEDY = GenerationSettings(max_new_tokens=12, temperature=0.0)


def sampled(seed: int) -> GenerationSettings:
    return GenerationSettings(max_new_tokens=12, temperature=1.0, seed=seed)


def _two_alternatives(store, cache, owner="mika"):
    conv = session.start(store, load_personas()["sage"], ["tiny-llama"], owner=owner)
    list(session.reply(store, conv, "弟子にしてください。", sampled(1), cache))
    list(session.reply(store, conv, None, sampled(2), cache))
    first, second = chat_store.alternatives(store, chat_store.turns(store, conv)[-1].id)
    assert first.content != second.content  # two seeds, two different replies (else no choice was made)
    return conv, first, second


def test_a_kept_alternative_becomes_one_preference(store, tiny_cache):
    conv, first, second = _two_alternatives(store, tiny_cache)
    assert prefs.list_preferences(store, None) == []  # regenerating alone is no choice yet
    session.flip(store, conv, -1)  # back to the first reply, then go on with it
    list(session.reply(store, conv, "では修行を始めます。", GREEDY, tiny_cache))
    [row] = prefs.list_preferences(store, "mika")
    assert (row.kind, row.chosen_turn, row.rejected_turn) == ("kept", first.id, second.id)
    assert (row.chosen, row.rejected, row.position) == (first.content, second.content, 1)
    assert row.chosen_model == row.rejected_model == "tiny-llama" and not row.between_models

    # undo and send again from the same choice: still one row; flip to the other reply and go on: it replaces it
    session.undo(store, conv)
    list(session.reply(store, conv, "では修行を始めます。", GREEDY, tiny_cache))
    assert len(prefs.list_preferences(store, None)) == 1
    session.undo(store, conv)
    session.flip(store, conv, 1)
    list(session.reply(store, conv, "やはりこちらで。", GREEDY, tiny_cache))
    [row] = prefs.list_preferences(store, None)
    assert (row.chosen_turn, row.rejected_turn) == (second.id, first.id)


def test_stop_then_regenerate_is_recorded_as_such(store, tiny_cache):
    conv = session.start(store, load_personas()["sage"], ["tiny-llama"], owner="ken")
    replies = session.reply(store, conv, "教えてください。", GenerationSettings(max_new_tokens=50), tiny_cache)
    next(replies), next(replies), next(replies)
    replies.close()
    stopped = chat_store.turns(store, conv)[-1]
    assert stopped.finish_reason == "stopped"
    list(session.reply(store, conv, None, sampled(5), tiny_cache))
    new = chat_store.turns(store, conv)[-1]
    [row] = prefs.list_preferences(store, "ken")
    assert (row.kind, row.chosen_turn, row.rejected_turn) == ("stopped", new.id, stopped.id)
    # going on with the new reply says the same again: the row stays one, of its first kind
    list(session.reply(store, conv, "続けて。", GREEDY, tiny_cache))
    assert [(r.kind, r.chosen_turn) for r in prefs.list_preferences(store, None)] == [("stopped", new.id)]


def test_an_edited_reply_is_preferred_over_the_models_text(store, tiny_cache):
    conv = session.start(store, load_personas()["sage"], ["tiny-llama"])
    list(session.reply(store, conv, "こんにちは。", GREEDY, tiny_cache))
    user, reply = chat_store.turns(store, conv)[-2:]
    original = reply.content
    session.edit(store, conv, reply.id, "ようこそ、わが庵へ。")
    session.edit(store, conv, reply.id, "ようこそ、わが庵へ。茶でもどうじゃ。")
    session.edit(store, conv, user.id, "こんにちは、お師匠様。")  # the person's own message: no preference
    [row] = prefs.list_preferences(store, None)
    assert (row.kind, row.chosen_turn, row.rejected_turn) == ("edit", reply.id, None)
    assert (row.chosen, row.rejected) == ("ようこそ、わが庵へ。茶でもどうじゃ。", original)


def test_a_side_picked_is_a_preference_between_models(store, tiny_cache):
    conv = session.start(store, load_personas()["detective"], ["tiny-llama", "tiny-mistral"], owner="aoi")
    with pytest.raises(session.ChatError) as err:  # nothing answered yet
        session.prefer_side(store, conv, "a")
    assert err.value.key == "err_pref_no_pair"
    list(session.reply(store, conv, "事件です。", GREEDY, tiny_cache))
    session.prefer_side(store, conv, "b", owner="aoi")
    [row] = prefs.list_preferences(store, "aoi")
    assert (row.kind, row.side, row.chosen_model, row.rejected_model) == ("side", "b", "tiny-mistral", "tiny-llama")
    assert row.between_models
    session.prefer_side(store, conv, "a", owner="aoi")  # changed their mind: the latest pick counts, once
    [row] = prefs.list_preferences(store, "aoi")
    assert (row.side, row.chosen_model) == ("a", "tiny-llama")
    with pytest.raises(session.ChatError):  # someone else's conversation
        session.prefer_side(store, conv, "a", owner="mallory")
    alone = session.start(store, load_personas()["detective"], ["tiny-llama"])
    list(session.reply(store, alone, "事件です。", GREEDY, tiny_cache))
    with pytest.raises(session.ChatError, match="no pair of replies"):
        session.prefer_side(store, alone, "a")


def test_the_setting_turns_it_off(store, tiny_cache, monkeypatch):
    monkeypatch.setenv("RP_EVAL_CHAT_PREFERENCES", "false")
    conv, _, _ = _two_alternatives(store, tiny_cache)
    list(session.reply(store, conv, "続きを。", GREEDY, tiny_cache))
    session.edit(store, conv, chat_store.turns(store, conv)[-1].id, "書き直しました。")
    assert prefs.list_preferences(store, None) == [] and prefs.count_preferences(store) == {}


def test_owners_see_and_delete_only_their_own(store):
    rows = [
        prefs.PreferenceRow(conversation_id=1, kind="side", owner=o, chosen_turn=10 + i, rejected_turn=20 + i)
        for i, o in enumerate(["mika", "mika", "ken"])
    ]
    prefs.record(store, rows)
    mine = prefs.list_preferences(store, "mika")
    assert [r.owner for r in mine] == ["mika", "mika"]
    ken = prefs.list_preferences(store, "ken")[0].id
    assert prefs.delete_preferences(store, [ken, mine[0].id], owner="mika") == 1  # ken's row is not theirs
    assert [r.id for r in prefs.list_preferences(store, None)] == [ken, mine[1].id]
    assert prefs.delete_preferences(store, [mine[0].id], owner="mika") == 0  # already gone
    assert prefs.count_preferences(store) == {"side": 2}
