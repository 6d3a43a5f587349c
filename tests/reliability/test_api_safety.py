"""The OpenAI-compatible API tried with what a careless or unfriendly client sends, over real HTTP (httpx) against
`python app.py`: validation before a stream's first byte, the inputs that answered 500 with a traceback, the
limits (body, prompt against the model's context, stop strings, max_tokens, uploads, requests in flight), a
client that leaves, SIGTERM, and a Hypothesis fuzz of the request body."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import demo_copy_with, running_app

KEY = "k3y"
AUTH = {"Authorization": f"Bearer {KEY}"}
MESSAGES = [{"role": "user", "content": "こんにちは。今日は何をしていたの？"}]
LONG = "long-random"  # a random-weight model with a long context: it talks until its cap


@pytest.fixture(scope="module")
def api(demo_build, tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("apisafety")
    workspace = demo_copy_with(demo_build, root, tokenizer, LONG, max_position_embeddings=8192)
    env = {
        "RP_EVAL_API_KEY": KEY,
        "RP_EVAL_LIMIT_UPLOAD_MB": "1",
        "RP_EVAL_LIMIT_MAX_TOKENS": "6000",
        "RP_EVAL_LIMIT_IN_FLIGHT_PER_USER": "2",
        "RP_EVAL_LIMIT_QUEUE_PER_USER": "1",
    }
    with running_app(workspace, root / "app.log", env=env) as url:
        yield url, root / "app.log"


def _post(url: str, body, headers: dict | None = None, timeout: float = 120) -> httpx.Response:
    headers = {**AUTH, **(headers or {})}
    if isinstance(body, bytes | str):
        headers.setdefault("content-type", "application/json")
        return httpx.post(f"{url}/v1/chat/completions", content=body, headers=headers, timeout=timeout)
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=timeout)


def _json_error(r: httpx.Response, status: int | tuple, *words: str) -> str:
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("application/json"), r.headers
    assert "Traceback" not in r.text
    message = r.json()["error"]["message"]
    for w in words:
        assert w in message, (w, message)
    return message


def test_a_streamed_request_that_is_invalid_gets_the_same_json_error_as_a_plain_one(api):
    """Finding 7: the error comes before the first byte, as a 4xx JSON body, streamed or not."""
    url, _ = api
    cases = [
        ({"messages": [{"role": "user", "content": " "}]}, 400, "empty"),
        ({"messages": [{"role": "system", "content": "あなたは猫です。"}]}, 400, "user message"),
        ({"messages": [{"role": "tool", "content": "x"}]}, 400, "role"),
        ({"model": "no-such-model"}, 404, "not registered"),
    ]
    for change, status, word in cases:
        body = {"model": "demo-mistral", "messages": MESSAGES, "max_tokens": 8, **change}
        plain = _json_error(_post(url, body), status, word)
        streamed = _json_error(_post(url, {**body, "stream": True}), status, word)
        assert plain == streamed


def test_the_inputs_that_crashed_get_a_4xx_with_a_message(api):
    """Finding 8: lone surrogates, JSON nested 5,000 deep, a content part whose text is a number, a seed of
    2**64, a non-ASCII Authorization header."""
    url, _ = api
    for where in ('"model": "\\ud800"', '"role": "\\udfff"', '"content": "a\\ud800b"'):
        fields = {"model": '"model": "demo-mistral"', "role": '"role": "user"', "content": '"content": "やあ"'}
        fields[where.split('"')[1]] = where
        raw = f'{{{fields["model"]}, "messages": [{{{fields["role"]}, {fields["content"]}}}]}}'
        _json_error(_post(url, raw), 400, "surrogate")
    _json_error(_post(url, "[" * 5000 + "]" * 5000), 400, "nests deeper")
    _json_error(_post(url, '{"x": ' * 5000 + "{}" + "}" * 5000), 400, "nests deeper")
    body = {"model": "demo-mistral", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}
    _json_error(_post(url, body), 400, "messages.0.content")
    _json_error(_post(url, {"model": "demo-mistral", "messages": MESSAGES, "seed": 2**64}), 400, "seed")
    r = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "demo-mistral", "messages": MESSAGES},
        headers={"Authorization": "Bearer ключ".encode()},
        timeout=60,
    )
    _json_error(r, 401, "API key")


def test_limits_are_enforced_before_any_work(api):
    """Finding 5: body size, prompt length against the model's context, stop count and length, max_tokens,
    uploads."""
    url, _ = api
    huge = {"model": "demo-mistral", "messages": [{"role": "user", "content": "あ" * 2_000_000}]}
    _json_error(_post(url, huge), 413, "limit_body_bytes")
    start = time.perf_counter()
    long_prompt = {"model": "demo-mistral", "messages": [{"role": "user", "content": "今日は晴れ。" * 2000}]}
    _json_error(_post(url, long_prompt), 400, "context of 2048")
    assert time.perf_counter() - start < 30
    base = {"model": "demo-mistral", "messages": MESSAGES, "max_tokens": 8}
    _json_error(_post(url, {**base, "stop": [f"s{i}" for i in range(20)]}), 400, "stop", "16")
    _json_error(_post(url, {**base, "stop": "x" * 200}), 400, "stop", "64")
    _json_error(_post(url, {**base, "max_tokens": 100_000}), 400, "max_tokens", "6000")
    files = {"files": ("big.json", b"{" + b" " * (2 * 2**20) + b"}", "application/json")}
    r = httpx.post(f"{url}/gradio_api/upload", files=files, timeout=60)
    assert r.status_code == 413, (r.status_code, r.text[:300])


def test_sampling_fields_are_supported_or_refused_by_name(api):
    url, _ = api
    base = {"model": "demo-mistral", "messages": MESSAGES, "max_tokens": 4}
    for field, value in (
        ("mirostat_mode", 2),
        ("tfs", 0.5),
        ("tools", [{"type": "function", "function": {"name": "f"}}]),
        ("response_format", {"type": "json_object"}),
        ("top_logprobs", 3),  # without logprobs: true
    ):
        _json_error(_post(url, {**base, field: value}), 400, field)
    _json_error(_post(url, {**base, "n": 9}), 400, "n")  # past limit_choices (8)
    supported = {"top_k": 20, "min_p": 0.05, "seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.3}
    supported |= {"logit_bias": {"5": 10}, "typical_p": 0.9, "dry_multiplier": 0.8, "xtc_probability": 0.5}
    r = _post(url, {**base, **supported, "logit_bias": {}, "seed": -1, "user": "someone"})
    assert r.status_code == 200, r.text
    r = _post(url, {**base, **supported})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] is not None


def _long(url: str, **extra) -> dict:
    return {"model": LONG, "messages": MESSAGES, "max_tokens": 5000, "temperature": 0, **extra}


def test_requests_in_flight_are_limited_and_a_client_that_leaves_stops_its_generation(api):
    """Finding 5: two streams of one client are in flight, a third waits in the client's queue (one place:
    limit_queue_per_user 1), a fourth gets 429 with Retry-After; closing the streams lets the third through;
    a plain request whose client gave up stops too (its place is free again soon)."""
    url, _ = api
    with (
        httpx.Client(timeout=120, headers=AUTH) as a,
        httpx.Client(timeout=120, headers=AUTH) as b,
        ThreadPoolExecutor(1) as pool,
    ):
        streams = [c.stream("POST", f"{url}/v1/chat/completions", json=_long(url, stream=True)) for c in (a, b)]
        opened = [s.__enter__() for s in streams]
        lines = [r.iter_lines() for r in opened]  # kept: an iterator dropped closes its response (httpx)
        for r, line in zip(opened, lines, strict=True):
            assert r.status_code == 200
            assert next(line).startswith("data:")
        third = pool.submit(_post, url, _long(url, max_tokens=8))
        time.sleep(2)
        assert not third.done(), "the third request was answered while two of its client's were generating"
        fourth = _post(url, _long(url, max_tokens=8))
        _json_error(fourth, 429, "limit_in_flight_per_user", "limit_queue_per_user", "1 waiting")
        assert fourth.headers["retry-after"].isdigit()
        for s in streams:
            s.__exit__(None, None, None)
        answered = third.result(timeout=60)
        assert answered.status_code == 200, answered.text[:300]
    assert _free_within(url, 20), ("closing the streams did not free their places", SEEN[-4:])
    for _ in range(2):  # plain requests whose client gives up after a second
        with pytest.raises(httpx.ReadTimeout):
            _post(url, _long(url), timeout=1.0)
    assert _free_within(url, 20), "the abandoned requests kept generating"


SEEN: list = []


def _free_within(url: str, seconds: float) -> bool:
    """Whether this client soon has both its places again: one long stream held open, and one more request
    beside it answered (a request still generating anywhere for this client would make one of them wait)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        body = _long(url, stream=True)
        try:  # a request that waits in the queue (a place still taken) times out: not free yet
            with (
                httpx.Client(timeout=5, headers=AUTH) as c,
                c.stream("POST", f"{url}/v1/chat/completions", json=body) as held,
            ):
                SEEN.append(held.status_code)
                if held.status_code == 200:
                    lines = held.iter_lines()  # kept until the request beside it is answered
                    next(lines)
                    r = _post(url, {"model": "demo-mistral", "messages": MESSAGES, "max_tokens": 2}, timeout=5)
                    SEEN.append((r.status_code, r.text[:150]))
                    if r.status_code == 200 and lines is not None:  # the held stream was still open
                        return True
        except httpx.TimeoutException as err:
            SEEN.append(repr(err))
        time.sleep(0.5)
    return False


