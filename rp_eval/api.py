"""An OpenAI-compatible HTTP API beside the page: `GET /v1/models`, `POST /v1/chat/completions`.

So SillyTavern, the `openai` client and evaluation harnesses can talk to any registered model. Replies come
from the same `rp_eval.chat.generate.stream` as the chat tab, with the same stop rules. `finish_reason` is
OpenAI's `stop` (eos or a stop string) or `length` (the token cap); the project's own reason, the raw text and
whether the cap cut a sentence are in the extra `rp_eval` field. A streamed reply that hits the cap may have
streamed a sentence fragment that the final `rp_eval.text` trims away (a stream can not take text back).

Set `RP_EVAL_API_KEY` to require `Authorization: Bearer <key>`.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import anyio
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rp_eval import settings
from rp_eval.chat.formats import render_prompt
from rp_eval.chat.generate import GenerationResult, GenerationSettings, stream
from rp_eval.errors import RpEvalError
from rp_eval.models import registry
from rp_eval.models.loading import model_cache

OPENAI_REASON = {"eos": "stop", "stop_string": "stop", "length": "length", "length_trimmed": "length"}
log = logging.getLogger("rp_eval.api")


class ContentPart(BaseModel):
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    role: str
    content: str | list[ContentPart] | None = ""

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "".join(part.text or "" for part in self.content)


# OpenAI fields that change what is sampled and that rp_eval does not do: refused, naming the field, unless
# given their neutral value (SillyTavern and the openai client send some of them by default).
UNSUPPORTED: dict[str, tuple] = {
    "logit_bias": (None, {}),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "response_format": (None, {"type": "text"}),
    "tools": (None, []),
    "tool_choice": (None, "none", "auto"),
    "functions": (None, []),
    "function_call": (None, "none", "auto"),
    "best_of": (None, 1),
    "typical_p": (None, 1, 1.0),
    "top_a": (None, 0, 0.0),
    "tfs": (None, 1, 1.0),
    "mirostat_mode": (None, 0),
}


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # other clients' bookkeeping fields (user, metadata ...) are ignored

    model: str = Field(max_length=300)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.7, ge=0.0, le=5.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, le=1_000_000)
    min_p: float = Field(0.0, ge=0.0, le=1.0)
    repetition_penalty: float = Field(1.0, gt=0.0, le=3.0)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)  # negative: a random seed (SillyTavern sends -1)
    stream: bool = False
    n: int = Field(1, ge=1, le=1)


class ApiError(RpEvalError):
    def __init__(self, message: str, status: int = 400, kind: str = "invalid_request_error", headers=None) -> None:
        super().__init__(message)
        self.status, self.kind, self.headers = status, kind, headers


def _error(status: int, message: str, kind: str, headers: dict | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def _check_key(request: Request, authorization: str | None = Header(None)) -> None:
    key = settings.config().api_key
    if not key and getattr(request.app.state, "login_required", False):  # a lab server: no way in without a key
        raise ApiError("this server asks for a login: the API needs RP_EVAL_API_KEY set", 401, "authentication_error")
    given = (authorization or "").encode("utf-8", "surrogateescape")  # any header bytes: compared, never a crash
    if key and not hmac.compare_digest(given, f"Bearer {key}".encode()):
        raise ApiError("missing or wrong API key (Authorization: Bearer ...)", 401, "authentication_error")


router = APIRouter(prefix="/v1", dependencies=[Depends(_check_key)])


class InFlight:
    """Requests generating now, in all and per client (API key or address); over either limit: 429."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.per_client: dict[str, int] = {}

    def acquire(self, client: str) -> None:
        """Take a slot for `client`, or ApiError 429 with Retry-After."""
        limits = settings.config()
        with self._lock:
            if self.total >= limits.limit_in_flight_api:
                raise ApiError(
                    f"the server is answering {self.total} API requests already (limit_in_flight_api); try again",
                    429,
                    "rate_limit_error",
                    {"Retry-After": "2"},
                )
            if self.per_client.get(client, 0) >= limits.limit_in_flight_per_user:
                raise ApiError(
                    f"this client has {self.per_client[client]} requests running already (limit_in_flight_per_user); "
                    "wait for one to finish",
                    429,
                    "rate_limit_error",
                    {"Retry-After": "2"},
                )
            self.total += 1
            self.per_client[client] = self.per_client.get(client, 0) + 1

    def release(self, client: str) -> None:
        with self._lock:
            self.total -= 1
            self.per_client[client] -= 1
            if not self.per_client[client]:
                del self.per_client[client]


IN_FLIGHT = InFlight()


