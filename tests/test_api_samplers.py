"""The role-play samplers over real HTTP against `python app.py` on the demo workspace: SillyTavern's Text
Completion body (type ooba) and its Chat Completion body with DRY, XTC, typical-p, logit_bias, banned strings and
token bans on are answered (200), and each sampler does what it says in the reply:
- a crafted repetition (logit_bias +20 on one token: greedy writes it forty times over) is broken up by DRY;
- a banned string never appears, though the same request without the ban writes it at once;
- logit_bias -100 and custom_token_bans keep a token out where greedy would choose it; ban_eos_token keeps the
  reply going past the end token it otherwise stops at;
- XTC and typical-p change a seeded reply, and the same seed gives the same reply again.
Rows of other requests running beside them are unaffected (tests/chat/test_samplers.py checks that bit for bit)."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import running_app
from tests.test_api_text import MODEL, _ooba

PROMPT = "小夜: 雨の日は"


@pytest.fixture(scope="module")
def url(demo_build, tmp_path_factory):
    root = tmp_path_factory.mktemp("samplers")
    shutil.copytree(demo_build, root / "workspace")
    with running_app(root / "workspace", root / "app.log", env={"RP_EVAL_API_KEY": ""}) as base:
        yield base


def _post(url: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=180)


def _one_id(url: str, text: str) -> int:
    (token,) = _post(url, "/tokenize", {"model": MODEL, "prompt": text, "add_special_tokens": False}).json()["tokens"]
    return token


def _complete(url: str, max_tokens: int = 40, **fields) -> dict:
    """SillyTavern's ooba body, greedy and with no penalty unless `fields` say otherwise; the choice."""
    body = _ooba(url, PROMPT, max_tokens=max_tokens, **{"do_sample": False, "rep_pen": 1.0, **fields})
    r = _post(url, "/v1/completions", body)
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]


def _longest_repeat(text: str) -> int:
    """The longest piece of `text` that occurs twice (the two may overlap)."""
    best = 0
    for i in range(len(text)):
        for j in range(i + 1, len(text)):
            k = 0
            while j + k < len(text) and text[i + k] == text[j + k]:
                k += 1
            best = max(best, k)
    return best


def test_dry_breaks_a_crafted_repetition(url):
    a = _one_id(url, "あ")
    looped = _complete(url, logit_bias={str(a): 20})["rp_eval"]["raw_text"]
    assert looped == "あ" * 40, looped  # the repetition DRY is for
    dry = {"dry_multiplier": 0.8, "dry_base": 1.75, "dry_allowed_length": 2, "dry_penalty_last_n": 0}
    dry["dry_sequence_breakers"] = '["\\n", ":", "\\"", "*"]'  # as SillyTavern sends it: JSON inside a string
    broken = _complete(url, logit_bias={str(a): 20}, **dry)["rp_eval"]["raw_text"]
    assert _longest_repeat(broken) <= 12 and broken.count("あ") >= 10, broken
    # a short range forgets the repetition: DRY then lets longer runs through
    near = _complete(url, logit_bias={str(a): 20}, **{**dry, "dry_penalty_last_n": 3})["rp_eval"]["raw_text"]
    assert _longest_repeat(near) > _longest_repeat(broken), (near, broken)


def test_a_banned_string_never_appears(url):
    a = _one_id(url, "あ")
    for banned in (["ああ"], ["ああ", "、"]):
        text = _complete(url, logit_bias={str(a): 20}, banned_strings=banned)["rp_eval"]["raw_text"]
        assert text and not any(b in text for b in banned), text
        assert text.count("あ") >= 5, text  # the bias still acts: the ban takes only what completes the string


def test_logit_bias_and_token_bans_keep_a_token_out(url):
    first = _complete(url, max_tokens=1)["rp_eval"]["raw_text"]
    chosen = _one_id(url, first)
    assert _complete(url, max_tokens=1, logit_bias={str(chosen): 100})["rp_eval"]["raw_text"] == first
    for ban in ({"logit_bias": {str(chosen): -100}}, {"custom_token_bans": f"{chosen}"}, {"banned_tokens": [chosen]}):
        other = _complete(url, max_tokens=1, **ban)["rp_eval"]["raw_text"]
        assert other and other != first, (ban, other)


def test_ban_eos_token_keeps_the_reply_going(url):
    plain = _complete(url, max_tokens=30)
    assert plain["rp_eval"]["finish_reason"] == "eos" and plain["rp_eval"]["raw_text"].endswith("</s>"), plain
    banned = _complete(url, max_tokens=30, ban_eos_token=True)
    assert "</s>" not in banned["rp_eval"]["raw_text"], banned
    assert banned["rp_eval"]["finish_reason"] != "eos" and len(banned["rp_eval"]["raw_text"]) > len(
        plain["rp_eval"]["raw_text"]
    )


def test_xtc_and_typical_p_change_a_seeded_reply_the_same_way_each_time(url):
    seeded = {"do_sample": True, "temperature": 1.0, "seed": 5, "sampler_seed": 5}
    plain = _complete(url, **seeded)["rp_eval"]["raw_text"]
    for extra in ({"xtc_probability": 1.0, "xtc_threshold": 0.05}, {"typical_p": 0.2}):
        changed = _complete(url, **seeded, **extra)["rp_eval"]["raw_text"]
        assert changed != plain, extra
        assert _complete(url, **seeded, **extra)["rp_eval"]["raw_text"] == changed, extra


def test_sillytaverns_ooba_body_with_every_sampler_on_streamed_and_at_once(url):
    a = _one_id(url, "あ")
    on = dict(dry_multiplier=0.8, xtc_probability=0.5, xtc_threshold=0.1, typical_p=0.95, min_p=0.05)
    on |= dict(banned_strings=["ああ"], custom_token_bans="5, 6", logit_bias={str(a): 20}, ban_eos_token=False)
    body = _ooba(url, PROMPT, max_tokens=24, stream=True, **on)
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: _post(url, "/v1/completions", body), range(3)))
    for r in answers:
        assert r.status_code == 200, r.text
        last = json.loads([line for line in r.text.splitlines() if line.startswith("data: {")][-1][len("data: ") :])
        assert last["choices"][0]["finish_reason"] in ("stop", "length"), last
        assert "ああ" not in last["rp_eval"]["raw_text"] and "あ" in last["rp_eval"]["raw_text"], last


def test_sillytaverns_chat_completion_body_with_the_samplers(url):
    a = _one_id(url, "あ")
    body = {
        "messages": [
            {"role": "system", "content": "小夜として話してください。"},
            {"role": "user", "content": "こんにちは"},
        ],
        "model": MODEL,
        "temperature": 0,
        "frequency_penalty": 0,
        "presence_penalty": 0,
        "top_p": 1,
        "max_tokens": 30,
        "stream": False,
        "seed": -1,
        "n": 1,
        "user_name": "User",
        "char_name": "小夜",
        "group_names": [],
        "typical_p": 0.9,
        "logit_bias": {str(a): 20},
    }
    looped = _post(url, "/v1/chat/completions", body)
    assert looped.status_code == 200, looped.text
    assert looped.json()["rp_eval"]["raw_text"] == "あ" * 30
    # SillyTavern's custom source passes extra body parameters through: DRY and a banned string
    dried = _post(url, "/v1/chat/completions", {**body, "dry_multiplier": 0.8, "banned_strings": ["ああああ"]})
    assert dried.status_code == 200, dried.text
    text = dried.json()["rp_eval"]["raw_text"]
    assert "ああああ" not in text and _longest_repeat(text) <= 12, text
