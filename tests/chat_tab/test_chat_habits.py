"""What users bring from SillyTavern and text-generation-webui: another model mid-chat, swipes, edits, alternate
greetings, min_p, stop strings, presets, unloading; numbers checked before use; failures store nothing."""

from __future__ import annotations

import pytest

from rp_eval.chat import session
from rp_eval.chat.generate import GenerationSettings, generate
from rp_eval.chat.personas import load_personas
from rp_eval.chat.presets import PRESETS
from rp_eval.store import chat as chat_store
from rp_eval.ui import chat_actions

SETTINGS = GenerationSettings(max_new_tokens=8, temperature=0.0)


def _ask(store, conv, text, cache, settings=SETTINGS):
    return list(session.reply(store, conv, text, settings, cache))[-1]


def test_another_model_goes_on_with_the_same_conversation(store, tiny_cache):
    persona = load_personas()["butler"]
    conv = session.start(store, persona, ["tiny-llama"], user="美咲")
    _ask(store, conv, "紅茶をお願いします。", tiny_cache)
    session.switch_models(store, conv, ["tiny-mistral"])
    final = _ask(store, conv, "ミルクも。", tiny_cache)
    turns = chat_store.turns(store, conv)
    assert [t.role for t in turns] == ["assistant", "user", "assistant", "user", "assistant"]
    assert [t.model for t in turns if t.role == "assistant"][1:] == ["tiny-llama", "tiny-mistral"]
    # the second model saw the first one's reply: one conversation, not a restart
    assert turns[2].content in final[0].result.prompt and "紅茶をお願いします。" in final[0].result.prompt
    assert chat_store.get_conversation(store, conv, chat_store.EVERYONE).models == ["tiny-mistral"]
    with pytest.raises(session.ChatError, match="choose a model"):
        session.switch_models(store, conv, ["tiny-llama", "tiny-mistral"])  # a side can not be added mid-chat


def test_regenerate_keeps_alternatives_and_the_chosen_one_is_what_the_next_turn_sees(store, tiny_cache):
    persona = load_personas()["sage"]
    conv = session.start(store, persona, ["tiny-llama"])
    _ask(store, conv, "弟子にしてください。", tiny_cache)
    first = chat_store.turns(store, conv)[-1]
    for seed in (1, 2):
        hot = GenerationSettings(max_new_tokens=8, temperature=1.5, seed=seed)
        _ask(store, conv, None, tiny_cache, hot)
    third = chat_store.turns(store, conv)[-1]
    assert session.alternatives(store, conv) == (2, 3)
    group = chat_store.alternatives(store, third.id)
    assert [t.id for t in group][0] == first.id and len(group) == 3

    session.flip(store, conv, -1)
    session.flip(store, conv, -1)
    assert session.alternatives(store, conv) == (0, 3)
    assert chat_store.turns(store, conv)[-1].id == first.id  # the chosen one is stored as chosen
    with pytest.raises(session.ChatError, match="no other reply"):
        session.flip(store, conv, -1)
    final = _ask(store, conv, "次は何を？", tiny_cache)
    assert first.content in final[0].result.prompt and (
        third.content not in final[0].result.prompt or not third.content
    )
    exported = chat_store.export_jsonl(store, conv)
    assert exported.count('"role": "assistant"') == 3  # greeting, chosen reply, new reply


def test_editing_a_message_changes_what_the_model_sees_and_logs_the_old_text(store, tiny_cache):
    persona = load_personas()["detective"]
    conv = session.start(store, persona, ["tiny-llama"])
    _ask(store, conv, "猫を探しています。", tiny_cache)
    user_turn = chat_store.turns(store, conv)[1]
    session.edit(store, conv, user_turn.id, "犬を探しています。")
    final = _ask(store, conv, "茶色です。", tiny_cache)
    assert "犬を探しています。" in final[0].result.prompt and "猫を探しています。" not in final[0].result.prompt
    assert [(e.before, e.after) for e in chat_store.edits(store, user_turn.id)] == [
        ("猫を探しています。", "犬を探しています。")
    ]
    with pytest.raises(session.ChatError, match="can not be empty"):
        session.edit(store, conv, user_turn.id, "  ")
    with pytest.raises(session.ChatError, match="no longer"):
        session.edit(store, conv, 99999, "x")