# Text as clients send it, lone surrogates included (JSON carries them as \\ud800; Hypothesis leaves them out of
# its default text), and integers past 64 bits: what crashed the API with a 500 (finding 8).
TEXT = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=20)
INTEGERS = st.integers() | st.sampled_from([2**63, 2**64, -(2**64), 10**30])
JSON = st.recursive(
    st.none() | st.booleans() | INTEGERS | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)
PART = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]), "text": JSON})
MESSAGE = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "system", "tool"]) | TEXT,
        "content": TEXT | st.lists(PART, max_size=2),
    }
)
SHAPED = st.fixed_dictionaries(  # a request of the right shape whose every text and number is fuzzed
    {"model": st.just("demo-mistral") | TEXT, "messages": st.lists(MESSAGE, min_size=1, max_size=3)},
    optional={"seed": INTEGERS, "stop": TEXT | st.lists(TEXT, max_size=3), "max_tokens": st.just(4) | INTEGERS},
)
FIELDS = ["model", "messages", "max_tokens", "temperature", "top_p", "top_k", "stop", "seed", "stream", "n", "min_p"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    whole=st.one_of(st.none(), JSON),
    field=st.sampled_from(FIELDS),
    value=JSON | st.lists(MESSAGE, min_size=1, max_size=3),
    raw=st.binary(max_size=50),
    shaped=SHAPED,
)
def test_any_request_body_gets_an_answer_never_a_5xx_or_a_traceback(api, whole, field, value, raw, shaped):
    url, _ = api
    base = {"model": "demo-mistral", "messages": MESSAGES, "max_tokens": 4}
    for body in (whole, {**base, field: value}, raw, {"max_tokens": 4, **shaped}):
        if body is None:
            continue
        r = _post(url, body if isinstance(body, bytes) else json.dumps(body))
        assert r.status_code < 500, (body, r.status_code, r.text[:300])
        assert "Traceback" not in r.text
        if r.status_code >= 400:
            assert r.json()["error"]["message"]


