"""The tokenizer routes role-play clients and harnesses call: `POST /tokenize` and `POST /detokenize` in vLLM's
shapes ({model, prompt} -> {tokens, count, max_model_len}; {model, tokens} -> {prompt}), and text-generation-
webui's `GET /v1/internal/model/info` ({model_name, lora_names}), `POST /v1/internal/token-count` ({text} ->
{length}), `/v1/internal/encode` ({text} -> {tokens, length}) and `/v1/internal/decode` ({tokens} -> {text}),
which SillyTavern's ooba type uses to count a prompt's tokens. With no `model` field: the first registered
model, the one SillyTavern shows as loaded (`model_name`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rp_eval import scoring
from rp_eval.api import ApiError, _check_key, parse, registered
from rp_eval.api_text import unicode_text
from rp_eval.chat.generate import context_of
from rp_eval.models.loading import model_cache

router = APIRouter(prefix="/v1", dependencies=[Depends(_check_key)])
root = APIRouter(dependencies=[Depends(_check_key)])  # vLLM's tokenizer routes have no /v1


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = Field(None, max_length=300)
    prompt: str | None = None  # vLLM's name
    text: str | None = None  # text-generation-webui's name
    add_special_tokens: bool = True


class DetokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = Field(None, max_length=300)
    tokens: list[int] = Field(min_length=0, max_length=1_000_000)


def _tokenize(req: TokenizeRequest) -> tuple[object, list[int]]:
    if (req.model_extra or {}).get("messages") is not None:
        raise ApiError("messages: only a text prompt is tokenised here; send prompt", param="messages")
    field = "prompt" if req.text is None else "text"
    value = req.prompt if req.prompt is not None else req.text
    if value is None:
        raise ApiError("prompt: missing (the text to tokenise)", param="prompt", code="missing_required_parameter")
    loaded = model_cache().get(registered(req.model))
    ids = loaded.tokenizer(unicode_text(value, field), add_special_tokens=req.add_special_tokens)["input_ids"]
    return loaded, ids


def _detokenize(req: DetokenizeRequest) -> str:
    loaded = model_cache().get(registered(req.model))
    try:
        scoring.check_ids(req.tokens, loaded.model, loaded.tokenizer)
    except scoring.ScoringError as err:
        raise ApiError(f"tokens: {err}", param="tokens") from err
    return loaded.tokenizer.decode(req.tokens)


@root.post("/tokenize")
async def tokenize(request: Request):
    req = await parse(request, TokenizeRequest)
    if isinstance(req, JSONResponse):
        return req
    loaded, ids = await run_in_threadpool(_tokenize, req)
    return {"tokens": ids, "count": len(ids), "max_model_len": context_of(loaded.model)}


@root.post("/detokenize")
async def detokenize(request: Request):
    req = await parse(request, DetokenizeRequest)
    if isinstance(req, JSONResponse):
        return req
    return {"prompt": await run_in_threadpool(_detokenize, req)}


@router.get("/internal/model/info")
def model_info() -> dict:
    return {"model_name": registered(None).name, "lora_names": []}


@router.post("/internal/token-count")
async def token_count(request: Request):
    req = await parse(request, TokenizeRequest)
    if isinstance(req, JSONResponse):
        return req
    _, ids = await run_in_threadpool(_tokenize, req)
    return {"length": len(ids)}


@router.post("/internal/encode")
async def encode(request: Request):
    req = await parse(request, TokenizeRequest)
    if isinstance(req, JSONResponse):
        return req
    _, ids = await run_in_threadpool(_tokenize, req)
    return {"tokens": ids, "length": len(ids)}


@router.post("/internal/decode")
async def decode(request: Request):
    req = await parse(request, DetokenizeRequest)
    if isinstance(req, JSONResponse):
        return req
    return {"text": await run_in_threadpool(_detokenize, req)}
