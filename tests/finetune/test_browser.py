"""The Fine-tune tab in headless Chromium: preview with special tokens, a short run with progress and loss plot."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def _fill(page, elem_id: str, value: str) -> None:
    """Type a number and make sure it stayed: on a busy machine an update from an earlier event (choosing the
    base model) can land after the typing and put the default back."""
    box = page.locator(f"#{elem_id} input").first
    for _ in range(3):
        box.fill(value)
        box.press("Tab")
        page.wait_for_timeout(500)
        if box.input_value() == value:
            return
    raise AssertionError(f"#{elem_id} would not keep {value}")


def test_finetune_tab_previews_trains_and_registers(app_url, page, artifacts):
    page.goto(app_url)
    page.get_by_role("tab", name="Fine-tune").click()
    page.locator("#ft-base input").first.click()
    page.get_by_role("option", name=re.compile("demo-llama-a")).first.click()

    page.locator("#ft-preview-button").click()
    special = page.locator("#ft-preview mark .ft-special").first
    special.wait_for(timeout=60_000)
    assert special.inner_text() == "</s>"  # the EOS at the end of a reply, trained, shown as a special token
    assert "one real token: OK" in page.locator("#ft-preview").inner_text()

    page.get_by_text("LoRA", exact=True).click()
    page.get_by_label("auto").wait_for()  # gradient checkpointing: auto (the memory rule), on, off
    assert page.get_by_label("auto").is_checked()
    page.locator("#ft-merge-full input").check()
    page.get_by_text("Training", exact=True).click()
    for elem_id, value in (("ft-max-steps", "8"), ("ft-batch", "4"), ("ft-accum", "1")):
        _fill(page, elem_id, value)
    page.locator("#ft-start").click()
    # 8 steps, an evaluation and a registration: as the plan test, room for a loaded 2-core machine
    page.locator("#ft-result").get_by_text("is registered").first.wait_for(timeout=300_000)
    # the outputs of one update may land a moment apart on a busy machine: each is waited for, not read once
    expect(page.locator("#ft-progress-text")).to_contain_text(re.compile(r"done · step 8/8"), timeout=30_000)
    expect(page.locator("#ft-result")).to_contain_text("natural-stop rate", timeout=30_000)
    log = page.locator("#ft-log textarea")
    expect(log).to_have_value(re.compile("adapter registered as"), timeout=30_000)
    page.locator("#ft-result").get_by_text("base + adapter merged").wait_for(timeout=60_000)
    expect(log).to_have_value(re.compile("full model registered as"), timeout=30_000)
    page.screenshot(path=str(artifacts / "finetune-tab.png"), full_page=True)

    # cancelling a finished run is refused politely; the app keeps serving
    page.locator("#ft-cancel").click()
    page.locator("#ft-result").get_by_text("is not running").wait_for(timeout=30_000)
