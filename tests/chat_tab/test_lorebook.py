"""Lorebook entries (a card's `character_book`) go into the prompt when the recent turns call them up."""

from __future__ import annotations

from rp_eval.chat import lorebook, session
from rp_eval.chat.cards import Card, card_to_persona
from rp_eval.store import chat as chat_store
from tests.chat_tab.test_cards import _card


def _book(**book) -> lorebook.Book:
    entries = [
        {"name": "灯台", "keys": ["灯台"], "content": "LIGHTHOUSE", "insertion_order": 10},
        {"name": "星", "keys": ["/星座|オリオン/"], "content": "STARS", "insertion_order": 5},
        {"name": "嵐", "keys": ["嵐"], "secondary_keys": ["船", "港"], "selective": True, "content": "STORM"},
        {
            "name": "秘密",
            "keys": ["秘密"],
            "secondary_keys": ["父"],
            "selective": True,
            "extensions": {"selectiveLogic": 2},
            "content": "SECRET",
        },
        {"name": "常に", "keys": [], "constant": True, "content": "ALWAYS", "insertion_order": 1},
        {"name": "off", "keys": ["灯台"], "enabled": False, "content": "NEVER"},
        {"name": "Case", "keys": ["Moon"], "case_sensitive": True, "content": "MOON", "position": "before_char"},
    ]
    return lorebook.parse_book({"entries": entries, **book})


def _names(book, *recent) -> list[str]:
    return [e.name for e in lorebook.select_entries(book, list(recent))]


def test_keys_secondary_keys_constant_and_case():
    book = _book()
    assert _names(book, "こんにちは") == ["常に"]
    assert _names(book, "灯台が見えるね") == ["常に", "灯台"]  # by insertion order; the disabled twin never
    assert _names(book, "オリオンが出てる") == ["常に", "星"]  # a /regex/ key
    assert _names(book, "昨夜の嵐") == ["常に"]  # selective: a secondary key is needed too
    assert "嵐" in _names(book, "昨夜の嵐で船が")
    assert "秘密" in _names(book, "秘密があるの")  # NOT ANY: no secondary key present
    assert "秘密" not in _names(book, "父の秘密")
    assert "Case" not in _names(book, "the moon") and "Case" in _names(book, "the Moon")


def test_scan_depth_and_token_budget():
    book = _book(scan_depth=1)
    assert _names(book, "灯台の話", "別の話") == ["常に"]  # only the last message is scanned
    assert _names(_book(scan_depth=2), "灯台の話", "別の話") == ["常に", "灯台"]
    tight = _book(token_budget=len("ALWAYS") + len("LIGHTHOUSE"))
    # constants first, then higher insertion order first, until the budget is spent
    assert _names(tight, "灯台とオリオン") == ["常に", "灯台"]


def test_positions_around_the_system_prompt():
    entries = lorebook.select_entries(_book(), ["Moon と 灯台"])
    text = lorebook.apply("SYSTEM", entries)
    assert text.index("MOON") < text.index("SYSTEM") < text.index("ALWAYS") < text.index("LIGHTHOUSE")


def test_a_cards_lorebook_reaches_the_prompt_only_when_called_up(store, tiny_cache):
    raw = _card()
    raw["data"]["character_book"] = {
        "scan_depth": 2,
        "entries": [{"keys": ["灯台"], "content": "灯台は明治に建てられ、白く塗られている。", "name": "灯台の由来"}],
    }
    persona = card_to_persona(Card(raw))
    conv = session.start(store, persona, ["tiny-llama"], user="湊")
    settings = session.GenerationSettings(max_new_tokens=4, temperature=0.0)
    final = list(session.reply(store, conv, "こんにちは。", settings, tiny_cache))[-1]
    assert "明治に建てられ" not in final[0].result.prompt
    final = list(session.reply(store, conv, "あの灯台はいつからあるの？", settings, tiny_cache))[-1]
    prompt = final[0].result.prompt
    assert "明治に建てられ" in prompt and prompt.index("明治に建てられ") < prompt.index("あの灯台は")
    assert chat_store.turns(store, conv)[-1].prompt == prompt  # what the raw prompt view shows
    messages = session.side_messages(store, conv, "a")
    assert session.with_lore(messages, persona.character_book)[1] == ["灯台の由来"]
