"""An OpenAI-compatible HTTP API beside the page: `GET /v1/models`, `POST /v1/chat/completions`.

So SillyTavern, the `openai` client and evaluation harnesses can talk to any registered model. Replies come
from the same generation service as the chat tab (`rp_eval.chat.generate.stream_choices`: `n` replies as rows
of one request), with the same stop rules. `finish_reason` is
OpenAI's `stop` (eos or a stop string) or `length` (the token cap); the project's own reason, the raw text and
whether the cap cut a sentence are in the extra `rp_eval` field. A streamed reply that hits the cap may have
streamed a sentence fragment that the final `rp_eval.text` trims away (a stream can not take text back).

Set `RP_EVAL_API_KEY` to require `Authorization: Bearer <key>`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator

import anyio
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from rp_eval import settings
from rp_eval.api_logprobs import chat_logprobs
from rp_eval.chat.generate import (
    API,
    ContextError,
    GenerationResult,
    GenerationSettings,
    context_of,
    fit_messages,
    stream_choices,
)
from rp_eval.chat.sampler_params import DialectError, api_fields, values_of
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
    "response_format": (None, {"type": "text"}),
    "tools": (None, []),
    "tool_choice": (None, "none", "auto"),
    "functions": (None, []),
    "function_call": (None, "none", "auto"),
    "best_of": (None, 1),
    "top_a": (None, 0, 0.0),
    "tfs": (None, 1, 1.0),
    "mirostat_mode": (None, 0),
}


class _ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # other clients' bookkeeping fields (user, metadata ...) are ignored

    model: str = Field(max_length=300)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)  # negative: a random seed (SillyTavern sends -1)
    stream: bool = False
    n: int = Field(1, ge=1)  # replies to the one conversation: at most limit_choices
    logprobs: bool | None = False  # the generated tokens' log-probabilities (rp_eval/api_logprobs.py)
    top_logprobs: int | None = Field(None, ge=0, le=20)  # OpenAI's limit; needs logprobs true


# the sampler fields (temperature, top_p, min_p ...) come from their one definition, with its bounds
ChatRequest = create_model("ChatRequest", __base__=_ChatRequest, **api_fields("chat"))


# OpenAI's string codes, by HTTP status, for errors that name no more precise one
DEFAULT_CODE = {
    400: "invalid_value",
    401: "invalid_api_key",
    404: "not_found",
    413: "request_too_large",
    429: "rate_limit_exceeded",
    500: "server_error",
}


class ApiError(RpEvalError):
    """An error answered in OpenAI's shape: `param` names the request field at fault, `code` is a string."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        kind: str = "invalid_request_error",
        headers=None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.headers, self.param = status, kind, headers, param
        self.code = code or DEFAULT_CODE.get(status, "error")


def _error(
    status: int,
    message: str,
    kind: str,
    headers: dict | None = None,
    param: str | None = None,
    code: str | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code or DEFAULT_CODE.get(status)}}
    return JSONResponse(body, status_code=status, headers=headers)


def _answer(err: ApiError) -> JSONResponse:
    return _error(err.status, str(err), err.kind, err.headers, err.param, err.code)


def _check_key(request: Request, authorization: str | None = Header(None)) -> None:
    key = settings.config().api_key
    if not key and getattr(request.app.state, "login_required", False):  # a lab server: no way in without a key
        raise ApiError("this server asks for a login: the API needs RP_EVAL_API_KEY set", 401, "authentication_error")
    given = (authorization or "").encode("utf-8", "surrogateescape")  # any header bytes: compared, never a crash
    if key and not hmac.compare_digest(given, f"Bearer {key}".encode()):
        raise ApiError("missing or wrong API key (Authorization: Bearer ...)", 401, "authentication_error")


router = APIRouter(prefix="/v1", dependencies=[Depends(_check_key)])


