"""The page in Japanese and English: picked from the browser's language, changed with the switch in the header,
and messages made by event handlers in the page's language."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from rp_eval.ui import TABS
from rp_eval.ui.locale import JA, STRINGS
from tests.conftest import CHROMIUM, FLAGS
from tests.japanese import LATIN_TERMS

TAB_KEYS = ["models_tab", *(label for _, label in TABS)]
# English sentences long enough not to turn up by chance in data (model names, personas)
ENGLISH = [v.replace("**", "").replace("`", "")[:60] for k, v in STRINGS.items() if len(v) >= 12 and JA.get(k) != v]
ENGLISH = [v for v in ENGLISH if "{" not in v and "|" not in v]


@contextlib.contextmanager
def browser_page(browser_locale: str):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(locale=browser_locale, viewport={"width": 1280, "height": 900})
        yield context.new_page()
        browser.close()


def _open(page, url: str) -> None:
    page.goto(url)
    page.locator("#models-table").wait_for(timeout=60_000)


def _tabs_say(page, table: dict[str, str]) -> None:
    for key in TAB_KEYS:
        page.get_by_role("tab", name=table[key], exact=True).wait_for(timeout=15_000)


def _remove_nothing(page, expected: str) -> None:
    """Remove on the Models tab with no model chosen: the handler's message must say `expected`."""
    page.get_by_role("tab").first.click()
    page.locator("button.stop").first.click()
    page.locator("#models-status").get_by_text(expected).wait_for(timeout=30_000)


def _left_in_english(page) -> list[str]:
    body = page.inner_text("body")
    assert "__i18n__" not in body
    return [s for s in ENGLISH if s in body]


def test_japanese_browser_gets_japanese(app_url, artifacts):
    with browser_page("ja-JP") as page:
        _open(page, app_url)
        _tabs_say(page, JA)
        assert JA["demo_banner"][2:16] in page.locator("#demo-banner").inner_text()
        page.get_by_label(JA["source"]).first.wait_for()
        assert page.locator("#language-switch input[value=ja]").is_checked()
        for key in TAB_KEYS:  # every tab: nothing left in English, no untranslated key
            page.get_by_role("tab", name=JA[key], exact=True).click()
            page.wait_for_timeout(800)
            assert _left_in_english(page) == [], key
        page.get_by_role("tab", name=JA["chat_tab"], exact=True).click()
        page.get_by_role("button", name=JA["chat_send"], exact=True).wait_for()
        page.get_by_label(JA["chat_message"], exact=True).wait_for()
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts / "i18n-chat-ja.png"), full_page=True)

        # a message made by an event handler comes in Japanese
        _remove_nothing(page, JA["choose_model"])

        # ?lang=en overrides the browser, and the server follows it too
        _open(page, app_url + "/?lang=en")
        _tabs_say(page, STRINGS)
        _remove_nothing(page, STRINGS["choose_model"])


def test_english_browser_and_the_switch(app_url, artifacts):
    with browser_page("en-US") as page:
        _open(page, app_url)
        _tabs_say(page, STRINGS)
        page.get_by_role("tab", name=STRINGS["chat_tab"], exact=True).click()
        page.get_by_role("button", name=STRINGS["chat_send"], exact=True).wait_for()
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts / "i18n-chat-en.png"), full_page=True)
        assert [
            s for s in JA.values() if len(s) >= 6 and s not in STRINGS.values() and s in page.inner_text("body")
        ] == []
        _remove_nothing(page, STRINGS["choose_model"])

        # the switch turns the whole page Japanese at once, messages included, and survives a reload
        page.locator("#language-switch").get_by_text("日本語").click()
        _tabs_say(page, JA)
        page.get_by_label(JA["source"]).first.wait_for()
        # everything but the message already on the page, which stays in the language it was made in
        assert _left_in_english(page) == [STRINGS["choose_model"]]
        _remove_nothing(page, JA["choose_model"])
        assert "lang=ja" in page.url
        page.goto(app_url)  # no parameter: the cookie remembers
        page.locator("#models-table").wait_for(timeout=60_000)
        _tabs_say(page, JA)
        assert page.locator("#language-switch input[value=ja]").is_checked()

        page.locator("#language-switch").get_by_text("English").click()
        _tabs_say(page, STRINGS)
        _remove_nothing(page, STRINGS["choose_model"])


