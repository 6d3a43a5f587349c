"""The Fine-tune tab says how long a run will be before it starts, refuses a warm-up as long as the run, and after
a run shows the stop check on 32 prompts of the evaluation task (English and Japanese; a configured tiny model)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import running_app
from tests.finetune.test_browser import _fill


@pytest.fixture(scope="module")
def tiny_app(tmp_path_factory, tokenizer):
    from tests.conftest import save_tiny

    root = tmp_path_factory.mktemp("ft-app")
    folder = save_tiny(root / "tiny-base", tokenizer)
    config = root / "rp_eval.yaml"
    config.write_text(f"models: ['{folder}']\n")
    with running_app(root / "workspace", root / "app.log", env={"RP_EVAL_CONFIG": str(config)}) as url:
        yield url


@pytest.mark.parametrize(
    ("lang", "tab", "training", "plan", "refused", "checked"),
    [
        ("en", "Fine-tune", "Training", "This run: 40 optimizer steps", "is not shorter than the run",
         "on 32 prompts of the evaluation task"),
        ("ja", "ファインチューニング", "学習", "この設定での学習：最適化ステップ 40 回", "それより長くなっています",
         "評価タスクのプロンプト 32 件"),
    ],
)  # fmt: skip
def test_the_plan_is_said_before_the_run(tiny_app, page, artifacts, lang, tab, training, plan, refused, checked):
    page.goto(f"{tiny_app}/?lang={lang}")
    page.get_by_role("tab", name=tab, exact=True).click()
    page.locator("#ft-base input").first.click()
    page.get_by_role("option", name=re.compile("tiny-base")).first.click()
    expect(page.locator("#ft-plan")).to_contain_text(plan, timeout=60_000)  # the defaults, before any click

    page.get_by_text(training, exact=True).click()
    _fill(page, "ft-max-steps", "8")
    _fill(page, "ft-warmup", "20")
    expect(page.locator("#ft-plan")).to_contain_text(refused, timeout=30_000)
    page.locator("#ft-start").click()
    expect(page.locator("#ft-result")).to_contain_text(refused, timeout=30_000)
    if lang == "ja":
        page.screenshot(path=str(artifacts / "finetune-plan-ja.png"), full_page=True)
        return

    _fill(page, "ft-warmup", "0.05")
    expect(page.locator("#ft-plan")).to_contain_text("This run: 8 optimizer steps", timeout=30_000)
    page.locator("#ft-start").click()
    expect(page.locator("#ft-progress-text")).to_contain_text(re.compile(r"done · step 8/8"), timeout=300_000)
    expect(page.locator("#ft-result")).to_contain_text(checked, timeout=30_000)
    expect(page.locator("#ft-log textarea")).to_have_value(re.compile("plan: 8 optimizer steps"), timeout=30_000)
    page.screenshot(path=str(artifacts / "finetune-plan-en.png"), full_page=True)
