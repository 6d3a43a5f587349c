"""Text Completions and the tokenizer routes over real HTTP against `python app.py` on the demo workspace:
SillyTavern's Text Completion body of type "ooba" (text-generation-webui) with its sampler fields at their
defaults, streamed and not; lm-eval's `local-completions` loglikelihood body (token ids, echo, logprobs), whose
numbers must equal a forward pass of the same model loaded here; vLLM's /tokenize and /detokenize; the
text-generation-webui routes SillyTavern calls; and the bad inputs of these routes, each a 400 naming its field
with the server still answering after them."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.conftest import running_app

MODEL = "demo-llama-a"
STORY = (
    "小夜は港町の古本屋を継いだ二十歳。口数は少ないが、本の話になると止まらない。\n"
    "ユーザー: こんにちは。雨、ひどいですね。\n小夜: ……いらっしゃいませ。傘、そこに立てておいてください。\n"
    "ユーザー: 何かおすすめの本はありますか？\n小夜:"
)


@pytest.fixture(scope="module")
def app(demo_build, tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    shutil.copytree(demo_build, root / "workspace")
    with running_app(root / "workspace", root / "app.log", env={"RP_EVAL_API_KEY": ""}) as base:
        yield base, root / "workspace"


@pytest.fixture(scope="module")
def url(app):
    return app[0]


@pytest.fixture(scope="module")
def reference(app):
    """The same model and tokenizer, loaded here from the workspace's files (float32 on the CPU, as the app)."""
    folder = app[1] / "models" / "demo" / MODEL
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(folder)


def _post(url: str, path: str, body, timeout: float = 120) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=timeout)


def _ooba(url: str, prompt: str, max_tokens: int = 12, **extra) -> dict:
    """SillyTavern's Text Completion body for its "Default" text-generation-webui (ooba) type, field by field as
    `getTextGenGenerationData` and its `nonAphroditeParams` build it (public/scripts/textgen-settings.js), the
    settings at their defaults; no `model` (ooba sends one only when a custom model is set). Fields ST leaves
    undefined for this type (logprobs, dynatemp_*, json_schema ...) are left out, as JSON.stringify does."""
    stops = ["\nユーザー:", "\n小夜:"]
    body = {
        "prompt": prompt,
        "max_new_tokens": max_tokens,
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "top_p": 0.5,
        "typical_p": 1,
        "typical": 1,
        "sampler_seed": -1,
        "min_p": 0,
        "repetition_penalty": 1.2,
        "frequency_penalty": 0,
        "presence_penalty": 0,
        "top_k": 40,
        "skew": 0,
        "min_length": 0,
        "min_tokens": 0,
        "num_beams": 1,
        "length_penalty": 1,
        "early_stopping": False,
        "add_bos_token": True,
        "smoothing_factor": 0.0,
        "smoothing_curve": 1.0,
        "dry_allowed_length": 2,
        "dry_multiplier": 0.0,
        "dry_base": 1.75,
        "dry_sequence_breakers": '["\\n", ":", "\\"", "*"]',
        "dry_penalty_last_n": 0,
        "max_tokens_second": 0,
        "sampler_priority": ["temperature", "dynamic_temperature", "quadratic_sampling", "top_k", "top_p"],
        "stopping_strings": stops,
        "stop": stops,
        "truncation_length": 2048,
        "ban_eos_token": False,
        "skip_special_tokens": True,
        "top_a": 0,
        "tfs": 1,
        "epsilon_cutoff": 0,
        "eta_cutoff": 0,
        "mirostat_mode": 0,
        "mirostat_tau": 5,
        "mirostat_eta": 0.1,
        "custom_token_bans": "",
        "banned_strings": [],
        "api_type": "ooba",
        "api_server": url,
        "legacy_api": False,
        "xtc_threshold": 0.1,
        "xtc_probability": 0,
        # nonAphroditeParams
        "rep_pen": 1.2,
        "rep_pen_range": 0,
        "repetition_penalty_range": 0,
        "encoder_repetition_penalty": 1,
        "no_repeat_ngram_size": 0,
        "penalty_alpha": 0,
        "temperature_last": True,
        "do_sample": True,
        "seed": -1,
        "guidance_scale": 1,
        "negative_prompt": "",
        "grammar_string": "",
        "repeat_penalty": 1.2,
        "tfs_z": 1,
        "repeat_last_n": 0,
        "n_predict": max_tokens,
        "num_predict": max_tokens,
        "num_ctx": 2048,
        "mirostat": 0,
        "ignore_eos": False,
        "rep_pen_slope": 1,
    }
    return {**body, **extra}


