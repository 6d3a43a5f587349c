"""The page as a person sees it: the app in a subprocess, driven by headless Chromium through Playwright."""

from __future__ import annotations


def test_models_tab_lists_the_demo_models(app_url, page, artifacts):
    page.goto(app_url)
    table = page.locator("#models-table")
    table.wait_for(timeout=60_000)
    for name in ("demo-llama-a", "demo-llama-b", "demo-mistral"):
        page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
    assert "tiny models" in page.locator("#demo-banner").inner_text()
    page.screenshot(path=str(artifacts / "models-tab.png"), full_page=True)

    # a bad path gets one clear message and the app keeps serving
    page.locator("#model-source textarea, #model-source input").first.fill("/no/such/folder")
    page.locator("#model-add").click()
    page.get_by_text("folder '/no/such/folder' does not exist").wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts / "models-tab-bad-path.png"), full_page=True)
    assert page.get_by_text("demo-mistral", exact=True).first.is_visible()