def _exited(pid: int) -> bool:
    """Gone, or a zombie its parent (running_app) has not waited for yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_sigterm_stops_the_server_within_seconds_with_a_stream_open(demo_build, tmp_path):
    workspace = tmp_path / "workspace"
    shutil.copytree(demo_build, workspace)
    with running_app(workspace, tmp_path / "app.log") as url:
        port = url.rsplit(":", 1)[1]
        pid = int(subprocess.check_output(["pgrep", "-f", f"app.py --port {port}"]).split()[0])
        body = {"model": "demo-mistral", "messages": MESSAGES, "max_tokens": 1500, "stream": True}
        with httpx.Client(timeout=60) as c, c.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            start = time.perf_counter()
            os.kill(pid, signal.SIGTERM)
            while not _exited(pid) and time.perf_counter() - start < 15:
                time.sleep(0.1)
            assert _exited(pid) and time.perf_counter() - start < 8, "SIGTERM took too long"
    log = (tmp_path / "app.log").read_text()
    assert "ERROR" not in log and "Traceback" not in log, log[-3000:]  # a clean shutdown log


def test_sigterm_with_a_page_open_logs_no_error(demo_build, tmp_path, page):
    """An open page keeps an event stream that outlives the 3 s grace; uvicorn called that 'ERROR: Cancel 1 running
    task(s)' (the report's shutdown log): now one INFO line says the stream was closed."""
    workspace = tmp_path / "workspace"
    shutil.copytree(demo_build, workspace)
    with running_app(workspace, tmp_path / "app.log") as url:
        port = url.rsplit(":", 1)[1]
        pid = int(subprocess.check_output(["pgrep", "-f", f"app.py --port {port}"]).split()[0])
        page.goto(url)
        page.locator("#models-table").wait_for(timeout=60_000)
        start = time.perf_counter()
        os.kill(pid, signal.SIGTERM)
        while not _exited(pid) and time.perf_counter() - start < 15:
            time.sleep(0.1)
        assert _exited(pid) and time.perf_counter() - start < 8, "SIGTERM took too long"
    log = (tmp_path / "app.log").read_text()
    assert "ERROR" not in log and "Traceback" not in log and "Cancel" not in log, log[-3000:]
    assert "stream(s) closed" in log, log[-3000:]  # the path this test is for was taken
