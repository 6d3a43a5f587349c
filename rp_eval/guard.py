"""The server's outer layer: every request passes here before the page or the API sees it.

It answers, with a JSON body and never a traceback: 413 for a body over `limit_body_bytes`; 400 for a JSON body
that is not JSON, nests deeper than `limit_json_depth`, or holds text that is not valid Unicode (a lone
surrogate such as `\\ud800`, which would crash whatever tries to store or encode it); 404 for a page event whose
`fn_index` the page does not have. It drops `all_endpoints` from a page's address (Gradio would describe every
event in the page served before a login). Uploads are left to Gradio's own `max_file_size`. It also remembers the
client's address for the login check (`rp_eval.auth`), which Gradio does not pass on.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from rp_eval import settings
from rp_eval.auth import CLIENT_ADDRESS

JSON_TYPES = ("application/json", "text/plain", "")  # what fetch() and scripts send JSON as


class BadRequest(ValueError):
    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param = status, param  # param: the body's field at fault, dotted (messages.0.content)


def check_json(body: bytes, depth_limit: int) -> object:
    """The parsed body, or BadRequest naming the problem."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise BadRequest(400, f"the JSON body nests deeper than {depth_limit} levels") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(400, f"the body is not valid JSON: {err}") from None
    stack = [(data, 1, "")]
    while stack:  # iterative: a deep body must not exhaust the stack here either
        value, depth, where = stack.pop()
        if isinstance(value, dict | list) and depth > depth_limit:
            raise BadRequest(400, f"the JSON body nests deeper than {depth_limit} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str):
                _check_text(key, where)
            if isinstance(item, str):
                _check_text(item, path)
            if isinstance(item, dict | list):
                stack.append((item, depth + 1, path))
    if isinstance(data, str):
        _check_text(data, "")
    return data


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        bad = text[err.start]
        field = f"{where}: " if where else ""
        raise BadRequest(
            400,
            f"{field}the text is not valid Unicode (an unpaired surrogate \\u{ord(bad):04x} at character {err.start})",
            where or None,
        ) from None


class Guard:
    """ASGI middleware around the whole server. `pages` maps a mount path ("/admin", "/rate", "") to the set
    of event numbers (`fn_index`) its page has."""

    def __init__(self, app, pages: dict[str, set[int]] | None = None) -> None:
        self.app, self.pages = app, dict(sorted((pages or {}).items(), key=lambda kv: -len(kv[0])))

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("?", 0)
        token = CLIENT_ADDRESS.set(str(client[0]))
        try:
            await self._http(scope, receive, send)
        finally:
            CLIENT_ADDRESS.reset(token)

    async def _http(self, scope, receive, send) -> None:
        path: str = scope.get("path", "")
        query: bytes = scope.get("query_string", b"")
        if b"all_endpoints" in query and not path.rstrip("/").endswith("/info"):
            # a page asked with ?all_endpoints describes every event, names and choices, before any login
            kept = [p for p in query.split(b"&") if not p.startswith(b"all_endpoints")]
            scope = {**scope, "query_string": b"&".join(kept)}
        if scope["method"] not in ("POST", "PUT", "PATCH") or path.endswith("/upload"):
            await self.app(scope, receive, send)
            return
        limits = settings.config()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.limit_body_bytes:
            await _reply(send, 413, _too_big(limits.limit_body_bytes))
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limits.limit_body_bytes:
                await _reply(send, 413, _too_big(limits.limit_body_bytes))
                return
        kind = headers.get("content-type", "").split(";")[0].strip()
        if body and kind in JSON_TYPES:
            try:
                data = check_json(body, limits.limit_json_depth)
                self._check_event(path, data)
            except BadRequest as err:
                await _reply(send, err.status, str(err), err.param)
                return
        await self.app(scope, _replay(body, receive), send)

    def _check_event(self, path: str, data: object) -> None:
        if "/gradio_api/" not in path or not isinstance(data, dict) or data.get("fn_index") is None:
            return
        mount = next((m for m in self.pages if path == m or path.startswith(m + "/")), None)
        if mount is None:
            return
        fn = data["fn_index"]
        if isinstance(fn, bool) or not isinstance(fn, int) or fn not in self.pages[mount]:
            shown = json.dumps(fn)[:40]
            raise BadRequest(404, f"this page has no event number {shown}")


def _too_big(limit: int) -> str:
    return f"the request body is larger than {limit} bytes (the limit_body_bytes setting)"


def _replay(body: bytes, receive: Callable):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


CODES = {400: "invalid_value", 404: "not_found", 413: "request_too_large"}  # OpenAI's string codes, as the API's


async def _reply(send, status: int, message: str, param: str | None = None) -> None:
    kind = "invalid_request_error" if status < 500 else "server_error"
    error = {"message": message, "type": kind, "param": param, "code": CODES.get(status, "error")}
    payload = json.dumps({"error": error}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})
