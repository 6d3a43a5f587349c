"""Load (issue 12, part 3): 20 simultaneous clients chat (streaming) and rate blind pairs through the app's own
Gradio endpoints for a bounded time; no rating is lost or stored twice, no request fails, and the time to first
token is measured per request (95th percentile printed and written to test-artifacts/load.json). Then: a long
job in one session does not hold up another session's chat.

RP_EVAL_LOAD_SECONDS sets the time the clients run (default 40; the last round runs past it).
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import threading
import time
import urllib.request

from gradio_client import Client

from tests.reliability.test_lab_safety import sampling_inputs

CLIENTS = 20
SECONDS = float(os.environ.get("RP_EVAL_LOAD_SECONDS", "40"))
WINNERS = ["model_a", "model_b", "tie", "bothbad"]
MESSAGES = [
    "こんばんは。今日はどこへ案内してくれるの？",
    "少し疲れたから、休める場所はある？",
    "最近おもしろかったことを教えて。",
]


def _text(message: dict) -> str:
    content = message["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


def _chat_turn(client: Client, message: str, max_new: int) -> tuple[float | None, str]:
    """One streamed turn; (seconds to the first token shown, final status line)."""
    start, first = time.perf_counter(), None
    # the page's inputs in order (its events are not documented, so they go by position; the conversation is a
    # State, which the client does not send): message, persona, model a, model b, side by side, user, system,
    # greeting, frame, show raw, then temperature, top-p, top-k, min-p, repetition penalty, max new tokens, seed
    # (-1: random), stop strings
    inputs = [message, "samurai", "demo-llama-a", None, False, "あなた", "", 0, "auto", False,
              *sampling_inputs(max_new, -1)]  # fmt: skip
    job = client.submit(*inputs, api_name="/respond")
    for out in job:
        box = out[0]
        mine = len(box) >= 2 and box[-1]["role"] == "assistant" and _text(box[-2]) == message
        if first is None and mine and _text(box[-1]).replace("▍", "").strip():
            first = time.perf_counter() - start
    final = job.outputs()[-1]
    return first, str(final[3] or "")


def _client(index: int, url: str, deadline: float, out: dict, lock: threading.Lock) -> None:
    rng = random.Random(index)
    rater = f"load-{index:02d}"
    try:
        client = Client(url, verbose=False)
        while time.time() < deadline:
            for message in rng.sample(MESSAGES, 2):
                ttft, status = _chat_turn(client, message, 24)
                with lock:
                    out["turns"] += 1
                    if ttft is None or status.startswith("⚠️"):
                        out["errors"].append(f"{rater} chat: {status or 'no token'}")
                    else:
                        out["ttft"].append(ttft)
            _, _, status = client.predict(rater, "", rng.choice(MESSAGES), 24, 0.7, api_name="/rate_new_pair")
            if status.startswith("⚠️"):
                with lock:
                    out["errors"].append(f"{rater} pair: {status}")
                continue
            assert "demo-" not in status  # blind: no model name before the vote
            saved = client.predict(rater, status, api_name=f"/rate_vote_{rng.choice(WINNERS)}")
            found = re.search(r"#(\d+)", saved)
            with lock:
                if found:
                    out["acks"].append(int(found.group(1)))
                else:
                    out["errors"].append(f"{rater} vote: {saved}")
    except Exception as err:  # noqa: BLE001 - every failure is counted, and the test fails on any
        with lock:
            out["errors"].append(f"{rater}: {type(err).__name__}: {err}")


def test_twenty_clients_chat_and_rate_without_loss(shared_app, artifacts, monkeypatch):
    from sqlalchemy import func, select

    from rp_eval.store.ratings import VoteRow
    from tests.conftest import use_workspace

    url, workspace, log = shared_app
    out = {"turns": 0, "ttft": [], "acks": [], "errors": []}
    lock = threading.Lock()
    started = time.time()
    threads = [
        threading.Thread(target=_client, args=(i, url, started + SECONDS, out, lock), daemon=True)
        for i in range(CLIENTS)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=SECONDS + 120)
    wall = time.time() - started
    assert not any(th.is_alive() for th in threads), "a client hung"

    use_workspace(workspace, monkeypatch)
    from rp_eval.store import get_store

    db = get_store()
    assert db.integrity_ok()
    with db.transaction() as s:
        stored = dict(s.execute(select(VoteRow.id, VoteRow.rater).where(VoteRow.rater.like("load-%"))).all())
        items = s.scalar(select(func.count(VoteRow.item_id.distinct())).where(VoteRow.rater.like("load-%")))
    ttft = sorted(out["ttft"])
    p95 = ttft[min(len(ttft) - 1, int(0.95 * len(ttft)))] if ttft else None
    summary = {
        "clients": CLIENTS,
        "seconds": round(wall, 1),
        "chat_turns": out["turns"],
        "ttft_p50_s": round(statistics.median(ttft), 3) if ttft else None,
        "ttft_p95_s": round(p95, 3) if p95 is not None else None,
        "ttft_max_s": round(ttft[-1], 3) if ttft else None,
        "votes_acknowledged": len(out["acks"]),
        "votes_stored": len(stored),
        "errors": out["errors"][:20],
    }
    (artifacts / "load.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    print("\nload:", json.dumps(summary, ensure_ascii=False))
    assert not out["errors"], out["errors"][:10]
    assert out["turns"] >= 2 * CLIENTS and len(out["acks"]) >= CLIENTS  # every client got through a round
    assert len(set(out["acks"])) == len(out["acks"])  # no vote id handed out twice
    assert sorted(stored) == sorted(out["acks"])  # nothing lost, nothing extra
    assert items == len(stored)  # one vote per judged item
    with urllib.request.urlopen(url, timeout=10) as page:  # the app still serves its page
        assert page.status == 200
    assert "Traceback" not in log.read_text()


def test_a_long_job_in_one_session_does_not_hold_up_another_sessions_chat(shared_app):
    url, _, _ = shared_app
    long_session, chat_session = Client(url, verbose=False), Client(url, verbose=False)
    models = ["demo-llama-a", "demo-llama-b", "demo-mistral"]
    # an evaluation of three models, generating in batches for many seconds: the longest generation the app runs
    job = long_session.submit(models, "all", 60, 0, 48, 0.7, 2, None, "", "", "all", api_name="/_run")
    while len(job.outputs()) < 2:  # generating: a batch's progress came back
        assert not job.done(), "the evaluation ended before it could be overlapped"
        time.sleep(0.05)
    ttft, status = _chat_turn(chat_session, "ねえ、少しだけ話そう。", 24)
    assert ttft is not None and not status.startswith("⚠️"), status
    assert not job.done(), "the chat had to wait for the evaluation to finish"
    job.cancel()  # the app is stopped with the module; nothing to wait for
    print(f"\nchat during an evaluation: first token after {ttft:.2f} s; the evaluation ran on after it")
