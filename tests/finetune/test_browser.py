"""The Fine-tune tab in headless Chromium: preview with special tokens, a short run with progress and loss plot."""

from __future__ import annotations

import re


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
    page.locator("#ft-max-steps input").fill("8")
    page.locator("#ft-batch input").fill("4")
    page.locator("#ft-accum input").fill("1")
    page.locator("#ft-start").click()
    page.locator("#ft-result").get_by_text("is registered").first.wait_for(timeout=120_000)
    progress = page.locator("#ft-progress-text").inner_text()
    assert re.search(r"done · step 8/8", progress), progress
    assert "natural-stop rate" in page.locator("#ft-result").inner_text()
    assert "adapter registered as" in page.locator("#ft-log textarea").input_value()
    page.locator("#ft-result").get_by_text("base + adapter merged").wait_for(timeout=60_000)
    assert "full model registered as" in page.locator("#ft-log textarea").input_value()
    page.screenshot(path=str(artifacts / "finetune-tab.png"), full_page=True)

    # cancelling a finished run is refused politely; the app keeps serving
    page.locator("#ft-cancel").click()
    page.locator("#ft-result").get_by_text("is not running").wait_for(timeout=30_000)
