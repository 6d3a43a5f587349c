"""A lab server's fairness between raters, over real HTTP against `python app.py --auth users.yaml`: one login's
generating page events are limited (`limit_events_per_login`) and another login's are not touched; a burst of
logins (each a deliberately slow password hash) does not hold up another rater's requests."""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid

import httpx
import pytest

from rp_eval.ui.chat_actions import FORM
from tests.conftest import demo_copy_with, running_app
from tests.reliability.test_lab_safety import PASSWORDS, TIMED, _chat_inputs, _endpoints, _login, _users

LONG = "long-random"  # random weights, a long context, greedy: it talks until its cap, so its events stay in flight
LIMIT = 2


@pytest.fixture(scope="module")
def lab(demo_build, tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("lablimits")
    workspace = demo_copy_with(demo_build, root, tokenizer, LONG, max_position_embeddings=8192)
    users = _users(root / "users.yaml")
    env = {"RP_EVAL_API_KEY": "", "RP_EVAL_LIMIT_EVENTS_PER_LOGIN": str(LIMIT)}
    with running_app(workspace, root / "app.log", "--auth", str(users), env=env) as url:
        yield url, root


def _long_chat(message: str) -> list:
    data = _chat_inputs(message)
    data[3] = LONG  # model A
    panel = 11  # the sampling panel's first input (chat_actions.FORM's order)
    data[panel + FORM.index("temperature")] = 0.0  # greedy, so the random model does not hit its end token by chance
    data[panel + FORM.index("max_new_tokens")] = 400  # seconds of work, long past the joins
    return data


def _join(c: httpx.Client, fn: int, data: list, session: str, **headers) -> httpx.Response:
    join = {"data": data, "fn_index": fn, "session_hash": session, "event_data": None, "trigger_id": None}
    return c.post("/gradio_api/queue/join", json=join, headers=headers)


def _finish(c: httpx.Client, session: str) -> dict:
    """The final message of the event of `session` (read from its event stream)."""
    with c.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as st:
        for line in st.iter_lines():
            if line.startswith("data:") and '"process_completed"' in line:
                return json.loads(line[5:])
    pytest.fail("the event stream ended without a result")


def test_one_login_can_not_fill_the_queue_and_other_raters_are_unaffected(lab):
    """rin sends four chat messages at once and ken two, at the same moment: two of rin's join, two get 429 with
    Retry-After and the message (English, and Japanese with the switch's cookie); both of ken's join. Once rin's
    replies are finished, rin may send again."""
    url, _ = lab
    rin, ken = _login(url, "rin"), _login(url, "ken")
    fn = _endpoints(rin)["respond"]
    answers: dict[str, list[tuple[httpx.Response, str]]] = {"rin": [], "ken": []}
    start = threading.Barrier(6)

    def send(who: str, client: httpx.Client) -> None:
        session = uuid.uuid4().hex
        start.wait()
        answers[who].append((_join(client, fn, _long_chat("長い話を聞かせて。"), session), session))

    threads = [threading.Thread(target=send, args=("rin", rin)) for _ in range(4)]
    threads += [threading.Thread(target=send, args=("ken", ken)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    statuses = {who: sorted(r.status_code for r, _ in got) for who, got in answers.items()}
    assert statuses == {"rin": [200, 200, 429, 429], "ken": [200, 200]}, {
        who: [(r.status_code, r.text[:200]) for r, _ in got] for who, got in answers.items()
    }
    for r, _ in answers["rin"]:
        if r.status_code == 429:
            assert r.headers["retry-after"].isdigit()
            assert "at most 2 at once for one login" in r.json()["detail"], r.text
    # while rin's two are still generating: the same refusal in the page's language
    rin.cookies.set("rp_lang", "ja")  # what the language switch sets
    r = _join(rin, fn, _long_chat("もう一つ。"), uuid.uuid4().hex)
    assert r.status_code == 429 and "1 つのログインで同時に 2 件まで" in r.json()["detail"], r.text
    rin.cookies.delete("rp_lang")
    r = _join(ken, fn, _long_chat("まだ？"), uuid.uuid4().hex, **{"accept-language": "ja,en;q=0.5"})
    assert r.status_code == 429 and "同時に 2 件まで" in r.json()["detail"], r.text  # ken is at his two too

    for who, client in (("rin", rin), ("ken", ken)):
        for r, session in answers[who]:
            if r.status_code == 200:
                done = _finish(client, session)
                assert done.get("success"), done
    r = _join(rin, fn, _chat_inputs("終わった？"), session := uuid.uuid4().hex)
    assert r.status_code == 200, r.text  # the finished events no longer count
    assert _finish(rin, session).get("success")


def test_a_burst_of_slow_logins_does_not_hold_up_another_raters_requests(lab):
    """Six logins at once (three with a wrong password, three right), each a password hash of a few tenths of a
    second; ken, signed in, asks for his page's description meanwhile. His requests are answered while the logins are still
    being checked: the first before the first login's answer, and in the middle of the burst they take far less
    than one login does. (The check on Gradio's event loop made every other request wait for each hash.)"""
    url, _ = lab
    ken = _login(url, "ken")

    def login(name: str, password: str) -> float:
        r = httpx.post(f"{url}/login", data={"username": name, "password": password}, timeout=120)
        assert r.status_code == (200 if password == PASSWORDS.get(name) else 400), r.text
        return time.perf_counter()

    quiet = []
    for _ in range(3):
        start = time.perf_counter()
        login("rin", PASSWORDS["rin"])
        quiet.append(time.perf_counter() - start)
    one_login = statistics.median(quiet)

    tries = [(name, "wrong password") for name in TIMED[:3]] + [("rin", PASSWORDS["rin"])] * 3
    answered: list[float] = []
    lock = threading.Lock()

    def attempt(name: str, password: str) -> None:
        at = login(name, password)
        with lock:
            answered.append(at)

    burst = [threading.Thread(target=attempt, args=t) for t in tries]
    began = time.perf_counter()
    for t in burst:
        t.start()
    time.sleep(0.05)  # the logins are in
    ken_times: list[tuple[float, float]] = []  # (sent, answered)
    while any(t.is_alive() for t in burst):
        sent = time.perf_counter()
        r = ken.get("/config")  # the page's description: for a signed-in person only
        assert r.status_code == 200 and r.json()["components"], r.text[:300]
        ken_times.append((sent, time.perf_counter()))
    for t in burst:
        t.join()
    took = [b - a for a, b in ken_times]
    report = {
        "one login (quiet), s": round(one_login, 3),
        "burst, s": round(max(answered) - began, 3),
        "logins answered at, s": [round(a - began, 3) for a in sorted(answered)],
        "ken's requests": len(took),
        "ken's median / max, s": (round(statistics.median(took), 3), round(max(took), 3)),
    }
    print(report)
    assert ken_times, report
    assert ken_times[0][1] < min(answered), report  # ordering: ken's first answer before any login's
    during = [b - a for a, b in ken_times if b < max(answered)]
    assert len(during) >= 3, report
    assert statistics.median(during) < one_login / 2, report  # generous: a hash is a few tenths of a second
