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
    page.get_by_text("'/no/such/folder' is outside the folders").wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts / "models-tab-bad-path.png"), full_page=True)
    assert page.get_by_text("demo-mistral", exact=True).first.is_visible()


def test_every_tab_renders(app_url, page, artifacts):
    """Each tab opens and shows its own content; a screenshot of each goes to the artifacts (README uses them)."""
    from rp_eval.ui import TABS
    from rp_eval.ui.locale import t

    intro = {"evolve_tab": "evo_intro", "evaluate_tab": "ev_intro", "chat_tab": "chat_intro"}
    page.goto(app_url)
    page.locator("#models-table").wait_for(timeout=60_000)
    for module, label in TABS:
        page.get_by_role("tab", name=t(label), exact=True).click()
        page.wait_for_timeout(1500)
        if module in intro:
            page.get_by_text(t(intro[module])[:40]).first.wait_for(timeout=30_000)
        assert page.locator(".toast-body.error, .error-message").count() == 0, module
        page.screenshot(path=str(artifacts / f"tab-{module}.png"), full_page=True)