@router.get("/models")
def list_models() -> dict:
    return {
        "object": "list",
        "data": [
            {
                "id": r.name,
                "object": "model",
                "created": int(r.created_at.timestamp()) if r.created_at else 0,
                "owned_by": "rp_eval",
                "kind": r.kind,
                "parents": r.parents,
            }
            for r in registry.list_models()
        ],
    }


def _check_request(req: ChatRequest) -> None:
    """Everything that can be said about a request before a model is touched."""
    limits = settings.config()
    for field, neutral in UNSUPPORTED.items():
        value = (req.model_extra or {}).get(field)
        if value not in neutral:
            raise ApiError(f"'{field}' is not supported by this server (send it unset)")
    roles = {"system", "user", "assistant"}
    bad = [m.role for m in req.messages if m.role not in roles]
    if bad:
        raise ApiError(f"unsupported message role '{bad[0]}' (use system, user, assistant)")
    for i, m in enumerate(req.messages):
        other = [p.type for p in m.content or [] if p.type != "text"] if isinstance(m.content, list) else []
        if other:
            raise ApiError(f"messages.{i}.content: only text parts are supported, not '{other[0]}'")
    if not any(m.role == "user" for m in req.messages):
        raise ApiError("messages: the conversation has no user message")
    if not req.messages[-1].text().strip():
        raise ApiError("messages: the last message is empty: send some text for the character to answer")
    wanted = req.max_completion_tokens or req.max_tokens or 256
    if wanted > limits.limit_max_tokens:
        raise ApiError(f"max_tokens: {wanted} is over this server's limit of {limits.limit_max_tokens}")
    stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if len(stops) > limits.limit_stop_count:
        raise ApiError(f"stop: {len(stops)} strings, at most {limits.limit_stop_count} are accepted")
    long = [s for s in stops if len(s) > limits.limit_stop_chars]
    if long:
        raise ApiError(f"stop: a string of {len(long[0])} characters; at most {limits.limit_stop_chars} each")


def _prepare(req: ChatRequest):
    _check_request(req)
    messages = [{"role": m.role, "content": m.text()} for m in req.messages]
    stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    gen = GenerationSettings(
        max_new_tokens=req.max_completion_tokens or req.max_tokens or 256,
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=req.top_k,
        min_p=req.min_p,
        repetition_penalty=req.repetition_penalty,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        seed=req.seed if req.seed is not None and req.seed >= 0 else None,
        stop_strings=tuple(s for s in stops if s),
    )
    row = registry.get_store().get_model(req.model)
    if row is None:
        raise ApiError(f"model '{req.model}' is not registered; GET /v1/models lists them", 404, "not_found_error")
    loaded = model_cache().get(row)
    _check_context(loaded, messages, gen.max_new_tokens)
    return loaded, messages, gen


def _check_context(loaded, messages: list[dict], max_new_tokens: int) -> None:
    """The prompt's length against the model's context and the server's limit, before any generation."""
    try:
        prompt = render_prompt(loaded.format, loaded.tokenizer, messages)
    except RpEvalError:
        raise
    except Exception as err:  # noqa: BLE001 - a chat template's own refusal (jinja's raise_exception)
        raise ApiError(f"messages: model '{loaded.name}' can not take this conversation: {err}") from err
    n = len(loaded.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    context = int(getattr(loaded.model.config, "max_position_embeddings", 0) or 0)
    limit = settings.config().limit_prompt_tokens
    if context and n + max_new_tokens > context:
        raise ApiError(
            f"messages: the prompt is {n} tokens and the reply may take {max_new_tokens} more, but model "
            f"'{loaded.name}' has a context of {context} positions: shorten the conversation or lower max_tokens"
        )
    if n > limit:
        raise ApiError(f"messages: the prompt is {n} tokens; this server takes at most {limit} (limit_prompt_tokens)")


def _extra(result: GenerationResult) -> dict:
    return {
        "finish_reason": result.finish_reason,
        "text": result.text,
        "raw_text": result.raw_text,
        "cut_mid_sentence": result.cut_mid_sentence,
        "stop": result.stop,
        "first_token_seconds": result.first_token_seconds,
        "tokens_per_second": result.tokens_per_second,
        "dropped_turns": result.dropped_turns,  # oldest messages left out to fit the model's context
    }


def _usage(result: GenerationResult) -> dict:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.new_tokens,
        "total_tokens": result.prompt_tokens + result.new_tokens,
    }


def _reply(req: ChatRequest, result: GenerationResult) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text},
                "finish_reason": OPENAI_REASON[result.finish_reason],
            }
        ],
        "usage": _usage(result),
        "rp_eval": _extra(result),
    }


