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


def test_meta_evaluation_section_shows_the_table_and_names_a_bad_line(app_url, page, artifacts, demo_workspace):
    import shutil
    from pathlib import Path

    pairs = demo_workspace / "meta-pairs.jsonl"
    shutil.copy(Path(__file__).parent / "data" / "meta_pairs.jsonl", pairs)
    broken = demo_workspace / "broken-pairs.jsonl"
    broken.write_text(pairs.read_text(encoding="utf-8") + "{oops\n", encoding="utf-8")
    page.goto(app_url)
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#ev-models").wait_for(timeout=60_000)
    page.get_by_text("Meta-evaluation: does the score prefer the better reply?").click()
    page.locator("#meta-pairs textarea").fill(str(pairs))
    page.locator("#meta-run").click()
    page.locator("#meta-status").get_by_text("8 pairs; the combined score prefers").wait_for(timeout=120_000)
    page.locator("#meta-status").get_by_text("No pairs in: contradiction").wait_for(timeout=10_000)
    table = page.locator("#meta-table").inner_text()
    assert "combined" in table and "speaks_for_user" in table and "my_extra" in table
    page.locator("#ev-meta").screenshot(path=str(artifacts / "evaluate-meta.png"))
    page.locator("#meta-pairs textarea").fill(str(broken))
    page.locator("#meta-run").click()
    page.locator("#meta-status").get_by_text("broken-pairs.jsonl line 9: not valid JSON").wait_for(timeout=60_000)
    page.locator("#meta-pairs textarea").fill("/etc/passwd")
    page.locator("#meta-run").click()
    page.locator("#meta-status").get_by_text("pairs file '/etc/passwd' is outside the folders").wait_for(timeout=60_000)
