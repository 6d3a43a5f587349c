"""A page closed in the middle of a reply stops that reply: in headless Chromium against `python app.py`, a
random-weight model that talks until its cap (greedy, 1,024 new tokens) is asked for a reply; the page is closed
once the first words are on screen. Gradio sees the event stream go and closes the chat handler's generator: the
turn is stored as "stopped", well short of the cap, seconds later (a page whose close went unnoticed would go on to
the cap and store "length"). Closing the handler closes the reply's stream, and that cancels the request's row in
the generation service (tests/chat/test_service.py, cancel in the middle)."""

from __future__ import annotations

import re
import time

from rp_eval.ui.locale import STRINGS
from tests.chat_tab.test_browser import _pick, _send
from tests.conftest import CHROMIUM, FLAGS, demo_copy_with, running_app, use_workspace

LONG = "long-random"
CAP = 1024


def _last_reply(workspace):
    from rp_eval.store import chat as chat_store
    from rp_eval.store import get_store

    store = get_store()
    conversations = chat_store.list_conversations(store, chat_store.EVERYONE)
    if not conversations:
        return None
    turns = [t for t in chat_store.turns(store, conversations[0].id) if t.role == "assistant" and t.model == LONG]
    return turns[-1] if turns else None


def test_closing_the_page_stops_its_reply(demo_build, tmp_path, tokenizer, monkeypatch):
    from playwright.sync_api import sync_playwright

    workspace = demo_copy_with(demo_build, tmp_path, tokenizer, LONG, max_position_embeddings=8192)
    with running_app(workspace, tmp_path / "app.log") as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.get_by_role("tab", name="Chat").click()
            _pick(page, "chat-model-a", LONG)
            page.get_by_text(STRINGS["chat_sampling"], exact=True).click()
            _pick(page, "chat-preset", "Greedy")
            page.locator("#chat-max-new input[type=number]").fill(str(CAP))
            page.locator("#chat-max-new input[type=number]").press("Enter")
            _send(page, "長い話を聞かせて。")
            page.wait_for_function(
                "() => (document.querySelector('#chat-box-a')?.innerText || '').length > 200",
                polling=250,
                timeout=60_000,
            )
            # no screenshot here: with the reply streaming, a loaded 2-core machine's renderer gave no frame in 30 s
            closed = time.monotonic()
            page.close()
            browser.close()
        use_workspace(workspace, monkeypatch)
        reply = None
        while time.monotonic() - closed < 60:
            reply = _last_reply(workspace)
            if reply is not None:
                break
            time.sleep(0.2)
        stored_after = time.monotonic() - closed
        assert reply is not None, (tmp_path / "app.log").read_text()[-3000:]
        # stopped by the closed page: not the cap's "length", not an end token
        assert reply.finish_reason == "stopped", (reply.finish_reason, reply.new_tokens)
        shown = len(tokenizer(reply.content, add_special_tokens=False)["input_ids"])  # a stopped turn keeps no count
        assert 0 < shown < CAP * 0.9, shown
        assert stored_after < 30
        # the server is still there for the next page
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page()
            page.goto(url)
            page.get_by_role("tab", name="Chat").click()
            assert re.search("Chat", page.locator("body").inner_text())
            browser.close()
