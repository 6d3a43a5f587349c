"""The library side of a chat: the prompt for each format, stored turns, regenerate, undo, stop, failures."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from rp_eval.chat import session
from rp_eval.chat.formats import FORMATS, render_prompt
from rp_eval.chat.generate import GenerationSettings
from rp_eval.chat.personas import load_personas
from rp_eval.store import chat as chat_store

SETTINGS = GenerationSettings(max_new_tokens=12, temperature=0.0)


@pytest.mark.parametrize("fmt_name", list(FORMATS))
def test_prompt_for_each_format(fmt_name, tokenizer):
    persona = load_personas()["butler"]
    loaded = SimpleNamespace(format=FORMATS[fmt_name], tokenizer=tokenizer)
    messages = [*persona.opening("美咲"), {"role": "user", "content": "紅茶をお願いします。"}]
    prompt = session.prompt_text(loaded, messages, persona.name, "美咲")
    system = persona.system_text("美咲")
    greeting = persona.greeting("美咲")
    assert system in prompt and greeting in prompt and prompt.index(greeting) < prompt.index("紅茶をお願いします。")
    assert "{{" not in prompt
    cue = session.OPENING_CUE.format(user="美咲", char=persona.name)
    if fmt_name == "chatml":  # a turn may start with the character: the prompt is the plain rendering
        assert cue not in prompt and prompt == render_prompt(FORMATS["chatml"], tokenizer, messages)
        assert prompt.endswith("<|im_start|>assistant\n")
    else:  # the character's line follows a stage direction, so the turns alternate as the format expects
        assert prompt.index(cue) < prompt.index(greeting)
    if fmt_name in ("llama2", "template"):
        assert prompt.startswith("<s>[INST] <<SYS>>") and prompt.endswith("紅茶をお願いします。 [/INST]")
    if fmt_name == "alpaca-ja":
        assert prompt.rstrip().endswith("### 応答:")


def test_a_side_by_side_turn_is_stored(store, tiny_cache):
    persona = load_personas()["detective"]
    conv = session.start(store, persona, ["tiny-llama", "tiny-mistral"], user="健")
    lengths = [
        tuple((r.done, len(r.text)) for r in step) for step in session.reply(store, conv, "猫", SETTINGS, tiny_cache)
    ]
    # both advanced together: a step where neither side was done yet, and both had produced some text
    assert any(not a[0] and not b[0] for a, b in lengths[1:]), lengths
    assert any(a[1] and b[1] and not (a[0] or b[0]) for a, b in lengths), lengths
    conv = session.start(store, persona, ["tiny-llama", "tiny-mistral"], user="健")
    steps = [list(step) for step in session.reply(store, conv, "猫を探しています。", SETTINGS, cache=tiny_cache)]
    final = steps[-1]
    assert [r.model for r in final] == ["tiny-llama", "tiny-mistral"] and all(r.result for r in final)
    # both streamed together: there is a step where both sides had text and neither was done
    assert len(steps) > 2
    turns = chat_store.turns(store, conv)
    assert [(t.role, t.side) for t in turns] == [
        ("assistant", ""),
        ("user", ""),
        ("assistant", "a"),
        ("assistant", "b"),
    ]
    for turn, r in zip(turns[2:], final, strict=True):
        assert turn.model == r.model and turn.content == r.result.text and turn.raw_text == r.result.raw_text
        assert turn.finish_reason == r.result.finish_reason and turn.new_tokens == r.result.new_tokens
        assert turn.prompt == r.result.prompt and "猫を探しています。" in turn.prompt and persona.name in turn.prompt
        assert turn.settings["max_new_tokens"] == 12 and "\n健:" in turn.settings["stop_strings"]
        assert turn.seconds > 0 and turn.id == r.turn_id
    # each side's history holds only its own replies
    a = session.side_messages(store, conv, "a")
    assert a[-1]["content"] == final[0].result.text and all(m["content"] != final[1].result.text for m in a[3:])
    lines = [json.loads(x) for x in chat_store.export_jsonl(store, conv).splitlines()]
    assert lines[0]["persona_id"] == "detective" and lines[0]["models"] == ["tiny-llama", "tiny-mistral"]
    assert [x["finish_reason"] for x in lines[1:]] == ["", "", turns[2].finish_reason, turns[3].finish_reason]
    assert session.finish_words(turns[2]).startswith(session.FINISH_WORDS[turns[2].finish_reason])


def test_regenerate_undo_and_stop(store, tiny_cache):
    persona = load_personas()["sage"]
    conv = session.start(store, persona, ["tiny-llama"])
    list(session.reply(store, conv, "弟子にしてください。", SETTINGS, cache=tiny_cache))
    first = chat_store.turns(store, conv)[-1]
    list(session.reply(store, conv, None, SETTINGS.model_copy(update={"seed": 3, "temperature": 1.0}), tiny_cache))
    live = chat_store.turns(store, conv)
    assert [t.role for t in live] == ["assistant", "user", "assistant"] and live[-1].id != first.id
    assert first.id in [t.id for t in chat_store.turns(store, conv, include_discarded=True) if t.discarded]

    # Stop: closing the stream half way stores what was shown, marked "stopped"
    replies = session.reply(store, conv, "もう一度お願いします。", GenerationSettings(max_new_tokens=50), tiny_cache)
    next(replies), next(replies)
    replies.close()
    stopped = chat_store.turns(store, conv)[-1]
    assert stopped.finish_reason == "stopped" and stopped.role == "assistant"

    session.undo(store, conv)
    assert [t.role for t in chat_store.turns(store, conv)] == ["assistant", "user", "assistant"]
    session.undo(store, conv)
    assert [t.role for t in chat_store.turns(store, conv)] == ["assistant"]
    with pytest.raises(session.ChatError, match="nothing to undo"):
        session.undo(store, conv)


def test_bad_requests_keep_the_chat(store, tiny_cache):
    persona = load_personas()["tohoku"]
    conv = session.start(store, persona, ["tiny-llama", "broken"])
    with pytest.raises(session.ChatError, match="empty"):
        list(session.reply(store, conv, "   ", SETTINGS, tiny_cache))
    final = list(session.reply(store, conv, "りんごください。", SETTINGS, tiny_cache))[-1]
    assert final[0].result is not None and "could not load 'broken'" in str(final[1].error)
    assert final[1].error.key == "err_chat_side_failed" and final[1].error.values["model"] == "broken"
    turns = chat_store.turns(store, conv)  # the side that failed stores nothing
    assert [(t.finish_reason, t.side) for t in turns] == [("", ""), ("", ""), (final[0].result.finish_reason, "a")]
    with pytest.raises(session.ChatError, match="choose a model"):
        session.start(store, persona, [""])

    # every side fails: nothing at all is stored, not even the message
    alone = session.start(store, persona, ["broken"])
    with pytest.raises(session.ChatError, match="could not load 'broken'"):
        list(session.reply(store, alone, "みかんください。", SETTINGS, tiny_cache))
    assert [t.role for t in chat_store.turns(store, alone, include_discarded=True)] == ["assistant"]


def test_a_request_that_fails_half_way_stores_nothing(store, tiny_cache, monkeypatch):
    persona = load_personas()["tohoku"]
    conv = session.start(store, persona, ["tiny-llama"])

    def broken_stream(*args, **kwargs):
        yield "りん"
        raise OverflowError("Overflow when unpacking long long")

    monkeypatch.setattr(session, "stream", broken_stream)
    with pytest.raises(OverflowError):
        list(session.reply(store, conv, "りんごください。", SETTINGS, tiny_cache))
    assert [t.role for t in chat_store.turns(store, conv, include_discarded=True)] == ["assistant"]


def test_oversized_or_broken_upload_gets_a_message(workspace, tmp_path, monkeypatch):
    from rp_eval.chat.cards import MAX_CARD_BYTES
    from rp_eval.ui import chat_tab

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # the files below stand for uploads

    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (MAX_CARD_BYTES + 10))
    _, message = chat_tab.import_card(str(big))
    assert message.startswith("⚠️") and "up to 5 MB" in message
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    _, message = chat_tab.import_card(str(bad))
    assert "bad.json: the card is not valid JSON" in message
    good = tmp_path / "good.json"
    good.write_text('{"name": "小春", "first_mes": "やっほー！"}', encoding="utf-8")
    update, message = chat_tab.import_card(str(good))
    assert update["value"] == "小春" and "小春" in message
    assert "小春" in session.personas(chat_tab.get_store())
    exported = chat_tab.export_card("小春", as_png=False)
    assert json.loads(Path(exported).read_text(encoding="utf-8"))["data"]["first_mes"] == "やっほー！"