class InFlight:
    """Requests generating now, in all (`limit_in_flight_api`) and per client (API key or address,
    `limit_in_flight_per_user`). A request over a limit waits in its client's queue (`limit_queue_per_user`,
    `limit_queue_api` in all);
    a freed slot goes to the clients in turn (round robin), so one client's burst can not starve another's.
    Past the queue: 429 with Retry-After. All of it runs on the server's event loop (no lock needed)."""

    def __init__(self) -> None:
        self.total = 0
        self.per_client: dict[str, int] = {}
        self.waiting: dict[str, deque[asyncio.Future]] = {}  # insertion order: the round robin's order

    def _free_for(self, client: str) -> bool:
        limits = settings.config()
        return self.total < limits.limit_in_flight_api and self.per_client.get(client, 0) < (
            limits.limit_in_flight_per_user
        )

    def _take(self, client: str) -> None:
        self.total += 1
        self.per_client[client] = self.per_client.get(client, 0) + 1

    async def acquire(self, client: str) -> None:
        """Take a slot for `client`, waiting in its queue if need be; ApiError 429 past the queue."""
        queue = self.waiting.get(client)
        if not queue and self._free_for(client):
            self._take(client)
            return
        queued = sum(len(q) for q in self.waiting.values())
        limits = settings.config()
        if len(queue or ()) >= limits.limit_queue_per_user or queued >= limits.limit_queue_api:
            running = self.per_client.get(client, 0)
            raise ApiError(
                f"this client has {running} requests running and {len(queue or ())} waiting, the server "
                f"{self.total} running and {queued} waiting (limit_in_flight_per_user, limit_queue_per_user, "
                "limit_in_flight_api, limit_queue_api): "
                "try again",
                429,
                "rate_limit_error",
                {"Retry-After": "2"},
            )
        future = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(client, deque()).append(future)
        try:
            await future  # _grant took the slot for it
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted, then cancelled: give the slot on
                self.release(client)
            else:
                self._forget(client, future)
            raise

    def _forget(self, client: str, future: asyncio.Future) -> None:
        queue = self.waiting.get(client)
        if queue and future in queue:
            queue.remove(future)
            if not queue:
                del self.waiting[client]

    def _grant(self) -> None:
        """Hand free slots to waiting clients, one each in turn, the longest-waiting client first."""
        progress = True
        while progress and self.waiting:
            progress = False
            for client in list(self.waiting):
                queue = self.waiting[client]
                if self._free_for(client):
                    future = queue.popleft()
                    if not queue:
                        del self.waiting[client]
                    else:  # to the back of the round
                        self.waiting[client] = self.waiting.pop(client)
                    self._take(client)
                    future.set_result(None)
                    progress = True

    def release(self, client: str) -> None:
        self.total -= 1
        self.per_client[client] -= 1
        if not self.per_client[client]:
            del self.per_client[client]
        self._grant()


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
            raise ApiError(
                f"'{field}' is not supported by this server (send it unset)", param=field, code="unsupported_parameter"
            )
    roles = {"system", "user", "assistant"}
    bad = [m.role for m in req.messages if m.role not in roles]
    if bad:
        raise ApiError(f"unsupported message role '{bad[0]}' (use system, user, assistant)", param="messages")
    for i, m in enumerate(req.messages):
        other = [p.type for p in m.content or [] if p.type != "text"] if isinstance(m.content, list) else []
        if other:
            raise ApiError(
                f"messages.{i}.content: only text parts are supported, not '{other[0]}'", param=f"messages.{i}.content"
            )
    if not any(m.role == "user" for m in req.messages):
        raise ApiError("messages: the conversation has no user message", param="messages")
    if not req.messages[-1].text().strip():
        raise ApiError(
            "messages: the last message is empty: send some text for the character to answer", param="messages"
        )
    wanted = req.max_completion_tokens or req.max_tokens or 256
    if wanted > limits.limit_max_tokens:
        field = "max_completion_tokens" if req.max_completion_tokens else "max_tokens"
        raise ApiError(f"{field}: {wanted} is over this server's limit of {limits.limit_max_tokens}", param=field)
    check_stops([req.stop] if isinstance(req.stop, str) else list(req.stop or []))
    check_choices(req.n)
    if req.logprobs and req.stream:
        raise ApiError("logprobs: not given in a stream here; send stream: false", param="logprobs")
    if req.top_logprobs and not req.logprobs:
        raise ApiError("top_logprobs: needs logprobs: true", param="top_logprobs")