def _events(r: httpx.Response) -> list:
    lines = [line[len("data: ") :] for line in r.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]", r.text
    return [json.loads(line) for line in lines[:-1]]


def test_sillytaverns_ooba_body_is_answered_by_the_first_model_it_shows_as_loaded(url):
    info = httpx.get(f"{url}/v1/internal/model/info", timeout=30)
    assert info.status_code == 200, info.text
    shown = info.json()["model_name"]
    assert shown == httpx.get(f"{url}/v1/models", timeout=30).json()["data"][0]["id"]
    assert info.json()["lora_names"] == []
    r = _post(url, "/v1/completions", _ooba(url, STORY))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "text_completion" and body["model"] == shown
    (choice,) = body["choices"]
    assert choice["finish_reason"] in ("stop", "length") and isinstance(choice["text"], str)
    assert "\nユーザー:" not in choice["text"]  # its stopping strings end the reply
    assert 1 <= body["usage"]["completion_tokens"] <= 12
    # SillyTavern counts its prompt through /v1/internal/encode: the same count the completion reports
    encoded = _post(url, "/v1/internal/encode", {"text": STORY}).json()
    assert encoded["length"] == len(encoded["tokens"]) == body["usage"]["prompt_tokens"]
    assert _post(url, "/v1/internal/token-count", {"text": STORY}).json() == {"length": encoded["length"]}


def test_sillytaverns_ooba_body_streamed(url):
    r = _post(url, "/v1/completions", _ooba(url, STORY, stream=True))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.text
    chunks = _events(r)
    assert all(c["object"] == "text_completion" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert 1 <= chunks[-1]["usage"]["completion_tokens"] <= 12
    streamed = "".join(c["choices"][0]["text"] for c in chunks)
    assert streamed.startswith(chunks[-1]["rp_eval"]["text"])  # a capped reply may stream past its last sentence


def test_the_same_seed_gives_the_same_text_and_greedy_matches_the_reference(url, reference):
    body = _ooba(url, STORY, max_tokens=8, seed=7, sampler_seed=7)
    first, again = (_post(url, "/v1/completions", body).json()["choices"][0]["text"] for _ in range(2))
    assert first == again
    # greedy (do_sample false), no penalty: the first token is the reference model's argmax after the prompt
    model, tok = reference
    ids = tok(STORY)["input_ids"]
    greedy = _post(
        url,
        "/v1/completions",
        {"prompt": ids, "model": MODEL, "max_tokens": 1, "do_sample": False, "logprobs": 1, "stop": []},
    ).json()
    with torch.inference_mode():
        best = int(model(torch.tensor([ids])).logits[0, -1].argmax())
    assert greedy["choices"][0]["rp_eval"]["raw_text"] == tok.decode([best], skip_special_tokens=False)


def test_lm_evals_loglikelihood_body_equals_a_direct_forward_pass(url, reference):
    """LocalCompletionsAPI._create_payload(generate=False) and parse_logprobs: the prompt as token ids (context
    plus continuation, a batch of one), `echo`, `logprobs: 1`, `max_tokens: 1`, `temperature: 0`; it sums
    `token_logprobs[ctxlen:-1]` and checks each against `max(top_logprobs[i].values())` for is_greedy."""
    model, tok = reference
    context, continuation = (
        tok("小夜: 雨の日は")["input_ids"],
        tok("詩集がいいです。", add_special_tokens=False)["input_ids"],
    )
    ids = context + continuation
    body = {
        "model": MODEL,
        "prompt": [ids],
        "temperature": 0,
        "max_tokens": 1,
        "logprobs": 1,
        "seed": 1234,
        "echo": True,
    }
    r = _post(url, "/v1/completions", body)
    assert r.status_code == 200, r.text
    (choice,) = r.json()["choices"]
    lp = choice["logprobs"]
    assert len(lp["token_logprobs"]) == len(ids) + 1 == len(lp["tokens"]) == len(lp["top_logprobs"])
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    with torch.inference_mode():
        logp = model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
    direct = [float(logp[i - 1, ids[i]]) for i in range(1, len(ids))]
    assert lp["token_logprobs"][1 : len(ids)] == pytest.approx(direct, abs=1e-4)
    # the generated token (greedy) is the reference's argmax after the whole prompt, with its logprob
    assert lp["token_logprobs"][-1] == pytest.approx(float(logp[-1].max()), abs=1e-4)
    # lm-eval's own reading of it
    ctxlen = len(context)
    total = sum(lp["token_logprobs"][ctxlen:-1])
    assert total == pytest.approx(sum(direct[ctxlen - 1 :]), abs=1e-3)
    greedy = all(
        t == max(top.values())
        for t, top in zip(lp["token_logprobs"][ctxlen:-1], lp["top_logprobs"][ctxlen:-1], strict=True)
    )
    expected = all(int(logp[i - 1].argmax()) == ids[i] for i in range(ctxlen, len(ids)))
    assert greedy == expected
    # max_tokens 0: only the prompt's, the same numbers, top-5 alternatives best first
    only = _post(url, "/v1/completions", {**body, "max_tokens": 0, "logprobs": 5}).json()["choices"][0]
    assert len(only["logprobs"]["token_logprobs"]) == len(ids)
    assert only["logprobs"]["token_logprobs"][1:] == pytest.approx(direct, abs=1e-4)
    top = only["logprobs"]["top_logprobs"][2]
    assert len(top) == 5 and max(top.values()) == pytest.approx(float(logp[1].max()), abs=1e-4)
    assert only["text"] == tok.decode(ids, skip_special_tokens=True)


def test_four_completions_at_once_from_one_client(url):
    body = {"model": MODEL, "prompt": STORY, "max_tokens": 8, "temperature": 0}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: _post(url, "/v1/completions", body), range(4)))
    assert [r.status_code for r in answers] == [200] * 4, [r.text[:200] for r in answers]
    assert len({r.json()["choices"][0]["text"] for r in answers}) == 1