def test_login_page_in_both_languages_then_the_raters_page_in_japanese(demo_workspace, tmp_path, artifacts):
    from rp_eval import auth
    from rp_eval.ui import RATER_TABS
    from tests.conftest import running_app

    users = tmp_path / "users.yaml"
    auth.add_user(users, "suzuki", "rater password", "rater")
    with running_app(demo_workspace, tmp_path / "app.log", "--auth", str(users)) as url, browser_page("ja-JP") as page:
        page.goto(url)
        page.get_by_text(JA["login"]).wait_for(timeout=60_000)
        page.get_by_text(STRINGS["login"]).wait_for()  # before a page has a language: both
        page.screenshot(path=str(artifacts / "i18n-login-ja.png"))
        page.get_by_label("ユーザー名").fill("suzuki")  # Gradio's own login labels follow the browser too
        page.get_by_label("パスワード").fill("rater password")
        page.get_by_role("button", name="ログイン").click()
        for module, label in TABS:
            if module in RATER_TABS:
                page.get_by_role("tab", name=JA[label], exact=True).wait_for(timeout=60_000)
        assert page.get_by_role("tab", name=JA["models_tab"], exact=True).count() == 0


# -- every tab in Japanese: no English sentence, label or header left ------------------------------------------

# Code on the page: code blocks, editors, and the merge form's tables, whose headers are mergekit's YAML keys
CODE = "code, pre, textarea, .cm-editor, #merge-inputs, #merge-params"
# Gradio's own widgets (upload boxes, table tools) that Gradio itself leaves untranslated in Japanese
GRADIO_OWN = {"drop file here", "click to upload", "- or -", "upload file", "file", "search", "runs"}


# A button per tab whose click with nothing filled in answers with a message at once (and starts no long job)
FIRST_CLICK = {
    "models_tab": "add",
    "chat_tab": "chat_send",
    "rate_tab": "rate_new_pair",
    "evaluate_tab": "ev_export",
    "merge_tab": "mg_check",
    "evolve_tab": "evo_start",
    "finetune_tab": "ft_start",
}


def _visible_texts(page) -> list[dict]:
    """Every visible text on the page: its text, whether it sits in code, and whether in a table cell."""
    return page.evaluate(
        """(CODE) => {
        const out = [];
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          const el = node.parentElement, text = node.textContent.trim();
          if (!text || !el || !el.checkVisibility({visibilityProperty: true})) continue;
          if (el.closest('script, style, svg')) continue;
          const cell = !!el.closest('td') || (!!el.closest('.cell-wrap') && !el.closest('th'));
          out.push({text, code: !!el.closest(CODE), cell});
        }
        for (const el of document.querySelectorAll('input[placeholder], textarea[placeholder]')) {
          if (el.checkVisibility() && el.placeholder.trim()) out.push({text: el.placeholder, code: false, cell: false});
        }
        return out;
      }""",
        CODE,
    )


