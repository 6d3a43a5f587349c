"""A kept alternative in a real chat (headless Chromium, demo models) becomes a preference row, the person sees
it under "My chat preferences", and the Leaderboard's combined ranking counts it; then the Japanese page."""

from __future__ import annotations

import re
import sqlite3

from playwright.sync_api import expect

from rp_eval.ui.locale_ja import JA

FINISH = re.compile(r"— (ended|stop string|trimmed at the cap|cut at the cap)")


def _pick(page, elem_id: str, text: str) -> None:
    box = page.locator(f"#{elem_id} input").first
    box.click()
    page.get_by_role("option", name=re.compile(re.escape(text))).first.click()


def _send(page, text: str) -> None:
    page.locator("#chat-message textarea").fill(text)
    page.locator("#chat-send").click()


def test_a_kept_alternative_counts_in_the_leaderboard(demo_workspace, app_url, page, artifacts):
    page.goto(app_url)
    page.get_by_role("tab", name="Chat").click()
    expect(page.locator("#chat-pref-line")).to_contain_text("count as preferences", timeout=30_000)
    _pick(page, "chat-model-a", "demo-llama-a")
    _pick(page, "chat-persona", "浪花ひより")
    box = page.locator("#chat-box-a")
    _send(page, "こんにちは！ラムネありますか？")
    box.get_by_text(FINISH).first.wait_for(timeout=60_000)

    # another model writes a second reply to the same message; ‹ goes back to the first, then the chat goes on
    _pick(page, "chat-model-a", "demo-mistral")
    page.locator("#chat-regenerate").click()
    expect(page.locator("#chat-alternative")).to_contain_text("Reply 2 of 2", timeout=60_000)
    page.locator("#chat-prev").click()
    expect(page.locator("#chat-alternative")).to_contain_text("Reply 1 of 2", timeout=30_000)
    _send(page, "じゃあ一本ください。")
    expect(box.get_by_text(FINISH)).to_have_count(2, timeout=60_000)

    rows = sqlite3.connect(demo_workspace / "rp_eval.sqlite").execute(
        "SELECT kind, chosen_model, rejected_model FROM chat_preferences"
    )
    assert rows.fetchall() == [("kept", "demo-llama-a", "demo-mistral")]

    page.get_by_role("button", name=re.compile("^My chat preferences")).click()
    page.locator("#pref-refresh").click()
    expect(page.locator("#pref-table")).to_contain_text("demo-mistral", timeout=30_000)
    expect(page.locator("#pref-table")).to_contain_text("kept")

    page.get_by_role("tab", name="Leaderboard").click()
    summary = page.locator("#lb-combined-summary")
    expect(summary).to_contain_text("chat preferences: 1 votes from 1 raters", timeout=60_000)
    expect(summary).to_contain_text("Only 1 votes")
    table = page.locator("#lb-combined")
    expect(table).to_contain_text("chat votes")
    expect(table).to_contain_text("demo-llama-a")
    page.locator("#lb-combined-plot img").first.wait_for(timeout=30_000)

    # the same page in Japanese (the language switch's cookie), for a person to look at
    page.context.add_cookies([{"name": "rp_lang", "value": "ja", "url": app_url}])
    page.goto(app_url)
    page.get_by_role("tab", name=JA["leaderboard_tab"], exact=True).click()
    expect(page.locator("#lb-combined-summary")).to_contain_text("チャットでの選好 1 件", timeout=60_000)
    page.locator("#lb-combined-plot img").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artifacts / "leaderboard-combined-ja.png"), full_page=True)
