"""Demo mode (a CPU Space): heavy tabs say why they are off and have no endpoints; chat and rating stay."""

from __future__ import annotations

import pytest

from rp_eval.ui import HEAVY_TABS, TABS, build_app
from tests.conftest import running_app, use_workspace


def endpoints(app) -> set[str]:
    return {d.get("api_name") for d in app.config["dependencies"] if d.get("api_name")}


@pytest.fixture
def demo_models(demo_workspace, monkeypatch):
    use_workspace(demo_workspace, monkeypatch)


def test_heavy_tabs_are_not_built_in_demo_mode(demo_models, monkeypatch):
    monkeypatch.setenv("RP_EVAL_DEMO_MODE", "off")
    full = build_app()
    monkeypatch.setenv("RP_EVAL_DEMO_MODE", "on")
    demo = build_app()
    heavy_present = [m for m, _ in TABS if m in HEAVY_TABS]
    if heavy_present:
        assert endpoints(demo) < endpoints(full)  # the heavy tabs' endpoints are gone, not just hidden
    off = '"key": "demo_mode_off"'  # the notice, as the translation key the page shows in its language
    assert off in str(demo.config) and off not in str(full.config)
    light = [m for m, _ in TABS if m not in HEAVY_TABS]
    assert light, "chat and rating tabs stay in demo mode"


def test_demo_mode_in_the_browser(demo_workspace, tmp_path, page, artifacts):
    with running_app(demo_workspace, tmp_path / "app.log", env={"RP_EVAL_DEMO_MODE": "on"}) as url:
        page.goto(url)
        page.get_by_role("tab", name="Chat").wait_for(timeout=60_000)
        heavy = [m for m, _ in TABS if m in HEAVY_TABS]
        if heavy:
            from rp_eval.ui.locale import t

            page.get_by_role("tab", name=t(dict(TABS)[heavy[0]])).click()
            page.get_by_text("Off in this demo").first.wait_for(timeout=30_000)
        page.screenshot(path=str(artifacts / "demo-mode.png"), full_page=True)