def _english(texts: list[dict], names: set[str]) -> list[str]:
    """The texts with an English word in them and no Japanese (a table cell only when it is a sentence)."""
    found = []
    for item in texts:
        text = item["text"]
        if item["code"] or any("\u3040" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef" for c in text):
            continue
        if text.lower() in GRADIO_OWN or text in names or re.fullmatch(r"[a-z0-9_]+( / [a-z0-9_]+)+", text):
            continue  # a list of option values ("base / union / model") is code too
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9_./'-]*", text) if w not in names]
        english = [
            w
            for w in words
            if not re.search(r"[\d_./]|[a-z][A-Z]|^[A-Z]{2,}$", w) and w.lower().strip("'-") not in LATIN_TERMS
        ]
        if english and (not item["cell"] or len(words) >= 3):
            found.append(text)
    return sorted(set(found))


def _names_on_the_page(url: str) -> set[str]:
    """Model and persona names and ids: data, shown as they are in any language."""
    from rp_eval.chat import session
    from rp_eval.models import registry
    from rp_eval.store import get_store

    names = {r.name for r in registry.list_models()} | {r.architecture for r in registry.list_models()}
    for pid, persona in session.personas(get_store()).items():
        names |= {pid, persona.name}
    return names


def _open_accordions(page) -> None:
    """What the accordions of the visible tab hold counts too."""
    for _ in range(30):
        closed = page.locator(".tabitem:visible button.label-wrap:not(.open)")
        if closed.count() == 0:
            break
        closed.first.click()
        page.wait_for_timeout(300)
    page.wait_for_timeout(800)


def test_every_tab_in_japanese_shows_no_english(app_url, demo_workspace, monkeypatch, artifacts):
    monkeypatch.setenv("RP_EVAL_HOME", str(demo_workspace))
    from rp_eval import store

    store._open.cache_clear()
    names = _names_on_the_page(app_url)
    with browser_page("ja-JP") as page:
        _open(page, app_url)
        left = {}
        for key in TAB_KEYS:
            page.get_by_role("tab", name=JA[key], exact=True).click()
            page.wait_for_timeout(1500)
            _open_accordions(page)
            if key in FIRST_CLICK:  # the message a first click with nothing filled in gets
                page.locator(".tabitem:visible").get_by_role(
                    "button", name=JA[FIRST_CLICK[key]], exact=True
                ).first.click()
                page.wait_for_timeout(4000)
            found = _english(_visible_texts(page), names)
            if found:
                left[key] = found
        assert left == {}, left


# -- the Japanese page at work: an evaluation running, the merge matrix, the leaderboard's figures -------------


def _seed_ratings(workspace: Path, monkeypatch) -> None:
    """Votes and scores for the demo models, stored before the app starts (the leaderboard then has figures)."""
    from rp_eval.ratings import arena
    from rp_eval.store import get_store
    from tests.conftest import use_workspace
    from tests.ratings.conftest import fake_reply

    use_workspace(workspace, monkeypatch)
    store = get_store()
    models = ["demo-llama-a", "demo-llama-b", "demo-mistral"]
    for n, winner in enumerate(["model_a", "model_b", "tie", "model_a", "bothbad", "model_a"]):
        view = arena.open_pair(store, f"r{n % 2}", models=models, reply=fake_reply)
        arena.vote(store, view.item_id, f"r{n % 2}", winner)
    for n in range(4):
        view = arena.open_single(store, f"r{n % 2}", models=models, reply=fake_reply)
        arena.score(
            store, view.item_id, f"r{n % 2}", {"naturalness": 3, "consistency": 4, "length_fit": 2, "overall": 3}
        )
    store.engine.dispose()


def test_japanese_page_at_work_evaluate_merge_leaderboard(demo_workspace, tmp_path, monkeypatch, artifacts):
    from playwright.sync_api import expect

    from tests.conftest import running_app
    from tests.japanese import english_words, japanese

    _seed_ratings(demo_workspace, monkeypatch)
    with running_app(demo_workspace, tmp_path / "app.log") as url, browser_page("ja-JP") as page:
        names = _names_on_the_page(url)
        _open(page, url)

        # Evaluate: every progress line the bar shows while the run goes, then the finished tab
        page.get_by_role("tab", name=JA["evaluate_tab"], exact=True).click()
        page.locator("#ev-limit input").fill("2")
        page.locator("#ev-run").click()
        lines: list[str] = []
        for _ in range(1200):  # up to 4 minutes on a busy machine
            text = page.locator("#ev-progress-text").inner_text()
            if text not in lines:
                lines.append(text)
            if JA["ev_finished"] in text:
                break
            page.wait_for_timeout(200)
        assert any(JA["ev_finished"] in line for line in lines), lines
        assert len(lines) >= 3, lines  # at least one line per model was seen besides idle and finished
        assert [line for line in lines if not japanese(line) or english_words(line, names)] == [], lines
        page.locator("#ev-status").get_by_text(JA["ev_done"].split("**")[-1][:6]).wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        left = _english(_visible_texts(page), names)
        assert left == [], left
        page.screenshot(path=str(artifacts / "i18n-evaluate-ja.png"), full_page=True)

        # Merge: the matrix says which pairs merge and why not, in Japanese
        page.get_by_role("tab", name=JA["merge_tab"], exact=True).click()
        picker = page.locator("#merge-check-models input").first
        for name in ("demo-llama-a", "demo-llama-b", "demo-mistral"):
            picker.click()
            picker.fill(name)
            page.get_by_role("option", name=name, exact=True).first.click()
        page.locator("#merge-check").click()
        expect(page.locator("#merge-matrix")).to_contain_text("マージ不可", timeout=60_000)
        cells = [c.strip() for c in re.split(r"[\t\n]", page.locator("#merge-matrix").inner_text())]
        reasons = [c for c in cells if len(c) > 12]
        assert reasons and all(japanese(c) and english_words(c, names | {"passthrough"}) == [] for c in reasons), cells
        left = _english(_visible_texts(page), names)
        assert left == [], left
        page.screenshot(path=str(artifacts / "i18n-merge-ja.png"), full_page=True)

        # Leaderboard: filled on opening; its figures are images (their words are checked in test_locale.py)
        page.get_by_role("tab", name=JA["leaderboard_tab"], exact=True).click()
        page.locator("#lb-summary").get_by_text("投票", exact=False).wait_for(timeout=60_000)
        page.locator("#lb-scores-plot img").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        left = _english(_visible_texts(page), names)
        assert left == [], left
        page.screenshot(path=str(artifacts / "i18n-leaderboard-ja.png"), full_page=True)
