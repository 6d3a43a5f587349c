"""The Chat tab in headless Chromium: pick a demo model and a persona, chat, then side by side."""

from __future__ import annotations

import re

FINISH = re.compile(r"— (ended|stop string|trimmed at the cap|cut at the cap)[^·]*· \d+ tokens · [\d.]+ tokens/s")


def _pick(page, elem_id: str, text: str) -> None:
    box = page.locator(f"#{elem_id} input").first
    box.click()
    page.get_by_role("option", name=re.compile(re.escape(text))).first.click()


def _send(page, text: str) -> None:
    page.locator("#chat-message textarea").fill(text)
    page.locator("#chat-send").click()


def _replies(page, elem_id: str) -> list[str]:
    return page.locator(f"#{elem_id} .message-row, #{elem_id} .message").all_inner_texts()


def test_chat_tab_streams_and_names_the_finish(app_url, page, artifacts):
    page.goto(app_url)
    page.get_by_role("tab", name="Chat").click()
    _pick(page, "chat-model-a", "demo-llama-a")
    _pick(page, "chat-persona", "浪花ひより")
    box_a = page.locator("#chat-box-a")
    box_a.get_by_text("いらっしゃーい").first.wait_for(timeout=30_000)  # the persona's first message opens the chat

    _send(page, "")
    page.locator("#chat-status").get_by_text("the message is empty").wait_for(timeout=30_000)

    _send(page, "こんにちは！ラムネありますか？")
    box_a.get_by_text(FINISH).first.wait_for(timeout=60_000)
    text_a = box_a.inner_text()
    assert "こんにちは！ラムネありますか？" in text_a
    assert "</s>" not in text_a and "[INST]" not in text_a, "nothing past the stop is shown"
    page.screenshot(path=str(artifacts / "chat-tab.png"), full_page=True)

    page.locator("#chat-show-raw input").check()
    box_a.locator("code, pre").first.wait_for(timeout=30_000)  # the raw text appears in a code block
    page.locator("#chat-show-raw input").uncheck()

    page.get_by_text("Raw prompt", exact=True).click()
    page.locator("#chat-raw-prompt").click()
    raw = page.locator("#chat-raw-box textarea")
    page.wait_for_function(
        "() => document.querySelector('#chat-raw-box textarea').value.includes('[/INST]')", polling=250
    )
    assert "<<SYS>>" in raw.input_value() and "浪花ひより" in raw.input_value()  # special tokens visible

    page.locator("#chat-side-by-side input").check()
    # ticking it starts a new conversation (a conversation has its sides from the start), and says so
    page.locator("#chat-status").get_by_text("a new conversation starts here").wait_for(timeout=30_000)
    box_b = page.locator("#chat-box-b")
    box_b.wait_for(state="visible", timeout=30_000)
    _pick(page, "chat-model-b", "demo-mistral")
    _send(page, "おすすめの駄菓子は何？")
    box_a.get_by_text(FINISH).first.wait_for(timeout=60_000)
    box_b.get_by_text(FINISH).first.wait_for(timeout=60_000)
    for box in (box_a, box_b):
        assert "おすすめの駄菓子は何？" in box.inner_text() and "</s>" not in box.inner_text()
    assert "demo-mistral" in page.locator("#chat-box-b").inner_text() or page.get_by_text("B: demo-mistral").count()
    page.screenshot(path=str(artifacts / "chat-tab-side-by-side.png"), full_page=True)
