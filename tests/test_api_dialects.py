"""The API as role-play clients and evaluation harnesses speak to it, over real HTTP against `python app.py`:
SillyTavern's Chat Completion body (several system messages: main prompt, card, "[Start a new Chat]"), a chat
longer than the context (oldest turns dropped, counted), lm-eval's `num_concurrent` burst of 8 from one client
(waits its turn, no 429), SillyTavern's multi-swipe (`n`), OpenAI's error shape (`param`, string `code`, unknown
routes)."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import running_app

MODEL = "demo-llama-a"  # a Llama-2 format model: the format that once dropped every system message but the first
MAIN = "あなたはロールプレイの相手です。キャラクターになりきって、地の文は控えめに返事をしてください。"
CARD = (
    "[キャラクター: 小夜]\n説明: 港町の古本屋を継いだ二十歳。口数は少ないが、本の話になると止まらない。\n"
    "性格: 内気、几帳面、紅茶党。\nシナリオ: 雨の午後、閉店間際の店に客が一人だけ残っている。"
)
GREETING = "……いらっしゃいませ。雨、まだ止みませんね。"
ASK = "何かおすすめの本はありますか？"


@pytest.fixture(scope="module")
def url(demo_build, tmp_path_factory):
    root = tmp_path_factory.mktemp("dialects")
    shutil.copytree(demo_build, root / "workspace")
    with running_app(root / "workspace", root / "app.log", env={"RP_EVAL_API_KEY": ""}) as base:
        yield base


def _chat(url: str, body: dict, timeout: float = 120) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=timeout)


def _sillytavern(messages: list[dict], **extra) -> dict:
    """A body shaped as SillyTavern's Chat Completion source (custom OpenAI-compatible endpoint) sends it: its
    sampler fields at their defaults beside the messages."""
    return {
        "messages": messages,
        "model": MODEL,
        "temperature": 1,
        "frequency_penalty": 0,
        "presence_penalty": 0,
        "top_p": 1,
        "max_tokens": 8,
        "stream": False,
        "logit_bias": {},
        "seed": -1,
        "n": 1,
        "user_name": "User",
        "char_name": "小夜",
        "group_names": [],
        **extra,
    }


def test_the_card_in_sillytaverns_extra_system_messages_reaches_the_model(url):
    bare = [
        {"role": "system", "content": MAIN},
        {"role": "assistant", "content": GREETING},
        {"role": "user", "content": ASK},
    ]
    carded = [
        {"role": "system", "content": MAIN},
        {"role": "system", "content": CARD},
        {"role": "system", "content": "[Start a new Chat]"},
        {"role": "assistant", "content": GREETING},
        {"role": "user", "content": ASK},
    ]
    without = _chat(url, _sillytavern(bare))
    with_card = _chat(url, _sillytavern(carded))
    assert without.status_code == 200 and with_card.status_code == 200, (without.text, with_card.text)
    grown = with_card.json()["usage"]["prompt_tokens"] - without.json()["usage"]["prompt_tokens"]
    # the card is some 110 characters of Japanese: each costs this tokenizer at least a token in 3
    assert grown >= len(CARD) // 3, grown
    assert with_card.json()["rp_eval"]["dropped_turns"] == 0


def test_a_chat_longer_than_the_context_drops_its_oldest_turns_and_says_how_many(url):
    turns = []
    for i in range(60):  # some 60 x 2 x 40 characters: well past the demo models' 2,048 positions
        turns += [
            {
                "role": "user",
                "content": f"{i} 回目の質問です。今日の天気と、港の様子と、店の本のことを教えてください。",
            },
            {
                "role": "assistant",
                "content": f"{i} 回目のお返事です。雨は小降りで、港には漁船が三隻、棚には詩集が並んでいます。",
            },
        ]
    messages = [{"role": "system", "content": MAIN}, *turns, {"role": "user", "content": ASK}]
    r = _chat(url, {"model": MODEL, "messages": messages, "max_tokens": 16, "temperature": 0})
    assert r.status_code == 200, r.text
    body = r.json()
    dropped = body["rp_eval"]["dropped_turns"]
    assert dropped > 0 and dropped % 2 == 0, dropped  # whole turns: a question with its answer
    assert body["usage"]["prompt_tokens"] <= 2048 - 16
    # the system prompt and the last question were kept: a prompt of only those two is shorter still
    short = _chat(url, {"model": MODEL, "messages": [messages[0], messages[-1]], "max_tokens": 16, "temperature": 0})
    assert short.json()["usage"]["prompt_tokens"] < body["usage"]["prompt_tokens"]


def test_even_the_system_prompt_and_last_message_alone_too_long_is_a_400_naming_the_context(url):
    huge = "長い設定です。" * 2000
    r = _chat(url, {"model": MODEL, "messages": [{"role": "user", "content": huge}], "max_tokens": 16})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    assert "2048" in error["message"] and "last user" in error["message"]


def test_a_burst_of_eight_from_one_client_waits_its_turn_instead_of_429(url):
    """lm-eval's `local-chat-completions` with num_concurrent=8 against a per-client limit of 2: every request is
    answered (the six over the limit wait in the client's queue of limit_queue_per_user 16); lm-eval aborted on
    the 429s before."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": ASK}], "max_tokens": 24, "temperature": 0}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _chat(url, body, timeout=300), range(8)))
    assert [r.status_code for r in answers] == [200] * 8, [r.text[:200] for r in answers]
    texts = {r.json()["choices"][0]["message"]["content"] for r in answers}
    assert len(texts) == 1  # greedy: queued or not, the same reply