def _start(req: ChatRequest) -> tuple[Iterator, str | GenerationResult]:
    """The reply's generator and its first item: every error a request can cause is raised here, before the
    response starts (a stream can not turn into a 400 after its first byte)."""
    loaded, messages, gen = _prepare(req)
    items = stream(loaded.model, loaded.tokenizer, loaded.format, messages, gen)
    try:
        first = next(items)
    except BaseException:
        items.close()
        raise
    return items, first


def _next(items: Iterator):
    return next(items, None)


async def _complete(req: ChatRequest, request: Request) -> dict | None:
    """A whole reply; the generation stops (its generator closed) as soon as the client is gone."""
    items, item = await run_in_threadpool(_start, req)
    try:
        while not isinstance(item, GenerationResult):
            if item is None:
                raise ApiError("the reply ended without a result", 500, "server_error")
            if await request.is_disconnected():
                return None
            item = await run_in_threadpool(_next, items)
        return _reply(req, item)
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(items.close)


def _chunk(req: ChatRequest, cid: str, created: int, delta: dict, reason: str | None = None, **extra) -> str:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": req.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
        **extra,
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


async def _events(req: ChatRequest, items: Iterator, first, done) -> AsyncIterator[str]:
    """The SSE chunks; the generator is closed when the stream ends or the client leaves."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    item = first
    try:
        yield _chunk(req, cid, created, {"role": "assistant", "content": ""})
        while item is not None:
            if isinstance(item, str):
                yield _chunk(req, cid, created, {"content": item})
            else:
                reason = OPENAI_REASON[item.finish_reason]
                yield _chunk(req, cid, created, {}, reason, usage=_usage(item), rp_eval=_extra(item))
                break
            item = await run_in_threadpool(_next, items)
        yield "data: [DONE]\n\n"
    except Exception as err:  # noqa: BLE001 - after the headers: the error goes out as the stream's last event
        if not isinstance(err, RpEvalError):
            log.error("error in a streamed reply", exc_info=err)
        message = str(err) if isinstance(err, RpEvalError) else "internal error while generating (logged)"
        yield f"data: {json.dumps({'error': {'message': message, 'type': 'server_error'}}, ensure_ascii=False)}\n\n"
    finally:
        with anyio.CancelScope(shield=True):  # the client left: the cancelled stream still closes its generator
            await run_in_threadpool(items.close)
        done()


class _Stream(StreamingResponse):
    """A streamed reply whose chunks' generator is closed however the response ends: Starlette stops sending
    when the client is gone but leaves the generator suspended, and with it the model's generation."""

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()


def _client(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    host = request.client.host if request.client else "?"
    return f"key:{hash(auth)}" if auth and settings.config().api_key else f"address:{host}"


def _bad_request(err: ValidationError) -> JSONResponse:
    detail = err.errors()[0]
    where = ".".join(str(p) for p in detail["loc"])
    return _error(400, f"bad request: {where + ': ' if where else ''}{detail['msg']}", "invalid_request_error")


@router.post("/chat/completions")
async def chat_completions(request: Request):
    try:
        body = await request.json()
    except (ValueError, RecursionError) as err:
        return _error(400, f"bad request: the body is not valid JSON ({str(err)[:100]})", "invalid_request_error")
    try:
        req = ChatRequest.model_validate(body)
    except ValidationError as err:
        return _bad_request(err)
    client = _client(request)
    try:
        IN_FLIGHT.acquire(client)
    except ApiError as err:
        return _error(err.status, str(err), err.kind, err.headers)
    streaming = False
    try:
        if req.stream:
            items, first = await run_in_threadpool(_start, req)
            streaming = True
            events = _events(req, items, first, lambda: IN_FLIGHT.release(client))
            return _Stream(events, media_type="text/event-stream")
        reply = await _complete(req, request)
        return reply if reply is not None else JSONResponse({}, status_code=499)
    except ApiError as err:
        return _error(err.status, str(err), err.kind, err.headers)
    except ValidationError as err:
        return _bad_request(err)
    except RpEvalError as err:
        return _error(400, str(err), "invalid_request_error")
    finally:
        if not streaming:
            IN_FLIGHT.release(client)


def install(app: FastAPI, login_required: bool = False) -> FastAPI:
    """Add the /v1 routes to a FastAPI app (the one the page is served from). `login_required` (a lab server with
    login): the API is closed unless an API key is set, so it is no way around the login."""
    app.state.login_required = login_required
    app.include_router(router)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, err: ApiError) -> JSONResponse:
        return _error(err.status, str(err), err.kind, err.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:  # logged; never a traceback in a reply
        log.error("error answering %s %s", request.method, request.url.path, exc_info=err)
        return _error(500, "internal error: the server could not answer this request (logged)", "server_error")

    return app
