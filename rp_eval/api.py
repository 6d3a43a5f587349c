"""An OpenAI-compatible HTTP API beside the page: `GET /v1/models`, `POST /v1/chat/completions`.

So SillyTavern, the `openai` client and evaluation harnesses can talk to any registered model. Replies come
from the same `rp_eval.chat.generate.stream` as the chat tab, with the same stop rules. `finish_reason` is
OpenAI's `stop` (eos or a stop string) or `length` (the token cap); the project's own reason, the raw text and
whether the cap cut a sentence are in the extra `rp_eval` field. A streamed reply that hits the cap may have
streamed a sentence fragment that the final `rp_eval.text` trims away (a stream can not take text back).

Set `RP_EVAL_API_KEY` to require `Authorization: Bearer <key>`.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, ValidationError

from rp_eval import settings
from rp_eval.chat.generate import GenerationResult, GenerationSettings, stream
from rp_eval.errors import RpEvalError
from rp_eval.models import registry
from rp_eval.models.loading import model_cache

OPENAI_REASON = {"eos": "stop", "stop_string": "stop", "length": "length", "length_trimmed": "length"}


class ChatMessage(BaseModel):
    role: str
    content: str | list[dict] = ""

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.get("text", "") for part in self.content if part.get("type") == "text")


class ChatRequest(BaseModel):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.7, ge=0.0, le=5.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    repetition_penalty: float = Field(1.0, gt=0.0, le=3.0)
    frequency_penalty: float = 0.0  # accepted for compatibility; not used
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    n: int = Field(1, ge=1, le=1)


class ApiError(RpEvalError):
    def __init__(self, message: str, status: int = 400, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def _check_key(request: Request, authorization: str | None = Header(None)) -> None:
    key = settings.config().api_key
    if not key and getattr(request.app.state, "login_required", False):  # a lab server: no way in without a key
        raise ApiError("this server asks for a login: the API needs RP_EVAL_API_KEY set", 401, "authentication_error")
    if key and not secrets.compare_digest(authorization or "", f"Bearer {key}"):
        raise ApiError("missing or wrong API key (Authorization: Bearer ...)", 401, "authentication_error")


router = APIRouter(prefix="/v1", dependencies=[Depends(_check_key)])


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


def _prepare(req: ChatRequest):
    roles = {"system", "user", "assistant"}
    bad = [m.role for m in req.messages if m.role not in roles]
    if bad:
        raise ApiError(f"unsupported message role '{bad[0]}' (use system, user, assistant)")
    messages = [{"role": m.role, "content": m.text()} for m in req.messages]
    stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    settings = GenerationSettings(
        max_new_tokens=req.max_completion_tokens or req.max_tokens or 256,
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=req.top_k,
        repetition_penalty=req.repetition_penalty,
        seed=req.seed,
        stop_strings=tuple(s for s in stops if s),
    )
    row = registry.get_store().get_model(req.model)
    if row is None:
        raise ApiError(f"model '{req.model}' is not registered; GET /v1/models lists them", 404, "not_found_error")
    loaded = model_cache().get(row)
    return loaded, messages, settings


def _extra(result: GenerationResult) -> dict:
    return {
        "finish_reason": result.finish_reason,
        "text": result.text,
        "raw_text": result.raw_text,
        "cut_mid_sentence": result.cut_mid_sentence,
        "stop": result.stop,
        "first_token_seconds": result.first_token_seconds,
        "tokens_per_second": result.tokens_per_second,
    }


def _usage(result: GenerationResult) -> dict:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.new_tokens,
        "total_tokens": result.prompt_tokens + result.new_tokens,
    }


def _complete(req: ChatRequest) -> dict:
    loaded, messages, settings = _prepare(req)
    *_, result = stream(loaded.model, loaded.tokenizer, loaded.format, messages, settings)
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


def _sse(req: ChatRequest) -> Iterator[str]:
    loaded, messages, settings = _prepare(req)  # errors here become an HTTP error, before the stream starts
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict, reason: str | None = None, **extra: object) -> str:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": req.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    def events() -> Iterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        for item in stream(loaded.model, loaded.tokenizer, loaded.format, messages, settings):
            if isinstance(item, str):
                yield chunk({"content": item})
            else:
                yield chunk({}, OPENAI_REASON[item.finish_reason], usage=_usage(item), rp_eval=_extra(item))
        yield "data: [DONE]\n\n"

    return events()


@router.post("/chat/completions")
async def chat_completions(request: Request):
    try:
        req = ChatRequest.model_validate(await request.json())
    except (ValidationError, ValueError) as err:
        detail = err.errors()[0] if isinstance(err, ValidationError) else {"loc": (), "msg": str(err)}
        where = ".".join(str(p) for p in detail["loc"])
        return _error(400, f"bad request: {where + ': ' if where else ''}{detail['msg']}", "invalid_request_error")
    try:
        if req.stream:
            events = await run_in_threadpool(_sse, req)
            return StreamingResponse(iterate_in_threadpool(events), media_type="text/event-stream")
        return await run_in_threadpool(_complete, req)
    except ApiError as err:
        return _error(err.status, str(err), err.kind)
    except ValidationError as err:
        e = err.errors()[0]
        return _error(400, f"bad request: {'.'.join(map(str, e['loc']))}: {e['msg']}", "invalid_request_error")
    except RpEvalError as err:
        return _error(400, str(err), "invalid_request_error")


def install(app: FastAPI, login_required: bool = False) -> FastAPI:
    """Add the /v1 routes to a FastAPI app (the one the page is served from). `login_required` (a lab server with
    login): the API is closed unless an API key is set, so it is no way around the login."""
    app.state.login_required = login_required
    app.include_router(router)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, err: ApiError) -> JSONResponse:
        return _error(err.status, str(err), err.kind)

    return app
