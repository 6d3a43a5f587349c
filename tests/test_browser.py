"""The page as a person sees it: the app in a subprocess, driven by headless Chromium through Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(demo_workspace, tmp_path):
    port = free_port()
    env = {**os.environ, "RP_EVAL_HOME": str(demo_workspace), "HF_HUB_OFFLINE": "1"}
    env.pop("RP_EVAL_MODELS", None)
    log = open(tmp_path / "app.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            assert proc.poll() is None, (tmp_path / "app.log").read_text()
            time.sleep(0.5)
    else:
        pytest.fail("the app did not start in 120 s:\n" + (tmp_path / "app.log").read_text())
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture
def page():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser.new_page(viewport={"width": 1280, "height": 900})
        browser.close()


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
    page.get_by_text("folder '/no/such/folder' does not exist").wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts / "models-tab-bad-path.png"), full_page=True)
    assert page.get_by_text("demo-mistral", exact=True).first.is_visible()
