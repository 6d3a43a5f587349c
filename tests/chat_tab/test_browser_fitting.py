"""A long SillyTavern card chatted with on a demo model from the Japanese page: the reply comes, the status says
in Japanese what was left out to fit the context, the prompt view names the entry past the book's budget."""

from __future__ import annotations

import contextlib

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from rp_eval.ui.locale import JA
from tests.chat_tab.test_browser import _pick, _send
from tests.chat_tab.test_browser_habits import _wait_messages
from tests.chat_tab.test_fitting import ASK, CARD
from tests.test_i18n import browser_page


def test_a_long_card_chats_on_the_japanese_page_and_says_what_was_left_out(app_url, artifacts):
    with browser_page("ja-JP") as page:
        page.goto(app_url)
        page.locator("#models-table").wait_for(timeout=60_000)
        page.get_by_role("tab", name=JA["chat_tab"], exact=True).click()
        _pick(page, "chat-model-a", "demo-llama-a")
        page.get_by_text(JA["chat_persona_heading"], exact=True).click()
        page.locator("#chat-card-import input[type=file]").set_input_files(str(CARD))
        page.locator("#chat-box-a").get_by_text("霧、すごかったでしょう").wait_for(timeout=30_000)
        page.get_by_text(JA["chat_sampling"], exact=True).click()
        page.locator("#chat-max-new input[type=number]").fill("768")
        page.locator("#chat-max-new input[type=number]").press("Enter")
        page.locator("#chat-max-new input[type=number]").blur()
        _send(page, ASK)
        _wait_messages(page, "chat-box-a", 3)
        # the status is written by the reply's last update; on a loaded machine it can land a moment later (on a
        # timeout the assertion below says what the status showed)
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_function(
                "() => document.querySelector('#chat-status').innerText.includes('文脈に収めるため')",
                polling=250,
                timeout=30_000,
            )
        status = page.locator("#chat-status").inner_text()
        assert "demo-llama-a の文脈に収めるため" in status and "会話の例、ロアブックの項目「灯文堂」" in status, status
        page.locator("#chat-message textarea").fill("祭りの灯籠の話をして")
        page.get_by_text(JA["chat_raw_prompt_heading"], exact=True).click()
        page.locator("#chat-raw-prompt").click()
        page.wait_for_function(
            "() => document.querySelector('#chat-raw-box textarea').value.includes('トークン予算')",
            polling=250,
            timeout=60_000,
        )
        view = page.locator("#chat-raw-box textarea").input_value()
        assert "「霧祭り」" in view and "トークン予算（800 トークン）を超える" in view, view[:600]
        page.locator("#chat-status").scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "chat-card-fit-ja.png"), full_page=True)
