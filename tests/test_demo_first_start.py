"""The first start: the address answers at once with a page showing the demo build's progress (503 with
Retry-After, so API clients come back), the terminal keeps its bar, and the port is handed to the real server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from rp_eval.firststart import STATUS_PATH, waiting_page
from tests.conftest import ROOT, free_port


def _get(url: str) -> tuple[int, dict, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def test_the_waiting_page_shows_progress_and_frees_the_port():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with waiting_page("127.0.0.1", port) as report:
        code, headers, page = _get(base + "/")
        assert code == 503 and headers["Retry-After"] == "5" and "初めての起動" in page and "First start" in page
        report("demo-llama-a loss 3.21", 120, 780)
        code, _, body = _get(base + STATUS_PATH)
        status = json.loads(body)
        assert code == 503 and (status["message"], status["done"], status["total"]) == (
            "demo-llama-a loss 3.21",
            120,
            780,
        )
        assert status["elapsed_s"] >= 0 and status["left_s"] is not None and "残り約" in status["clock"]
        assert 'value="120" max="780"' in _get(base + "/?lang=en")[2]
        code, _, body = _get(base + "/v1/models")
        assert code == 503 and "starting" in json.loads(body)["error"]["message"]
        report("<script>alert(1)</script>", 1, 2)
        assert "<script>alert(1)</script>" not in _get(base + "/")[2]  # escaped
    with socket.socket() as s:  # the real server can bind the port now
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_a_fresh_app_answers_within_seconds_while_it_builds(tmp_path):
    """`python app.py` on an empty workspace: the page answers long before the build could be done."""
    port = free_port()
    env = {**os.environ, "RP_EVAL_HOME": str(tmp_path / "workspace"), "HF_HUB_OFFLINE": "1", "RP_EVAL_DEMO_TRAIN": "1"}
    env.pop("RP_EVAL_MODELS", None)
    log = tmp_path / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    try:
        started, answer = time.perf_counter(), None
        while time.perf_counter() - started < 60 and answer is None:
            try:
                answer = _get(f"http://127.0.0.1:{port}/")
            except OSError:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.2)
        assert answer is not None, log.read_text()
        seconds = time.perf_counter() - started
        code, _, page = answer
        assert code == 503 and "first-start-bar" in page, page[:300]
        deadline = time.time() + 60
        while time.time() < deadline:  # the bar moves as the build goes
            status = json.loads(_get(f"http://127.0.0.1:{port}{STATUS_PATH}")[2])
            if status["done"] > 0:
                break
            time.sleep(0.5)
        assert status["done"] > 0 and status["total"] > status["done"] and "loss" in status["message"]
        assert "building demo models" in log.read_text()  # the terminal's bar is still there
        assert seconds < 15, seconds  # settings and the demo check only: no torch, no gradio before the page
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_the_banner_says_how_the_demo_models_were_built_here(workspace):
    from rp_eval.models import demo
    from rp_eval.ui import _demo_banner

    assert "trained briefly" in _demo_banner() and "minute" not in _demo_banner()  # nothing known: no claim
    demo.demo_dir().mkdir(parents=True)
    (demo.demo_dir() / "BUILD.json").write_text(json.dumps({"seconds": 84, "steps": 1000, "cpu_threads": 2}))
    assert "1000 optimizer steps in 84 seconds" in _demo_banner()
    shipped = {"seconds": 705, "steps": 860, "cpu_threads": 2, "shipped": True}
    (demo.demo_dir() / "BUILD.json").write_text(json.dumps(shipped))
    banner = _demo_banner()
    assert "860 optimizer steps, 705 seconds on 2 CPU threads" in banner and "ships that build" in banner
    assert "on this machine" not in banner  # a copied build was not trained here