def check_choices(n: int) -> None:
    limit = settings.config().limit_choices
    if n > limit:
        raise ApiError(f"n: {n} replies asked for; this server gives at most {limit} per request (limit_choices)",
                       param="n")  # fmt: skip


def check_stops(stops: list[str], field: str = "stop") -> None:
    limits = settings.config()
    if len(stops) > limits.limit_stop_count:
        raise ApiError(f"{field}: {len(stops)} strings, at most {limits.limit_stop_count} are accepted", param=field)
    long = [s for s in stops if len(s) > limits.limit_stop_chars]
    if long:
        raise ApiError(
            f"{field}: a string of {len(long[0])} characters; at most {limits.limit_stop_chars} each", param=field
        )


def _prepare(req: ChatRequest):
    _check_request(req)
    messages = [{"role": m.role, "content": m.text()} for m in req.messages]
    stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    gen = GenerationSettings(
        **engine_values(req),
        max_new_tokens=req.max_completion_tokens or req.max_tokens or 256,
        seed=req.seed if req.seed is not None and req.seed >= 0 else None,
        stop_strings=tuple(s for s in stops if s),
    )
    loaded = model_cache().get(registered(req.model))
    check_token_ids(gen, loaded.model)
    messages, dropped, ids = _fit(loaded, messages, gen.max_new_tokens, req)
    return loaded, messages, gen, dropped, ids


def engine_values(req) -> dict:
    """The request's sampler fields in the engine's spelling (`values_of`); 400 naming a field it can not read."""
    try:
        return values_of(req)
    except DialectError as err:
        raise ApiError(str(err), param=err.param) from None


def check_token_ids(gen: GenerationSettings, model) -> None:
    """400 naming logit_bias or the token bans when one of their ids is outside the model's vocabulary."""
    vocab = model.config.vocab_size
    for field, ids in (("logit_bias", [t for t, _ in gen.logit_bias]), ("banned_tokens", gen.banned_tokens)):
        bad = [t for t in ids if t >= vocab]
        if bad:
            raise ApiError(f"{field}: token id {bad[0]} is outside this model's vocabulary of {vocab}", param=field)


def registered(name: str | None):
    """The model row of `name`; with no name, the first registered model (as text-generation-webui answers with
    the one it has loaded); 404 `model_not_found` otherwise."""
    if not name:
        rows = registry.list_models()
        if not rows:
            raise ApiError("no model is registered yet", 404, "not_found_error", param="model", code="model_not_found")
        return rows[0]
    row = registry.get_store().get_model(name)
    if row is None:
        raise ApiError(
            f"model '{name}' is not registered; GET /v1/models lists them",
            404,
            "not_found_error",
            param="model",
            code="model_not_found",
        )
    return row


def _fit(loaded, messages: list[dict], max_new_tokens: int, req: ChatRequest) -> tuple[list[dict], int, list[int]]:
    """The conversation with its oldest turns dropped until it fits the model's context and the server's limit
    (the system prompt and the last user message stay), and the prompt's ids; 400 `context_length_exceeded` when those alone do not."""
    context = context_of(loaded.model)
    limit = settings.config().limit_prompt_tokens
    field = "max_completion_tokens" if req.max_completion_tokens else "max_tokens"
    if max_new_tokens >= context:
        raise ApiError(
            f"{field}: {max_new_tokens} new tokens, but model '{loaded.name}' reads at most {context} in all",
            param=field,
            code="context_length_exceeded",
        )
    room = min(context - max_new_tokens, limit)
    try:
        _, ids, kept, dropped = fit_messages(loaded.tokenizer, loaded.format, messages, room)
    except ContextError as err:
        raise ApiError(
            f"messages: the prompt is {err.tokens} tokens even with only the system prompt and the last user "
            f"message kept; model '{loaded.name}' has a context of {context} positions, the reply may take "
            f"{max_new_tokens} and this server takes prompts of at most {limit} tokens (limit_prompt_tokens): "
            f"shorten the system prompt or the last message, or lower {field}",
            param="messages",
            code="context_length_exceeded",
        ) from err
    except RpEvalError:
        raise
    except Exception as err:  # noqa: BLE001 - a chat template's own refusal (jinja's raise_exception)
        raise ApiError(
            f"messages: model '{loaded.name}' can not take this conversation: {err}", param="messages"
        ) from err
    return kept, dropped, list(ids)


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
        "waited_seconds": result.waited_seconds,  # waiting for a place in the engine, before the prefill
    }


