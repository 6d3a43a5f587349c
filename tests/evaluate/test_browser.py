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


# -- past runs reopened after a restart, in English and Japanese (tiny models: no demo build needed) ----------

import re  # noqa: E402

import pytest  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from tests.conftest import ROOT, running_app, save_tiny, use_workspace  # noqa: E402

SCREENSHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture
def evaluated(tmp_path, tokenizer, monkeypatch):
    """A workspace where two tiny models were evaluated by an earlier process, and the app started afresh."""
    from rp_eval import store
    from rp_eval.chat.generate import GenerationSettings
    from rp_eval.evaluate.runner import EvalConfig, evaluate
    from rp_eval.models import registry

    workspace = use_workspace(tmp_path / "workspace", monkeypatch)
    folders = [save_tiny(tmp_path / "tiny-a", tokenizer, seed=1),
               save_tiny(tmp_path / "tiny-b", tokenizer, architecture="mistral", seed=2)]  # fmt: skip
    for name, folder in zip(("tiny-a", "tiny-b"), folders, strict=True):
        registry.add_model(str(folder), name)
    settings = GenerationSettings(max_new_tokens=16, temperature=0.7)
    evaluate(EvalConfig(models=["tiny-a", "tiny-b"], limit=6, batch_size=6, generation=settings))
    store.get_store().engine.dispose()
    store._open.cache_clear()
    config = tmp_path / "rp_eval.yaml"  # models configured: the app starts without building the demo models
    config.write_text(f"models: ['{folders[0]}']\n")
    with running_app(workspace, tmp_path / "app.log", env={"RP_EVAL_CONFIG": str(config)}) as url:
        yield url


def _header_heights(page, elem_id: str) -> list[float]:
    return page.locator(f"#{elem_id} thead th").evaluate_all(
        "cells => cells.map(c => c.getBoundingClientRect().height)"
    )


@pytest.mark.parametrize(
    ("lang", "tab", "showing", "drill_words", "bad_items"),
    [
        ("en", "Evaluate", "Showing 2 stored runs", "The conversation the reply answers", "Items must be at least 0"),
        ("ja", "評価", "保存済みの実行 2 件を表示中", "この応答が答えている会話", "項目数 は 0 以上にしてください"),
    ],
)
def test_past_runs_are_reopened_after_a_restart(evaluated, page, artifacts, lang, tab, showing, drill_words, bad_items):
    page.goto(f"{evaluated}/?lang={lang}")
    page.get_by_role("tab", name=tab, exact=True).click()
    status = page.locator("#ev-status")
    expect(status).to_contain_text(showing, timeout=120_000)  # opened on the stored runs, no click needed
    table = page.locator("#ev-table")
    expect(table).to_contain_text("tiny-b", timeout=30_000)
    assert "tiny-a" in table.inner_text() and {"en": "combined", "ja": "総合"}[lang] in table.inner_text()
    assert re.search(r"#\d+ · tiny-a", page.locator("#ev-pick").inner_text())  # the runs chosen for showing
    assert "tiny-a" in page.locator("#ev-runs").inner_text()
    assert max(_header_heights(page, "ev-table")) < 90  # headers keep whole words, never a letter a line

    plot = page.locator("#ev-metric-plot img")
    expect(plot).to_be_visible(timeout=30_000)
    before = plot.get_attribute("src")
    page.locator("#ev-metric-group label").nth(4).click()  # one metric group at a time
    expect(plot).not_to_have_attribute("src", before, timeout=30_000)

    page.screenshot(path=str(artifacts / f"evaluate-reopened-before-drill-{lang}.png"), full_page=True)
    page.locator("#ev-drill").get_by_text("tiny-a").first.click()
    detail = page.locator("#ev-detail")
    expect(detail).to_contain_text(drill_words, timeout=30_000)
    assert ("combined" if lang == "en" else "総合") in detail.inner_text() and "tiny-a ·" in detail.inner_text()
    # each metric by its identifier on the English page (the weights file's names), in words on the Japanese one
    assert {"en": "natural_stop", "ja": "自然に終わった"}[lang] in detail.inner_text()
    if lang == "ja":
        assert "natural_stop" not in detail.inner_text() and "自然に終わった" in table.inner_text()
    page.locator("#ev-metric-group label").first.click()
    page.screenshot(path=str(artifacts / f"evaluate-reopened-{lang}.png"), full_page=True)
    if lang == "ja":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "evaluate-reopened-ja.png"), full_page=True)

    page.locator("#ev-export").click()  # export works on a reopened result
    expect(page.locator("#ev-report")).to_contain_text(".html", timeout=60_000)

    page.locator("#ev-limit input").first.fill("-5")
    page.locator("#ev-run").click()
    expect(status).to_contain_text(bad_items, timeout=30_000)
    assert "Error" not in page.locator("#ev-table").inner_text()  # the panels keep what they showed
    expect(table).to_contain_text("tiny-b")