def _swipes(seed: int, **extra) -> dict:
    chat = [{"role": "system", "content": MAIN}, {"role": "system", "content": CARD}, {"role": "user", "content": ASK}]
    return _sillytavern(chat, seed=seed, max_tokens=12, **extra)


def test_n_three_swipes_at_once_are_the_replies_of_seeds_seed_to_seed_plus_two(url):
    """SillyTavern's multi-swipe: its Chat Completion body with `n` 3 gets three choices, indexed 0..2; seeded,
    choice i is the reply a single request with seed + i gets, streamed or not."""
    r = _chat(url, _swipes(41, n=3))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    texts = [c["message"]["content"] for c in body["choices"]]
    singles = [_chat(url, _swipes(41 + i)).json() for i in range(3)]
    assert texts == [one["choices"][0]["message"]["content"] for one in singles]
    assert len(set(texts)) > 1, texts  # temperature 1 over three seeds: not one reply three times
    # the prompt counted once, the new tokens of every choice
    assert body["usage"]["prompt_tokens"] == singles[0]["usage"]["prompt_tokens"]
    assert body["usage"]["completion_tokens"] == sum(one["usage"]["completion_tokens"] for one in singles)

    streamed = httpx.post(f"{url}/v1/chat/completions", json=_swipes(41, n=3, stream=True), timeout=120)
    assert streamed.status_code == 200, streamed.text
    lines = [line[len("data: ") :] for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    got, ends = ["", "", ""], {}
    for chunk in chunks:
        (choice,) = chunk["choices"]
        got[choice["index"]] += choice["delta"].get("content", "")
        if choice["finish_reason"]:
            ends[choice["index"]] = chunk["rp_eval"]["text"]
    assert sorted(ends) == [0, 1, 2] and [ends[i] for i in range(3)] == texts
    assert all(g.startswith(t) for g, t in zip(got, texts, strict=True))  # a capped reply may stream further
    assert chunks[-1]["usage"] == body["usage"]


def test_n_past_the_limit_is_a_400_naming_n(url):
    r = _chat(url, _swipes(1, n=9))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "n" and "8" in error["message"] and "limit_choices" in error["message"], error
    assert _chat(url, _swipes(1, n=0)).json()["error"]["param"] == "n"
    assert _chat(url, _swipes(1)).status_code == 200  # the server goes on


def test_logprobs_of_the_generated_tokens_for_sillytaverns_token_view(url):
    """`logprobs` with `top_logprobs` 3 on a greedy reply: one entry per generated token, in OpenAI's shape; each
    token is its position's best alternative (greedy takes the argmax); the tokens spell the reply. A stream or
    top_logprobs without logprobs is a 400 naming the field."""
    r = _chat(url, _swipes(3, temperature=0, logprobs=True, top_logprobs=3))
    assert r.status_code == 200, r.text
    (choice,) = r.json()["choices"]
    content = choice["logprobs"]["content"]
    assert len(content) == r.json()["usage"]["completion_tokens"]
    for entry in content:
        top = entry["top_logprobs"]
        assert len(top) == 3 and [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
        assert entry["logprob"] <= 0 and entry["logprob"] == pytest.approx(top[0]["logprob"], abs=1e-4), entry
        assert entry["token"] == top[0]["token"] and entry["bytes"] == list(entry["token"].encode())
    spelled = "".join(e["token"] for e in content)  # the reply is the tokens' text, its edges' spaces stripped
    assert spelled.strip().startswith(choice["message"]["content"]), (spelled, choice)
    assert _chat(url, _swipes(3)).json()["choices"][0]["logprobs"] is None
    for extra, param in (({"logprobs": True, "stream": True}, "logprobs"), ({"top_logprobs": 2}, "top_logprobs")):
        bad = _chat(url, _swipes(3, **extra))
        assert bad.status_code == 400 and bad.json()["error"]["param"] == param, bad.text


def test_errors_have_openais_shape_with_param_and_a_string_code(url):
    r = _chat(url, {"model": "no-such-model", "messages": [{"role": "user", "content": ASK}]})
    assert r.status_code == 404
    assert r.json()["error"] | {"message": ""} == {
        "message": "",
        "type": "not_found_error",
        "param": "model",
        "code": "model_not_found",
    }
    r = _chat(url, {"model": MODEL, "messages": [{"role": "user", "content": ASK}], "max_tokens": 10**6})
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens", r.text
    assert r.json()["error"]["code"] == "invalid_value"
    r = _chat(url, {"model": MODEL, "messages": [{"role": "user", "content": ASK}], "logit_bias": {"10000000": 10}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "logit_bias", r.text
    assert "10000000" in r.json()["error"]["message"]
    r = _chat(url, {"messages": [{"role": "user", "content": ASK}]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "missing_required_parameter", r.text
    assert r.json()["error"]["param"] == "model"
    for method, path in [("GET", "/v1/engines"), ("POST", "/v1/embeddings"), ("DELETE", "/v1/models/x/y")]:
        r = httpx.request(method, url + path, timeout=30)
        assert r.status_code == 404, (path, r.text)
        error = r.json()["error"]
        assert error["code"] == "unknown_url" and path in error["message"], error
    assert httpx.get(f"{url}/v1/models", timeout=30).status_code == 200  # the catch-all hides no real route
