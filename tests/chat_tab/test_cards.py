"""Character Card V2 import and export: JSON and PNG round trips keep every field; bad cards are named."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image, PngImagePlugin

from rp_eval.chat.cards import (
    MAX_CARD_BYTES,
    Card,
    CardError,
    card_png,
    card_to_persona,
    persona_to_card,
    read_card,
)
from rp_eval.chat.personas import load_personas


def _card() -> dict:
    return {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": "灯里",
            "description": "灯台守の娘。{{user}}を見かけると手を振る。",
            "personality": "のんびり屋で、星の名前に詳しい。",
            "scenario": "嵐の翌朝、{{user}}が岬の灯台を訪ねる。",
            "first_mes": "あ、{{user}}さん！　昨夜の嵐、すごかったねえ。",
            "mes_example": "<START>\n{{user}}: 星は好き？\n{{char}}: うん、とくに冬の星座が好きなんだ。",
            "creator_notes": "テスト用に書いたカード",
            "system_prompt": "{{char}}として返答してください。",
            "post_history_instructions": "短く答えること。",
            "alternate_greetings": ["おはよう、{{user}}さん。", "今日は波がおだやかだね。"],
            "character_book": {"entries": [{"keys": ["灯台"], "content": "明治に建てられた白い灯台"}]},
            "tags": ["海", "灯台"],
            "creator": "tests",
            "character_version": "1.2",
            "extensions": {"talkativeness": "0.5", "depth_prompt": {"depth": 4, "prompt": "…"}},
        },
    }


def test_json_round_trip_keeps_every_field():
    raw = _card()
    card = read_card(json.dumps(raw, ensure_ascii=False).encode(), "akari.json")
    assert card.raw == raw
    assert json.loads(card.to_json()) == raw


def test_png_round_trip_keeps_every_field_and_the_picture():
    picture = Image.new("RGB", (31, 17), (10, 120, 200))
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    blob = card_png(Card(_card()), buf.getvalue())
    back = read_card(blob, "akari.png")
    assert back.raw == _card()
    image = Image.open(io.BytesIO(blob))
    assert image.size == (31, 17) and image.getpixel((3, 3)) == (10, 120, 200)
    # the chunk is plain base64 JSON under the key "chara", as SillyTavern writes it
    assert json.loads(base64.b64decode(image.text["chara"]))["data"]["name"] == "灯里"
    # and exporting again gives the same card
    assert read_card(card_png(back), "again.png").raw == _card()


def test_card_to_persona_fills_placeholders_in_the_prompt():
    persona = card_to_persona(Card(_card()))
    assert persona.id == "灯里" and persona.alternate_greetings[1] == "今日は波がおだやかだね。"
    system = persona.system_text("湊")
    assert "湊が岬の灯台を訪ねる" in system and "灯里として返答" in system and "{{" not in system
    assert persona.opening("湊")[1]["content"] == "あ、湊さん！　昨夜の嵐、すごかったねえ。"


def test_persona_to_card_to_persona_keeps_style_markers():
    for persona in load_personas().values():
        card = read_card(card_png(persona_to_card(persona)), "p.png")
        assert card_to_persona(card) == persona


def test_v1_card_is_read_as_v2():
    v1 = {k: v for k, v in _card()["data"].items() if k in ("name", "description", "personality", "first_mes")}
    card = read_card(json.dumps(v1).encode(), "v1.json")
    assert card.raw["spec"] == "chara_card_v2" and card.data["name"] == "灯里" and card.data["tags"] == []


def test_bad_cards_get_a_message_naming_the_problem():
    plain = io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, format="PNG")
    with pytest.raises(CardError, match="no 'chara' or 'ccv3' chunk"):
        read_card(plain.getvalue(), "plain.png")

    info = PngImagePlugin.PngInfo()
    info.add_text("chara", base64.b64encode(b'{"spec": "chara_card_v2", "data": {"name": ').decode())
    broken = io.BytesIO()
    Image.new("RGB", (8, 8)).save(broken, format="PNG", pnginfo=info)
    with pytest.raises(CardError, match=r"broken\.png: the card is not valid JSON"):
        read_card(broken.getvalue(), "broken.png")

    with pytest.raises(CardError, match=r"noname\.json: field 'data\.name'"):
        read_card(json.dumps({"spec": "chara_card_v2", "data": {"description": "x"}}).encode(), "noname.json")
    with pytest.raises(CardError, match="not a readable PNG"):
        read_card(b"\x89PNG\r\n\x1a\nthis is not an image", "fake.png")
    with pytest.raises(CardError, match="cards up to 5 MB"):
        read_card(b" " * (MAX_CARD_BYTES + 1), "huge.json")


def test_the_portrait_comes_back_byte_for_byte_and_a_second_export_changes_nothing():
    picture = Image.effect_mandelbrot((120, 90), (-2, -1.2, 1, 1.2), 60).convert("RGB")
    buf = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "drawn for the test")
    info.add_text("chara", "b2xkIGNhcmQ=")  # an older card in the picture: replaced, not doubled
    picture.save(buf, format="PNG", pnginfo=info)
    original = buf.getvalue()
    blob = card_png(Card(_card()), original)
    image = Image.open(io.BytesIO(blob))
    assert list(image.getdata()) == list(picture.getdata()) and image.text["Comment"] == "drawn for the test"
    assert blob.count(b"tEXtchara") == 1 and read_card(blob, "a.png").raw == _card()
    assert card_png(read_card(blob, "a.png"), blob) == blob  # a round trip through rp_eval is stable
    # every chunk of the picture (pixel data included) is still there, unchanged
    assert original.split(b"IDAT")[1][:200] in blob


def test_v3_cards_are_read_and_keep_their_spec():
    v3 = _card()
    v3.update(spec="chara_card_v3", spec_version="3.0")
    v3["data"].update(nickname="あかりん", group_only_greetings=[], assets=[{"type": "icon", "uri": "ccdefault:"}])
    card = read_card(json.dumps(v3, ensure_ascii=False).encode(), "v3.json")
    assert card.spec == "chara_card_v3" and card.raw == v3
    assert card_to_persona(card).character_book == v3["data"]["character_book"]
    blob = card_png(card)
    image = Image.open(io.BytesIO(blob))
    assert json.loads(base64.b64decode(image.text["ccv3"])) == v3
    assert json.loads(base64.b64decode(image.text["chara"]))["spec"] == "chara_card_v2"  # for V2 readers
    assert read_card(blob, "v3.png").raw == v3  # ccv3 wins over chara


def test_an_english_card_gets_an_english_frame_without_empty_sections():
    card = Card(
        {
            "spec": "chara_card_v2",
            "spec_version": "2.0",
            "data": {
                "name": "Mira",
                "description": "A lighthouse keeper who knows every star by name.",
                "first_mes": "Oh, {{user}}! You made it through the storm.",
            },
        }
    )
    persona = card_to_persona(card)
    assert persona.language() == "en" and persona.default_user() == "User"
    system = persona.system_text("Sam")
    assert system.startswith("This is a role-play. You are Mira") and "[About Mira]" in system
    assert "【" not in system and "[Personality]" not in system and "[Scenario]" not in system  # empty: left out
    assert "\n-" not in system and "あなた" not in system
    japanese = persona.system_text("Sam", frame="ja")
    assert "ロールプレイ" in japanese and "【Miraについて】" in japanese and "【性格】" not in japanese
    assert persona.greeting(persona.default_user()) == "Oh, User! You made it through the storm."
    assert card_to_persona(Card(_card())).language() == "ja"
