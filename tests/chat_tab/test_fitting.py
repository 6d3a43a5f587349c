"""A SillyTavern V2 card longer than the model's context: example dialogues go first, then lorebook entries (lowest
rank first), then the oldest turns; only a card whose system prompt alone does not fit is refused.

The card (tests/data/cards/yuzuha_v2.json) is shaped like SillyTavern's default one: a long description, four
example dialogues and a lorebook of long entries; on the demo models' tokenizer its description is 465 tokens,
the examples 444, the entries 357 / 355 / 287 against a book budget of 800.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rp_eval.chat import fitting, session
from rp_eval.chat.cards import card_to_persona, read_card_file
from rp_eval.chat.generate import GenerationSettings
from rp_eval.store import chat as chat_store
from rp_eval.ui import chat_actions
from rp_eval.ui.locale import error_text, in_language
from tests.chat_tab.conftest import TinyCache

CARD = Path(__file__).resolve().parents[1] / "data" / "cards" / "yuzuha_v2.json"
ASK = "町の霧祭りの日も、この店で本を読んでいるの？"  # calls up all three entries: 町, 祭り, 本 / 店


@pytest.fixture(scope="module")
def demo_cache(demo_build):
    folder = demo_build / "models" / "demo" / "demo-llama-a"
    return TinyCache({"demo-llama-a": (folder, "llama2")})


@pytest.fixture(scope="module")
def persona():
    return card_to_persona(read_card_file(CARD))


def _messages(persona, turns: int = 0) -> list[dict]:
    out = persona.opening("湊")
    for i in range(turns):
        out += [{"role": "user", "content": f"昨日の話の続き、その{i}。"}, {"role": "assistant", "content": "ええ。"}]
    return [*out, {"role": "user", "content": ASK}]


def _fit(demo_cache, persona, max_new: int, turns: int = 0) -> fitting.Fitted:
    loaded = demo_cache.get("demo-llama-a")
    messages = _messages(persona, turns)
    return session.fit(
        loaded, messages, max_new, persona.character_book, persona.name, "湊", persona.example_blocks("湊")
    )


def test_the_drop_order_examples_then_lore_lowest_rank_first_then_turns(demo_cache, persona):
    loaded = demo_cache.get("demo-llama-a")
    whole = _fit(demo_cache, persona, 16)  # room for everything
    assert not whole.left_out and whole.lore == ["灯文堂", "朝霧町"]  # in the prompt by insertion order, lowest first
    assert whole.over_budget == ["霧祭り"] and whole.budget == 800  # matched, but 357 + 355 + 287 > 800
    assert "昭和二十五年" in whole.prompt and "【会話の例】" in whole.prompt
    seen = []
    for max_new in range(16, 2048, 24):  # a smaller room each time: what goes follows the order, never skipping
        try:
            f = _fit(demo_cache, persona, max_new, turns=3)
        except fitting.CardTooLong as err:
            assert err.values["room"] == 2048 - max_new and err.values["tokens"] > err.values["room"]
            break
        assert f.tokens <= f.room == 2048 - max_new
        assert f.tokens == len(loaded.tokenizer(f.prompt, add_special_tokens=False)["input_ids"])
        if f.lore_dropped:
            assert f.examples_dropped and "【会話の例】" not in f.prompt
        if f.turns_dropped:
            assert f.examples_dropped and set(f.lore_dropped) == {"朝霧町", "灯文堂"} and not f.lore
        assert f.lore_dropped == ["灯文堂", "朝霧町"][: len(f.lore_dropped)]  # lower insertion_order goes first
        assert ASK in f.prompt and "霧の多い山あいの町" in f.prompt  # the description and the last message stay
        seen.append((f.examples_dropped, len(f.lore_dropped), f.turns_dropped))
    else:
        pytest.fail("even 2,032 new tokens left the card's prompt room")
    assert seen == sorted(seen), seen  # each step leaves out at least what the one before did
    # every stage was reached on the way: examples alone, one entry, both, then turns
    assert (True, 0, 0) in seen and (True, 1, 0) in seen and any(n == 2 and t > 0 for _, n, t in seen)


def test_a_card_chat_over_the_context_answers_and_says_what_was_left_out(store, demo_cache, persona):
    conv = session.start(store, persona, ["demo-llama-a"], user="湊")
    settings = GenerationSettings(max_new_tokens=768, temperature=0.0)
    final = list(session.reply(store, conv, ASK, settings, demo_cache))[-1]
    (r,) = final
    assert r.error is None and r.result is not None and r.result.text.strip()  # the chat answers
    assert r.result.prompt_tokens <= 2048 - 768
    f = r.fitted
    assert f.examples_dropped and f.lore_dropped == ["灯文堂"] and f.lore == ["朝霧町"]
    assert chat_store.turns(store, conv)[-1].prompt == f.prompt  # what was stored is what the model read
    ja = in_language("ja", chat_actions.fit_note, r, settings)
    assert ja == (
        "demo-llama-a の文脈に収めるため（プロンプトに使えるのは 1280 トークン。全体の 2048 から返答の 768 を除いた分）、"
        "次を省きました: 会話の例、ロアブックの項目「灯文堂」"
    )
    view = in_language("ja", chat_actions.lore_lines, f, True)
    assert any("「霧祭り」" in line and "トークン予算（800 トークン）" in line for line in view)  # matched, over budget
    assert any("「灯文堂」" in line and "省いた" in line for line in view)
    en = in_language("en", chat_actions.fit_note, r, settings)
    assert "left out: the example dialogues, lorebook entries '灯文堂'" in en


def test_a_card_whose_description_alone_does_not_fit_is_refused_with_the_numbers(store, demo_cache, persona):
    conv = session.start(store, persona, ["demo-llama-a"], user="湊")
    settings = GenerationSettings(max_new_tokens=1900, temperature=0.0)
    with pytest.raises(session.ChatError) as caught:
        list(session.reply(store, conv, ASK, settings, demo_cache))
    inner = caught.value.values["error"]
    assert isinstance(inner, fitting.CardTooLong) and inner.values["room"] == 148
    needs = inner.values["tokens"]
    assert needs > 465  # the description alone is 465 tokens
    ja = in_language("ja", error_text, caught.value)
    assert (
        f"{needs} トークン必要ですが、このモデルが読めるのは 148 トークンです（全体の 2048 から返答の 1900 を除いた分）"
        in ja
    )
    assert [t.role for t in chat_store.turns(store, conv)] == ["assistant"]  # nothing stored but the greeting


def test_the_lorebook_goes_around_the_first_system_message_wherever_it_stands(persona):
    messages = [
        {"role": "assistant", "content": "いらっしゃいませ。"},
        {"role": "system", "content": "CARD"},
        {"role": "user", "content": "灯文堂の本を見せて"},
        {"role": "system", "content": "NOTE"},
    ]
    out, names = session.with_lore(messages, persona.character_book)
    assert names == ["灯文堂"] and len(out) == 4  # no second system prompt put in front
    assert out[1]["content"].startswith("CARD") and "昭和二十五年" in out[1]["content"] and out[3]["content"] == "NOTE"
    dropped, found = fitting.without_examples(
        [{"role": "system", "content": "A"}, {"role": "system", "content": persona.system_text("湊")}],
        persona.example_blocks("湊"),
    )
    assert found and "<START>" not in dropped[1]["content"] and "霧の多い山あいの町" in dropped[1]["content"]
