"""The Chat tab's habits in headless Chromium, as a Japanese and an English user meet them: Enter sends and
Shift+Enter breaks the line, a bad seed gets a message naming the field and stores nothing, Regenerate keeps
alternatives to flip with ‹ ›, another model goes on with the conversation, a message is edited, a model is
unloaded; a card with a portrait and a lorebook goes in and comes out with the same picture."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import urllib.parse
from pathlib import Path

from PIL import Image, PngImagePlugin
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from rp_eval.ui.locale import JA, STRINGS
from tests.chat_tab.test_browser import _pick
from tests.finetune.test_browser import _fill
from tests.test_i18n import browser_page

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
FOOTER_JA = re.compile(r"(自然に終了|停止文字列で終了|上限に達したため文末まで切り詰め|上限で打ち切り).*トークン")
FOOTER_EN = re.compile(r"(ended|stop string|trimmed at the cap|cut at the cap)[^·]*· \d+ tokens")


def _messages(page, box: str) -> list[str]:
    return page.locator(f"#{box} .message-row").all_inner_texts()


def _wait_messages(page, box: str, n: int) -> None:
    """`n` messages shown and the event that wrote them over: Gradio ignores a send while the last one is still
    pending (trigger mode "once"), so a test that sends again at once could see its Enter dropped.
    Every wait_for_function here polls on a timer: the default (once a frame) never fired again in Debian's
    Chromium once the page had nothing left to draw (the seed message below waited 90 s for a text that was
    there after 0.4 s)."""
    busy = " || ".join(f"s.includes('{STRINGS[k]}') || s.includes('{JA[k]}')" for k in ["chat_generating"])
    page.wait_for_function(
        f"() => document.querySelectorAll('#{box} .message-row').length === {n}"
        f" && !document.querySelector('#{box}').innerText.includes('▍')"
        f" && !document.querySelector('#{box} .wrap.generating, #{box} .wrap.pending')"
        f" && !((s) => {busy})(document.querySelector('#chat-status').innerText)",
        polling=250,
        timeout=90_000,
    )


def _send_refused(page, box, expected: str, messages: int) -> None:
    """Enter sends a message the app must refuse with `expected` in the status. A send can be dropped by the page
    itself (Gradio's trigger mode "once" while its last event is still pending on a loaded machine); a dropped
    send leaves no trace, so Enter is pressed again then. What fails: a reply (the refused setting was used) or
    no message after every try; the failure says what the page showed."""
    seen = ""
    for _ in range(4):
        box.press("Enter")
        try:
            page.wait_for_function(  # the status's own text (a locator on it can resolve to the progress overlay)
                f"() => document.querySelector('#chat-status').innerText.includes('{expected}')",
                polling=250,
                timeout=20_000,
            )
            return
        except PlaywrightTimeout:
            seen = _status(page)
            shown = _messages(page, "chat-box-a")
            print(f"no {expected!r} 20 s after Enter; status {seen!r}, {len(shown)} messages")
            seed = page.locator("#chat-seed input").input_value()
            assert len(shown) == messages, (
                f"a reply came instead of the message: {shown[-1]!r} (status: {seen!r}, seed box {seed!r})"
            )
    raise AssertionError(f"no {expected!r} after four sends; the status says {seen!r}")


def _status(page) -> str:
    return page.locator("#chat-status").inner_text()


def _open_chat(page, url: str, tab: str) -> None:
    page.goto(url)
    page.locator("#models-table").wait_for(timeout=60_000)
    page.get_by_role("tab", name=tab, exact=True).click()
    _pick(page, "chat-model-a", "demo-llama-a")
    _pick(page, "chat-persona", "浪花ひより")
    page.locator("#chat-box-a").get_by_text("いらっしゃーい").first.wait_for(timeout=30_000)


def test_chat_habits_in_japanese(app_url, artifacts):
    with browser_page("ja-JP") as page:
        _open_chat(page, app_url, JA["chat_tab"])
        box = page.locator("#chat-message textarea")

        # Enter on an empty box: the message comes in Japanese
        box.click()
        box.press("Enter")
        page.locator("#chat-status").get_by_text(JA["err_chat_empty"]).wait_for(timeout=30_000)

        # Shift+Enter is a new line, Enter sends
        box.type("こんにちは！")
        box.press("Shift+Enter")
        box.type("ラムネありますか？")
        assert box.input_value() == "こんにちは！\nラムネありますか？" and len(_messages(page, "chat-box-a")) == 1
        box.press("Enter")
        _wait_messages(page, "chat-box-a", 3)
        page.locator("#chat-box-a").get_by_text(FOOTER_JA).first.wait_for(timeout=30_000)
        assert "demo-llama-a" in _messages(page, "chat-box-a")[-1] and "tokens" not in _messages(page, "chat-box-a")[-1]
        assert box.input_value() == ""

        # Seed 1e30: a message naming the field, the status not stuck, nothing stored, the text kept in the box
        page.get_by_text(JA["chat_sampling"], exact=True).click()
        # typed, committed with Tab and read back before the send: in CI a send once went with a seed the app could
        # use (a reply instead of the message), so the box's own value is checked first
        _fill(page, "chat-seed", "1e30")
        box.fill("お菓子はある？")
        _send_refused(page, box, "シード: 1e+30 は使える範囲", messages=3)
        assert JA["chat_generating"] not in _status(page) and len(_messages(page, "chat-box-a")) == 3
        assert box.input_value() == "お菓子はある？"
        _fill(page, "chat-seed", "7")

        # Regenerate keeps the first reply: ‹ › flip between them
        first = _messages(page, "chat-box-a")[-1]
        page.locator("#chat-regenerate").click()
        page.locator("#chat-alternative").get_by_text("応答 2 / 2").wait_for(timeout=90_000)
        page.locator("#chat-prev").click()
        page.locator("#chat-alternative").get_by_text("応答 1 / 2").wait_for(timeout=30_000)
        assert _messages(page, "chat-box-a")[-1] == first

        # another model goes on with the same conversation
        _pick(page, "chat-model-a", "demo-mistral")
        box.fill("おすすめは？")
        box.press("Enter")
        _wait_messages(page, "chat-box-a", 5)
        texts = _messages(page, "chat-box-a")
        assert texts[2] == first and "demo-mistral" in texts[4] and "demo-llama-a" in texts[2]
        page.locator("#chat-status").get_by_text("demo-mistral").first.wait_for(timeout=30_000)

        # edit the user's last line in place
        page.locator("#chat-box-a .message-row").nth(3).hover()
        page.locator("#chat-box-a button[aria-label='編集']").nth(3).click()  # Gradio's own edit button
        page.locator("#chat-box-a textarea").fill("いちばん人気は？")
        page.locator("#chat-box-a button[aria-label='送信']").click()
        page.locator("#chat-status").get_by_text(JA["chat_edited"]).wait_for(timeout=30_000)
        assert "いちばん人気は？" in _messages(page, "chat-box-a")[3]

        # unload the model from memory
        page.locator("#chat-unload").click()
        page.locator("#chat-status").get_by_text("メモリから解放しました").wait_for(timeout=30_000)
        page.locator("#chat-status").scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "chat-tab-ja.png"), full_page=True)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(artifacts / "chat-tab-ja.png", SCREENSHOTS / "chat-tab-ja.png")


def _card_png(path: Path) -> Image.Image:
    """An English card with a drawn portrait, two greetings and a lorebook entry, saved as PNG."""
    card = {
        "spec": "chara_card_v3",
        "spec_version": "3.0",
        "data": {
            "name": "Mira",
            "description": "A lighthouse keeper on a windy cape who knows every star by name.",
            "personality": "",
            "scenario": "",
            "first_mes": "Oh, {{user}}! You made it through the storm.",
            "alternate_greetings": ["Morning, {{user}}. The sea is calm today."],
            "mes_example": "",
            "character_book": {
                "scan_depth": 2,
                "token_budget": 200,
                "entries": [{"name": "the lamp", "keys": ["lamp"], "content": "The lamp is a Fresnel lens from 1898."}],
            },
            "tags": ["sea"],
        },
    }
    picture = Image.effect_mandelbrot((300, 400), (-2, -1.5, 1, 1.5), 80).convert("RGB")
    info = PngImagePlugin.PngInfo()
    info.add_text("ccv3", base64.b64encode(json.dumps(card).encode()).decode())
    picture.save(path, format="PNG", pnginfo=info)
    return picture


def test_card_round_trip_in_english(app_url, artifacts, tmp_path):
    source = tmp_path / "mira.png"
    picture = _card_png(source)
    with browser_page("en-US") as page:
        _open_chat(page, app_url, STRINGS["chat_tab"])
        page.get_by_text(STRINGS["chat_persona_heading"], exact=True).click()
        page.locator("#chat-card-import input[type=file]").set_input_files(str(source))
        page.locator("#chat-status").get_by_text("Imported **Mira**".replace("**", "")).wait_for(timeout=30_000)
        page.locator("#chat-box-a").get_by_text("Oh, User! You made it").wait_for(timeout=30_000)
        assert page.locator("#chat-user textarea, #chat-user input").first.input_value() == "User"
        system = page.locator("#chat-system textarea").input_value()
        assert system.startswith("This is a role-play. You are Mira") and "[Personality]" not in system

        # the alternate greeting
        _pick(page, "chat-greeting", "Alternate greeting 1")
        page.locator("#chat-box-a").get_by_text("Morning, User.").wait_for(timeout=30_000)

        # the lorebook entry is in the prompt once its key is in the recent turns
        page.locator("#chat-message textarea").fill("Does the lamp still work?")
        page.get_by_text(STRINGS["chat_raw_prompt_heading"], exact=True).click()
        page.locator("#chat-raw-prompt").click()
        page.wait_for_function(
            "() => document.querySelector('#chat-raw-box textarea').value.includes('Fresnel lens')",
            polling=250,
            timeout=60_000,
        )
        assert "Lorebook entries in this prompt: the lamp" in page.locator("#chat-raw-box textarea").input_value()

        # export as PNG: the same portrait comes back, with the card
        page.locator("#chat-export-png").click()
        link = page.locator("#chat-card-file a").first
        link.wait_for(timeout=30_000)
        href = urllib.parse.unquote(link.get_attribute("href"))
        exported = Path(href.split("file=")[1].split("?")[0])
        image = Image.open(io.BytesIO(exported.read_bytes()))
        assert image.size == picture.size and list(image.getdata()) == list(picture.getdata())
        assert json.loads(base64.b64decode(image.text["ccv3"]))["data"]["name"] == "Mira"
        page.screenshot(path=str(artifacts / "card-round-trip.png"), full_page=True)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(artifacts / "card-round-trip.png", SCREENSHOTS / "card-round-trip.png")
