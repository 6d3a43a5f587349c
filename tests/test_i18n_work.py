"""The Japanese page after the long actions of the Chat and Fine-tune tabs (the Evaluate, Merge and Leaderboard tabs
at work are in test_i18n.py): no English sentence of the project's on the page, in the visible text, the chat's
screen-reader labels or the run's log."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from rp_eval.chat.formats import FORMATS
from rp_eval.ui.locale import JA
from tests.chat_tab.test_browser import _pick, _send
from tests.chat_tab.test_browser_habits import _wait_messages
from tests.finetune.test_browser import _fill
from tests.japanese import english_words, japanese
from tests.test_i18n import _english, _names_on_the_page, _open, _visible_texts, browser_page

LABELS = """(sel) => [...document.querySelectorAll(sel + ' [aria-label], ' + sel + ' [title]')]
    .filter((el) => el.checkVisibility()).map((el) => el.getAttribute('aria-label') || el.getAttribute('title'))"""


def test_the_japanese_page_after_a_chat_and_a_finetune_run(app_url, demo_workspace, monkeypatch, artifacts):
    monkeypatch.setenv("RP_EVAL_HOME", str(demo_workspace))
    from rp_eval import store

    store._open.cache_clear()
    names = _names_on_the_page(app_url)
    with browser_page("ja-JP") as page:
        _open(page, app_url)

        page.get_by_role("tab", name=JA["chat_tab"], exact=True).click()
        _pick(page, "chat-model-a", "demo-llama-a")
        _send(page, "こんにちは、今日はどんな一日でしたか")
        _wait_messages(page, "chat-box-a", 3)
        page.wait_for_timeout(1000)
        left = _english(_visible_texts(page), names)
        labels = [x for x in page.evaluate(LABELS, "#chat-box-a") if x and english_words(x, names)]
        page.screenshot(path=str(artifacts / "i18n-chat-ja.png"), full_page=True)
        assert (left, labels) == ([], []), (left, labels)

        page.get_by_role("tab", name=JA["finetune_tab"], exact=True).click()
        page.locator("#ft-base input").first.click()
        page.get_by_role("option", name=re.compile("demo-llama-a")).first.click()
        page.locator("#ft-preview-button").click()
        page.locator("#ft-preview mark .ft-special").first.wait_for(timeout=60_000)
        preview = page.locator("#ft-preview p").all_inner_texts()
        assert preview and all(japanese(p) for p in preview[:2]), preview
        page.get_by_text(JA["ft_training"], exact=True).click()
        for elem_id, value in (("ft-max-steps", "4"), ("ft-batch", "4"), ("ft-accum", "1")):
            _fill(page, elem_id, value)
        page.locator("#ft-start").click()
        expect(page.locator("#ft-progress-text")).to_contain_text(JA["run_status_done"], timeout=300_000)
        log = page.locator("#ft-log textarea")
        expect(log).to_have_value(re.compile("アダプターを「"), timeout=30_000)
        lines = [line for line in log.input_value().splitlines() if line.strip()]
        allowed = names | set(FORMATS) | {"LoRA", "QLoRA", "loss", "eval_loss", "merge_and_unload"}  # names, as data
        english = [line for line in lines if not japanese(line) or english_words(line, allowed)]
        page.wait_for_timeout(1000)
        left = _english(_visible_texts(page), names)
        page.screenshot(path=str(artifacts / "i18n-finetune-ja.png"), full_page=True)
        assert (left, english) == ([], []), (left, english)