def usage_of(prompt_tokens: int, results: list[GenerationResult]) -> dict:
    """OpenAI's usage of a reply of several choices: the prompt counted once, every choice's new tokens."""
    made = sum(r.new_tokens for r in results)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": made, "total_tokens": prompt_tokens + made}


def _reply(req: ChatRequest, results: list[GenerationResult]) -> dict:
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": result.text},
            "logprobs": None,
            "finish_reason": OPENAI_REASON[result.finish_reason],
            "rp_eval": _extra(result),
        }
        for i, result in enumerate(results)
    ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model,
        "choices": choices,
        "usage": usage_of(results[0].prompt_tokens, results),
        "rp_eval": _extra(results[0]),  # the first choice's (each choice has its own under choices[i].rp_eval)
    }


def _start(req: ChatRequest, prepared=None) -> tuple[Iterator, tuple[int, str] | list[GenerationResult]]:
    """The reply's generator and its first item: every error a request can cause is raised here, before the
    response starts (a stream can not turn into a 400 after its first byte). Its items are `(choice, delta)`
    pairs, then the list of the `n` results."""
    loaded, messages, gen, dropped, _ = prepared or _prepare(req)
    items = stream_choices(loaded.model, loaded.tokenizer, loaded.format, messages, gen, req.n, priority=API)
    return started(_counting_dropped(items, dropped))


def started(items: Iterator) -> tuple[Iterator, str | GenerationResult]:
    """`items` with its first item taken (the generation's errors come out here); closed if that fails."""
    try:
        first = next(items)
    except BaseException:
        items.close()
        raise
    return items, first


def _counting_dropped(items: Iterator, dropped: int) -> Iterator:
    """The reply's items, its result counting the turns the API dropped to fit the context."""
    try:
        for item in items:
            for result in item if isinstance(item, list) else ():
                result.dropped_turns += dropped
            yield item
    finally:
        items.close()


def _next(items: Iterator):
    return next(items, None)


async def _complete(req: ChatRequest, request: Request) -> dict | None:
    """A whole reply; None when the client left."""
    prepared = await run_in_threadpool(_prepare, req)
    items, item = await run_in_threadpool(_start, req, prepared)
    results = await drain(items, item, request)
    if results is None:
        return None
    reply = _reply(req, results)
    if req.logprobs:
        loaded, ids = prepared[0], prepared[4]
        for choice, result in zip(reply["choices"], results, strict=True):
            top = req.top_logprobs or 0
            choice["logprobs"] = await run_in_threadpool(chat_logprobs, loaded, ids, result.token_ids, top)
    return reply


async def drain(items: Iterator, item, request: Request):
    """The result at the end of a reply's items (`item` the first, already taken): a `GenerationResult`, or the
    list of them of a reply of several choices; None as soon as the client is gone. The generator is closed
    either way, which stops the generation."""
    try:
        while not isinstance(item, GenerationResult | list):
            if item is None:
                raise ApiError("the reply ended without a result", 500, "server_error")
            if await request.is_disconnected():
                return None
            item = await run_in_threadpool(_next, items)
        return item
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(items.close)


def _chunk(
    req: ChatRequest, cid: str, created: int, delta: dict, reason: str | None = None, index: int = 0, **extra
) -> dict:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": req.model,
        "choices": [{"index": index, "delta": delta, "finish_reason": reason}],
        **extra,
    }


def _sse(body: dict) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _events(req: ChatRequest, items: Iterator, first, done) -> AsyncIterator[str]:
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def piece(item: tuple[int, str] | list[GenerationResult]) -> list[dict]:
        if isinstance(item, tuple):
            return [_chunk(req, cid, created, {"content": item[1]}, index=item[0])]
        # each choice's end, the last one carrying the usage of them all
        ends = [
            _chunk(req, cid, created, {}, OPENAI_REASON[r.finish_reason], index=i, rp_eval=_extra(r))
            for i, r in enumerate(item)
        ]
        ends[-1]["usage"] = usage_of(item[0].prompt_tokens, item)
        return ends

    head = [_chunk(req, cid, created, {"role": "assistant", "content": ""}, index=i) for i in range(req.n)]
    return events(items, first, done, head, piece)


