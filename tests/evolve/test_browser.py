"""The Evolve tab in a real browser: a tiny search on the demo models, stopped and resumed, the fitness plot and
the candidates table filled, the best exported and then offered in the Chat tab."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from rp_eval.store import evolve as db
from rp_eval.store import get_store
from tests.conftest import running_app, use_workspace


@pytest.fixture
def evolve_app(demo_workspace, tmp_path):
    """The app over the demo workspace, as a user starts it (exported recipes go to the workspace)."""
    with running_app(demo_workspace, tmp_path / "app.log") as url:
        yield url


def _pick(page, elem_id: str, value: str) -> None:
    """Choose `value` in a dropdown (single or multiselect) and make sure it stayed chosen: focusing the box
    refreshes its choices, and on a busy machine that refresh can land after the click and undo it."""
    box = page.locator(f"#{elem_id} input").first
    for _ in range(3):
        box.click()
        page.wait_for_timeout(500)
        box.fill(value)
        page.get_by_role("option", name=value, exact=True).first.click()
        page.keyboard.press("Escape")  # the option list closed: what is left in the box is what was chosen
        page.wait_for_timeout(500)
        if box.input_value() == value or value in page.locator(f"#{elem_id}").inner_text():
            return
    raise AssertionError(f"could not choose {value} in #{elem_id}")


def _number(page, elem_id: str, value: int) -> None:
    page.locator(f"#{elem_id} input").first.fill(str(value))


def _rows(page) -> int:
    """Candidates in the table (Gradio's table draws only the rows in view; the grid knows them all)."""
    return int(page.locator("#evo-candidates [role=grid]").get_attribute("aria-rowcount")) - 1


def test_search_stop_resume_and_export_in_the_browser(
    evolve_app, demo_workspace, page, artifacts, tmp_path, monkeypatch
):
    page.goto(evolve_app)
    page.get_by_role("tab", name="Evolve").click()
    _pick(page, "evo-models", "demo-llama-b")
    _pick(page, "evo-base", "demo-llama-a")
    page.locator("#evo-run input, #evo-run textarea").first.fill("browser-run")
    for elem_id, value in (("evo-population", 4), ("evo-budget", 8), ("evo-dev-limit", 4), ("evo-tokens", 32)):
        _number(page, elem_id, value)
    status = page.locator("#evo-status")

    page.locator("#evo-start").click()
    try:  # candidates slow enough (4 replies of 32 tokens each) that Stop lands inside the run
        expect(status).to_contain_text(re.compile(r"generation 1 candidate \d"), timeout=60_000)
    except AssertionError:
        page.screenshot(path=str(artifacts / "evolve-start-failed.png"), full_page=True)
        raise AssertionError(f"the search did not start; the status says: {status.inner_text()!r}") from None
    page.locator("#evo-stop").click()
    status.get_by_text("stopped").wait_for(timeout=60_000)
    stopped_at = _rows(page)
    assert 1 <= stopped_at < 8, stopped_at  # stopped inside the first generation, every finished one shown

    page.locator("#evo-resume").click()
    status.get_by_text("done").wait_for(timeout=120_000)
    expect(page.locator("#evo-candidates [role=grid]")).to_have_attribute("aria-rowcount", "9", timeout=30_000)
    table = page.locator("#evo-candidates").inner_text()
    assert "fitness" in table and "ok" in table and "failed" not in table
    assert not re.search(r"\d\.\d{5,}", table)  # fitness rounded, no float noise
    plot = page.locator("#evo-plot")
    expect(plot.locator("img").first).to_be_visible(timeout=30_000)  # matplotlib: whole generations on the axis
    page.screenshot(path=str(artifacts / "evolve-tab.png"), full_page=True)
    page.locator("#evo-stop").click()  # the run is finished: Stop says so instead of promising to stop
    expect(status).to_contain_text("is not running (status: done", timeout=30_000)

    page.locator("#evo-export-name input, #evo-export-name textarea").first.fill("browser-evolved")
    page.locator("#evo-export").click()
    status.get_by_text("registered").wait_for(timeout=180_000)
    assert (demo_workspace / "merges" / "browser-evolved.yaml").exists()  # the workspace, by default
    page.screenshot(path=str(artifacts / "evolve-exported.png"), full_page=True)

    page.get_by_role("tab", name="Chat").click()
    page.locator("#chat-model-a input").first.click()  # opening the list refreshes it
    expect(page.get_by_role("option", name="browser-evolved", exact=True).first).to_be_visible(timeout=30_000)

    use_workspace(demo_workspace, monkeypatch)  # what the app stored
    store = get_store()
    run = db.get_run(store, "browser-run")
    assert run.status == "done" and len(db.candidates(store, run.id)) == 8
    assert store.get_model("browser-evolved").kind == "merged"
