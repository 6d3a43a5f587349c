"""The Merge tab in a real browser: pick the two demo Llamas, see the YAML, merge, see the model registered."""

from __future__ import annotations

from playwright.sync_api import expect


def _pick(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input").first
    box.click()
    box.fill(value)
    page.get_by_role("option", name=value, exact=True).first.click()


def test_merge_two_demo_models_in_the_browser(app_url, page, artifacts):
    page.goto(app_url)
    page.get_by_role("tab", name="Merge").click()
    _pick(page, "merge-check-models", "demo-llama-a")
    _pick(page, "merge-check-models", "demo-mistral")
    page.locator("#merge-check").click()
    expect(page.locator("#merge-matrix")).to_contain_text("different architectures", timeout=30_000)
    page.screenshot(path=str(artifacts / "merge-matrix.png"), full_page=True)
    _pick(page, "merge-models", "demo-llama-a")
    _pick(page, "merge-models", "demo-llama-b")
    yaml_box = page.locator("#merge-yaml")
    expect(yaml_box).to_contain_text("model: demo-llama-b", timeout=30_000)
    assert "merge_method: slerp" in yaml_box.inner_text()
    page.locator("#merge-problems").get_by_text("recipe is valid").wait_for(timeout=30_000)

    page.locator("#merge-name textarea, #merge-name input").first.fill("demo-merge")
    page.locator("#merge-run").click()
    page.locator("#merge-status").get_by_text("Registered demo-merge").wait_for(timeout=120_000)
    page.screenshot(path=str(artifacts / "merge-tab.png"), full_page=True)

    page.get_by_role("tab", name="Models").click()
    page.get_by_role("button", name="Refresh").first.click()
    page.locator("#models-table").get_by_text("demo-merge", exact=True).first.wait_for(timeout=30_000)

    # and then chat with it: the Chat tab's lists refresh, the merge answers, and the reply says why it ended
    import re

    from tests.chat_tab.test_browser import FINISH, _send
    from tests.chat_tab.test_browser import _pick as pick_option

    page.get_by_role("tab", name="Chat").click()
    page.locator("#chat-model-a input").first.click()  # opening the list refreshes it
    page.wait_for_timeout(1500)
    pick_option(page, "chat-model-a", "demo-merge")
    pick_option(page, "chat-persona", "浪花ひより")
    box = page.locator("#chat-box-a")
    box.get_by_text("いらっしゃーい").first.wait_for(timeout=30_000)
    _send(page, "こんにちは！")
    box.get_by_text(FINISH).first.wait_for(timeout=60_000)
    assert re.search(r"demo-merge", page.locator("#chat-box-a").inner_text() + page.content())
    page.screenshot(path=str(artifacts / "merge-then-chat.png"), full_page=True)
