"""The Evaluate tab in Chromium over the demo models: run, table, plots, drill-down, export."""

from __future__ import annotations


def test_evaluate_tab_runs_the_demo_models(app_url, page, artifacts):
    page.goto(app_url)
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#ev-models").wait_for(timeout=60_000)
    limit = page.locator("#ev-limit input").first
    limit.fill("6")
    page.locator("#ev-run").click()
    page.locator("#ev-status").get_by_text("replies (task version").wait_for(timeout=240_000)
    page.screenshot(path=str(artifacts / "evaluate-tab-run.png"), full_page=True)
    table = page.locator("#ev-table").inner_text()
    assert all(name in table for name in ("demo-llama-a", "demo-llama-b", "demo-mistral")) and "combined" in table
    assert page.locator("#ev-bar").get_attribute("value") == page.locator("#ev-bar").get_attribute("max")
    page.locator("#ev-drill").get_by_text("demo-mistral").first.click()
    page.locator("#ev-detail").get_by_text("combined").wait_for(timeout=30_000)
    page.locator("#ev-export").click()
    page.locator("#ev-report").get_by_text(".html").first.wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts / "evaluate-tab.png"), full_page=True)
    # with no ratings yet, calibration says what it needs and the tab keeps working
    page.get_by_text("Calibrate against the human ratings").click()
    page.locator("#ev-calibrate").click()
    page.locator("#ev-calibration").get_by_text("needs at least 10 Likert-scored replies").wait_for(timeout=30_000)