def test_n_replies_to_one_prompt_are_the_seeds_seed_to_seed_plus_n_minus_1(url):
    """`n` 3 with two prompts: six choices, each prompt's three in turn (OpenAI's order); seeded, choice j of a
    prompt is what a single request with seed + j gets; streamed, the choices come indexed 0..n-1."""
    other = STORY.replace("おすすめの本", "雨の日に読む本")
    body = {**_ooba(url, STORY, 10), "seed": 5, "temperature": 1, "top_p": 1}
    r = _post(url, "/v1/completions", {**body, "prompt": [STORY, other], "n": 3})
    assert r.status_code == 200, r.text
    choices = r.json()["choices"]
    assert [c["index"] for c in choices] == list(range(6))
    for k, prompt in enumerate([STORY, other]):
        singles = [_post(url, "/v1/completions", {**body, "prompt": prompt, "seed": 5 + j}) for j in range(3)]
        assert [c["text"] for c in choices[3 * k : 3 * k + 3]] == [s.json()["choices"][0]["text"] for s in singles]
    assert len({c["text"] for c in choices[:3]}) > 1  # three seeds: not one reply three times
    chunks = _events(_post(url, "/v1/completions", {**body, "n": 3, "stream": True}))
    ends = {c["choices"][0]["index"]: c["rp_eval"]["text"] for c in chunks if c["choices"][0]["finish_reason"]}
    assert [ends.get(i) for i in range(3)] == [c["text"] for c in choices[:3]]


def test_tokenize_and_detokenize_round_trip(url, reference):
    _, tok = reference
    r = _post(url, "/tokenize", {"model": MODEL, "prompt": STORY, "add_special_tokens": False})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tokens"] == tok(STORY, add_special_tokens=False)["input_ids"]
    assert body["count"] == len(body["tokens"]) and body["max_model_len"] == 2048
    back = _post(url, "/detokenize", {"model": MODEL, "tokens": body["tokens"]})
    assert back.status_code == 200 and back.json() == {"prompt": STORY}, back.text
    assert _post(url, "/v1/internal/decode", {"tokens": body["tokens"]}).json() == {"text": STORY}
    # no model named: the first registered one; special tokens as its tokenizer adds them
    assert _post(url, "/tokenize", {"prompt": STORY}).json()["tokens"] == tok(STORY)["input_ids"]