async def events(items: Iterator, first, done, head: list[dict], piece) -> AsyncIterator[str]:
    """A reply's SSE chunks: `head`, then `piece(item)` (a chunk or a list of them) for each text delta and for
    the final result(s); the generator is closed when the stream ends or the client leaves, and `done` called."""
    item = first
    try:
        for body in head:
            yield _sse(body)
        while item is not None:
            bodies = piece(item)
            for body in bodies if isinstance(bodies, list) else [bodies]:
                yield _sse(body)
            if isinstance(item, GenerationResult | list):
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
    code = "missing_required_parameter" if detail["type"] == "missing" else "invalid_value"
    message = f"bad request: {where + ': ' if where else ''}{detail['msg']}"
    return _error(400, message, "invalid_request_error", param=where or None, code=code)


async def parse(request: Request, model: type[BaseModel]):
    """The request body as `model`, or the 400 to answer (not JSON, or a field out of its bounds)."""
    try:
        body = await request.json()
    except (ValueError, RecursionError) as err:
        return _error(400, f"bad request: the body is not valid JSON ({str(err)[:100]})", "invalid_request_error")
    try:
        return model.model_validate(body)
    except ValidationError as err:
        return _bad_request(err)


@router.post("/chat/completions")
async def chat_completions(request: Request):
    req = await parse(request, ChatRequest)
    if isinstance(req, JSONResponse):
        return req

    async def reply(done):
        if req.stream:
            items, first = await run_in_threadpool(_start, req)
            return _Stream(_events(req, items, first, done), media_type="text/event-stream")
        return await _complete(req, request)

    return await in_slot(request, reply)


async def in_slot(request: Request, reply):
    """`await reply(done)` in one of the client's in-flight places (waiting for one in its queue): a dict to
    answer, None when the client left, or a stream, which calls `done` when it ends and frees the place then."""
    client = _client(request)
    try:
        await IN_FLIGHT.acquire(client)
    except ApiError as err:
        return _answer(err)
    streaming = False
    try:
        answer = await reply(lambda: IN_FLIGHT.release(client))
        streaming = isinstance(answer, _Stream)
        return answer if answer is not None else JSONResponse({}, status_code=499)
    except ApiError as err:
        return _answer(err)
    except ValidationError as err:
        return _bad_request(err)
    except RpEvalError as err:
        return _error(400, str(err), "invalid_request_error")
    finally:
        if not streaming:
            IN_FLIGHT.release(client)


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def unknown_route(path: str, request: Request):
    """Every other /v1 path: a 404 in OpenAI's shape (the page's own mount would answer FastAPI's `detail`)."""
    raise ApiError(f"{request.method} /v1/{path} is not a route of this server", 404, code="unknown_url")


def install(app: FastAPI, login_required: bool = False) -> FastAPI:
    """Add the /v1 routes to a FastAPI app (the one the page is served from). `login_required` (a lab server with
    login): the API is closed unless an API key is set, so it is no way around the login."""
    from rp_eval import api_text, api_tokens  # their routes share this module's errors, key, limits and queue

    app.state.login_required = login_required
    # before `router`: its catch-all answers every /v1 path it reaches (FastAPI matches an included router as one)
    app.include_router(api_text.router)
    app.include_router(api_tokens.router)
    app.include_router(api_tokens.root)
    app.include_router(router)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, err: ApiError) -> JSONResponse:
        return _answer(err)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:  # logged; never a traceback in a reply
        log.error("error answering %s %s", request.method, request.url.path, exc_info=err)
        return _error(500, "internal error: the server could not answer this request (logged)", "server_error")

    # the catch-all must come after every /v1 route, also those other modules add: it is moved to the end
    routes = app.router.routes
    for route in [r for r in routes if getattr(r, "endpoint", None) is unknown_route]:
        routes.remove(route)
        routes.append(route)

    return app
