"""The OpenAI-compatible API, spoken to by the `openai` package against the running app."""

from __future__ import annotations

import openai
import pytest

PERSONA = "あなたは商店街のカフェで働く明るいウェイトレスです。一人称は「あたし」です。"
MESSAGES = [{"role": "system", "content": PERSONA}, {"role": "user", "content": "おすすめのメニューってある？"}]


@pytest.fixture
def client(app_url):
    return openai.OpenAI(base_url=f"{app_url}/v1", api_key="unused", max_retries=0)


def test_models_lists_the_registry(client):
    ids = [m.id for m in client.models.list().data]
    assert ids == ["demo-llama-a", "demo-llama-b", "demo-mistral", "demo-llama-eos", "demo-mistral-long"]


def test_chat_completion_plain_and_streamed_agree(client):
    done = client.chat.completions.create(model="demo-mistral", messages=MESSAGES, temperature=0, max_tokens=48)
    choice = done.choices[0]
    extra = done.model_extra["rp_eval"]
    assert choice.message.content == extra["text"] and choice.message.content
    assert choice.finish_reason == {"eos": "stop", "stop_string": "stop"}.get(extra["finish_reason"], "length")
    assert done.usage.completion_tokens >= 1

    chunks = list(
        client.chat.completions.create(
            model="demo-mistral", messages=MESSAGES, temperature=0, max_tokens=48, stream=True
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    last = chunks[-1]
    assert last.choices[0].finish_reason == choice.finish_reason
    assert last.model_extra["rp_eval"]["text"] == choice.message.content
    assert streamed.startswith(choice.message.content) or choice.message.content.startswith(streamed)


def test_a_stop_inside_a_streamed_reply_cuts_it(client):
    full = client.chat.completions.create(model="demo-mistral", messages=MESSAGES, temperature=0, max_tokens=48)
    text = full.choices[0].message.content
    assert len(text) >= 4, text
    stop = text[2:4]  # a string the greedy reply is known to contain
    chunks = list(
        client.chat.completions.create(
            model="demo-mistral", messages=MESSAGES, temperature=0, max_tokens=48, stream=True, stop=[stop]
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == text[: text.index(stop)].strip()
    assert stop not in streamed
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["rp_eval"]["finish_reason"] == "stop_string"


def test_bad_requests_get_openai_style_errors(client):
    with pytest.raises(openai.NotFoundError, match="not registered"):
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="demo-mistral", messages=[])
    with pytest.raises(openai.BadRequestError, match="empty"):
        client.chat.completions.create(model="demo-mistral", messages=[{"role": "user", "content": " "}])
    with pytest.raises(openai.BadRequestError, match="role"):
        client.chat.completions.create(model="demo-mistral", messages=[{"role": "tool", "content": "x"}])


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("RP_EVAL_API_KEY", "s3cret")
    return "s3cret"


def test_api_key_is_required_when_set(api_key, app_url):
    wrong = openai.OpenAI(base_url=f"{app_url}/v1", api_key="guess", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="API key"):
        wrong.models.list()
    right = openai.OpenAI(base_url=f"{app_url}/v1", api_key=api_key, max_retries=0)
    assert len(right.models.list().data) == 5