def test_an_alternate_greeting_opens_the_chat(store):
    persona = load_personas()["kansai"].model_copy(update={"alternate_greetings": ["{{user}}、今日は早いなあ！"]})
    conv = session.start(store, persona, ["tiny-llama"], user="湊", greeting=1)
    assert chat_store.turns(store, conv)[0].content == "湊、今日は早いなあ！"


def test_min_p_and_custom_stop_strings(tiny_cache):
    loaded = tiny_cache.get("tiny-llama")
    messages = [{"role": "user", "content": "こんにちは"}]
    # min_p = 1 keeps only the most likely token: sampling at any temperature is greedy
    greedy = generate(loaded.model, loaded.tokenizer, loaded.format, messages, SETTINGS)
    for seed in (0, 1):
        hot = GenerationSettings(max_new_tokens=8, temperature=2.0, min_p=1.0, seed=seed)
        assert generate(loaded.model, loaded.tokenizer, loaded.format, messages, hot).text == greedy.text
    # a custom stop string cuts the reply where it appears
    assert len(greedy.text) >= 3
    stop = greedy.text[2:4]
    cut = generate(
        loaded.model, loaded.tokenizer, loaded.format, messages, SETTINGS.model_copy(update={"stop_strings": (stop,)})
    )
    assert cut.finish_reason == "stop_string" and stop not in cut.text and greedy.text.startswith(cut.text)


def _panel() -> dict:
    """The sampling panel's sliders at the default preset, as the page sends them."""
    return {name: getattr(PRESETS["balanced"], name) for name in chat_actions.SAMPLER_FIELDS}


def _sampling(**values) -> tuple:
    """The sampling panel's inputs in the order the page passes them (`chat_actions.FORM`)."""
    form = {**_panel(), "max_new_tokens": 64, "seed": -1, "stops": "", **values}
    return tuple(form[name] for name in chat_actions.FORM)


def test_presets_and_settings_from_the_form():
    assert set(PRESETS) >= {"balanced", "greedy", "creative", "min_p"}
    assert chat_actions.preset("greedy")[0] == 0.0
    form = {**_panel(), "min_p": 0.05, "max_new_tokens": 64, "seed": -1}
    built = chat_actions.settings(**form, stops="END\n\\n###")
    assert built.min_p == 0.05 and built.seed is None and built.stop_strings == ("END", "\n###")
    assert chat_actions.settings(**{**form, "seed": 42.0}, stops="").seed == 42


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"seed": 1e30}, "Seed: 1e+30 is outside the allowed range"),
        ({"seed": 2.5}, "Seed: 2.5 is not a whole number"),
        ({"seed": None}, "Seed: enter a number"),
        ({"temperature": float("nan")}, "Temperature: nan is outside"),
        ({"top_p": 0}, "Top-p: 0 is outside"),
        ({"max_new_tokens": 0}, "Max new tokens: 0 is outside"),
        ({"min_p": 2}, "Min-p: 2 is outside"),
        ({"top_k": "lots"}, "Top-k: enter a number"),
        ({"stops": "x\n" * 20}, "Stop strings: at most 16"),
    ],
)
def test_every_number_is_checked_with_the_fields_name(values, message):
    form = {**_panel(), "max_new_tokens": 64, "seed": -1, "stops": ""}
    with pytest.raises(session.ChatError) as err:
        chat_actions.settings(**{**form, **values})
    assert message in str(err.value)


def test_unload_drops_the_model_from_memory(monkeypatch):
    from rp_eval.models import loading

    class Cache:
        def __init__(self):
            self.keys = ["demo-a|none"]

        def names(self):
            return list(self.keys)

        def drop(self, name):
            self.keys = [k for k in self.keys if k.split("|")[0] != name]

    cache = Cache()
    monkeypatch.setattr(loading, "model_cache", lambda: cache)
    assert "Unloaded **demo-a**" in chat_actions.unload("demo-a", None, False)
    assert cache.keys == []
    assert "was not in memory" in chat_actions.unload("demo-a", None, False)