BAD = [
    ("logprobs over 20", {"prompt": STORY, "logprobs": 21, "echo": True, "max_tokens": 0}, "logprobs", "20"),
    ("token id out of vocabulary", {"prompt": [1, 5, 10**6], "max_tokens": 1}, "prompt", "1000000"),
    ("negative token id", {"prompt": [[1, -3]], "max_tokens": 1}, "prompt", "-3"),
    ("mirostat on", {"prompt": STORY, "mirostat_mode": 2}, "mirostat_mode", "mirostat_mode"),
    ("tail-free sampling on", {"prompt": STORY, "tfs": 0.9}, "tfs", "tfs"),
    ("typical under another name", {"prompt": STORY, "typical": 0.9}, "typical", "typical"),
    (
        "DRY allowed length 0",
        {"prompt": STORY, "dry_multiplier": 0.8, "dry_allowed_length": 0},
        "dry_allowed_length",
        "greater than or equal to 1",
    ),  # fmt: skip
    ("XTC probability over 1", {"prompt": STORY, "xtc_probability": 1.5}, "xtc_probability", "less than"),
    ("logit_bias past the vocabulary", {"prompt": STORY, "logit_bias": {"999999": -100}}, "logit_bias", "999999"),
    ("logit_bias key not an id", {"prompt": STORY, "logit_bias": {"あ": -100}}, "logit_bias", "not a token id"),
    ("logit_bias over 100", {"prompt": STORY, "logit_bias": {"5": 300}}, "logit_bias.5", "100"),
    ("custom_token_bans not ids", {"prompt": STORY, "custom_token_bans": "5, x"}, "custom_token_bans", "'x'"),
    (
        "custom_token_bans past the vocabulary",
        {"prompt": STORY, "custom_token_bans": "5, 999999"},
        "banned_tokens",
        "999999",
    ),  # fmt: skip
    ("an empty banned string", {"prompt": STORY, "banned_strings": ["本", ""]}, "banned_strings.1", "at least 1"),
    ("n past the limit", {"prompt": STORY, "n": 9}, "n", "limit_choices"),
    (
        "malformed dry_sequence_breakers",
        {"prompt": STORY, "dry_sequence_breakers": "[\\n"},
        "dry_sequence_breakers",
        "JSON",
    ),
    (
        "range of the penalty",
        {"prompt": STORY, "repetition_penalty": 1.1, "rep_pen_range": 64},
        "rep_pen_range",
        "whole",
    ),
    ("logprobs in a stream", {"prompt": STORY, "logprobs": 2, "stream": True}, "logprobs", "stream"),
    ("unknown model", {"prompt": STORY, "model": "no-such"}, "model", "no-such"),
]


@pytest.mark.parametrize("name,body,param,said", BAD, ids=[b[0] for b in BAD])
def test_bad_completion_requests_are_400s_naming_the_field(url, name, body, param, said):
    r = _post(url, "/v1/completions", {"model": MODEL, "max_tokens": 4, **body})
    assert r.status_code in (400, 404), r.text
    error = r.json()["error"]
    assert error["param"] == param and said in error["message"], error


def test_echo_past_the_context_names_the_numbers(url):
    r = _post(
        url,
        "/v1/completions",
        {"model": MODEL, "prompt": [1] + [100] * 2100, "echo": True, "max_tokens": 0, "logprobs": 1},
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == "prompt"
    assert "2101" in error["message"] and "2048" in error["message"], error
    # without echo, SillyTavern's truncation_length cuts the prompt from the left instead
    cut = _post(
        url,
        "/v1/completions",
        {"model": MODEL, "prompt": [1] + [100] * 2100, "max_tokens": 4, "truncation_length": 2048},
    )
    assert cut.status_code == 200, cut.text
    assert cut.json()["choices"][0]["rp_eval"]["truncated_prompt_tokens"] == 2101 - (2048 - 4)


def test_a_lone_surrogate_is_a_400_and_the_server_goes_on(url):
    raw = '{"model": "MODEL", "prompt": "\\ud800 です", "max_tokens": 2}'.replace("MODEL", MODEL)
    r = httpx.post(f"{url}/v1/completions", content=raw, headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt", r.text
    assert "surrogate" in r.json()["error"]["message"]
    raw = '{"model": "MODEL", "prompt": "\\udfff"}'.replace("MODEL", MODEL)
    r = httpx.post(f"{url}/tokenize", content=raw, headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt", r.text
    r = _post(url, "/detokenize", {"model": MODEL, "tokens": [5, 99999]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "tokens", r.text
    ok = _post(url, "/v1/completions", {"model": MODEL, "prompt": STORY, "max_tokens": 2, "temperature": 0})
    assert ok.status_code == 200, ok.text
