"""The smaller page fixes in Chromium, in English and Japanese: the format column says what "auto" became, the
Merge preset box is empty with the form, the Leaderboard is filled when its tab opens, and the rater's name is
still there after the page is loaded again. (A configured tiny model: no demo build needed.)"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import running_app


@pytest.fixture(scope="module")
def small_app(tmp_path_factory, tokenizer):
    from tests.conftest import save_tiny

    root = tmp_path_factory.mktemp("small-app")
    folder = save_tiny(root / "tiny-chat", tokenizer)
    config = root / "rp_eval.yaml"
    config.write_text(f"models: ['{folder}']\n")
    with running_app(root / "workspace", root / "app.log", env={"RP_EVAL_CONFIG": str(config)}) as url:
        yield url


@pytest.mark.parametrize(
    ("lang", "tabs", "computed"),
    [
        ("en", ("Models", "Merge", "Leaderboard", "Rate"), "bootstrap rounds"),
        ("ja", ("モデル", "マージ", "リーダーボード", "人手評価"), "ブートストラップ"),
    ],
)
def test_small_fixes_in_the_browser(small_app, page, artifacts, lang, tabs, computed):
    models, merge, leaderboard, rate = tabs
    page.goto(f"{small_app}/?lang={lang}")
    page.get_by_role("tab", name=models, exact=True).click()
    expect(page.locator("#models-table")).to_contain_text("auto → template", timeout=60_000)

    page.get_by_role("tab", name=merge, exact=True).click()
    expect(page.locator("#merge-recipe-file input").first).to_have_value("", timeout=30_000)

    page.get_by_role("tab", name=leaderboard, exact=True).click()  # no Refresh pressed
    expect(page.locator("#lb-summary")).to_contain_text(computed, timeout=60_000)

    page.get_by_role("tab", name=rate, exact=True).click()
    name = page.locator("#rate-rater input, #rate-rater textarea").first
    name.fill("hanako")
    name.blur()
    page.wait_for_timeout(500)
    page.reload()
    page.get_by_role("tab", name=rate, exact=True).click()
    expect(page.locator("#rate-rater input, #rate-rater textarea").first).to_have_value("hanako", timeout=30_000)
    page.screenshot(path=str(artifacts / f"small-fixes-{lang}.png"), full_page=True)