def _respond(message, seed=-1, conv_id=None):
    from rp_eval.ui import chat_tab

    sampling = _sampling(max_new_tokens=16, seed=seed)
    form = (conv_id, "kansai", "tiny-llama", None, False, "湊", "システム", 0, "auto", False)
    return list(chat_tab.respond(message, *form, *sampling))


def test_the_status_never_sticks_and_a_failed_request_stores_nothing(store, monkeypatch):
    # a seed out of range: the field named, nothing stored (not even a conversation), the text back in the box
    steps = _respond("こんにちは", seed=1e30)
    *_, conv_id, box, status, _ = steps[-1]
    assert "Seed: 1e+30 is outside the allowed range" in status and conv_id is None
    assert chat_store.list_conversations(store, chat_store.EVERYONE) == []

    # an unforeseen failure half way: a message naming its kind, the status not left on "Generating…"
    def failing_reply(*args, **kwargs):
        yield [session.Reply("a", "tiny-llama", text="途中")]
        raise OverflowError("Overflow when unpacking long long")

    monkeypatch.setattr(session, "reply", failing_reply)
    steps = _respond("こんにちは")
    *_, conv_id, box, status, _ = steps[-1]
    assert "Generating" in steps[-2][4] and "Generating" not in status
    assert "the request failed (OverflowError); nothing was stored" in status and box == "こんにちは"
    assert (
        conv_id is None and chat_store.list_conversations(store, chat_store.EVERYONE) == []
    )  # not even the new chat's opening


def _wait_for_stop(home: str, conv_id: int, seen) -> None:
    """Another process (as a ZeroGPU call is): waits until the conversation's Stop is visible there."""
    import os
    import time

    os.environ["RP_EVAL_HOME"] = home
    from rp_eval.ui import chat_actions as act

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if act.stop_requested(conv_id):
            seen.set()
            return
        time.sleep(0.02)


def test_stop_reaches_the_reply_even_from_another_process(store, monkeypatch):
    """Stop marks the conversation where every process of the app sees it: on a ZeroGPU Space the reply runs
    under `spaces.GPU` in another process than the Stop button's handler."""
    import multiprocessing
    import os

    from rp_eval.ui import chat_tab

    closed, shown = [], []

    def endless(*args, **kwargs):  # a reply that would go on for ever
        try:
            n = 0
            while True:
                n += 1
                shown.append(n)
                yield [session.Reply("a", "tiny-llama", text="あ" * n)]
        finally:
            closed.append(n)

    monkeypatch.setattr(session, "reply", endless)
    sampling = _sampling(max_new_tokens=16, seed=1)
    form = (None, "kansai", "tiny-llama", None, False, "湊", "システム", 0, "auto", False)
    steps = chat_tab.respond("こんにちは", *form, *sampling)
    conv_id = next(steps)[2]
    next(steps)
    context = multiprocessing.get_context("spawn")
    seen = context.Event()
    child = context.Process(target=_wait_for_stop, args=(os.environ["RP_EVAL_HOME"], conv_id, seen))
    child.start()
    chat_actions.stop(conv_id)
    rest = list(steps)  # ends by itself now
    child.join(60)
    assert seen.is_set(), "the Stop was not visible in another process"
    assert closed == [2] and len(rest) == 1  # no step after the press: only the final state
    assert "Generating" not in rest[-1][4]
    # the next message starts with no Stop left over
    steps = chat_tab.respond("もう一度", conv_id, *form[1:], *sampling)
    for _ in range(5):
        next(steps)
    steps.close()
    assert not chat_actions.stop_requested(conv_id) and closed[-1] == 5

    # a Stop for a conversation that does not exist (or is not this person's) marks nothing
    chat_actions.stop(987654)
    assert not chat_actions.stop_requested(987654)
