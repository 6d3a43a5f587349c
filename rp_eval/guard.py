"""The server's outer layer: every request passes here before the page or the API sees it.

It answers, with a JSON body in OpenAI's error shape (`{"error": {"message", "type", "param", "code"}}`, the
message in the request's language) and never a traceback: 413 for a body over `limit_body_bytes`; 415 for a body
to `/v1` that is not declared JSON (`application/json` or a `+json` type: form posts, multipart, `text/plain`,
`text/html` ... are refused before the API reads them, so a cross-origin "simple" request of a web page never
runs); 400 for a body that is not JSON where JSON is declared, nests deeper than `limit_json_depth`, or holds
text that is not valid Unicode (a lone surrogate such as `\\ud800`, which would crash whatever tries to store or
encode it); 404 for a page event whose `fn_index` the page does not have. These checks apply whatever the
Content-Type says: a body declared as anything else is still checked as JSON when it parses as JSON (FastAPI and
Gradio read any `+json` type as JSON), and a form body must decode as UTF-8. It drops `all_endpoints` from a page's address (Gradio would describe every
event in the page served before a login). Uploads are left to Gradio's own `max_file_size`. It also remembers the
client's address for the login check (`rp_eval.auth`), which Gradio does not pass on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qsl

from rp_eval import settings
from rp_eval.auth import CLIENT_ADDRESS
from rp_eval.errors import MESSAGES, format_message

JSON_TYPES = ("application/json", "text/plain", "")  # what fetch() and scripts send JSON as
FORM_TYPE = "application/x-www-form-urlencoded"
CODES = {
    400: "invalid_value",
    403: "host_not_allowed",
    404: "unknown_event",
    413: "request_too_large",
    415: "unsupported_media_type",
}
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


class BadRequest(ValueError):
    """A refusal with its message key (rp_eval.errors.MESSAGES) and values: `str()` is the English text."""

    def __init__(self, status: int, key: str, **values: object) -> None:
        super().__init__(format_message(key, values, MESSAGES))
        self.status, self.key, self.values = status, key, values
        self.param: str | None = None  # the body's field at fault, where one is

    def text(self, headers: dict[str, str]) -> str:
        """The message in the request's language: the page's language cookie, else the first of Accept-Language."""
        from http.cookies import CookieError, SimpleCookie

        try:
            cookie = SimpleCookie(headers.get("cookie", "")).get("rp_lang")
        except CookieError:
            cookie = None
        language = cookie.value if cookie is not None else ""
        first = headers.get("accept-language", "").split(",")[0].strip().lower()
        if language == "ja" or (language not in ("en", "ja") and first.startswith("ja")):
            from rp_eval.ui.locale_ja import JA  # a plain table; the server has the UI loaded anyway

            return format_message(self.key, self.values, JA)
        return str(self)


def is_json(kind: str) -> bool:
    """Whether FastAPI (and so the API and Gradio) reads a body of this media type as JSON."""
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def check_json(body: bytes, depth_limit: int) -> object:
    """The parsed body, or BadRequest naming the problem."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise BadRequest(400, "err_guard_json_depth", limit=depth_limit) from None
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(400, "err_guard_not_json", detail=str(err)[:100]) from None
    stack = [(data, 1, "")]
    while stack:  # iterative: a deep body must not exhaust the stack here either
        value, depth, where = stack.pop()
        if isinstance(value, dict | list) and depth > depth_limit:
            raise BadRequest(400, "err_guard_json_depth", limit=depth_limit)
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
        refusal = BadRequest(400, "err_guard_surrogate", code=f"\\u{ord(bad):04x}", field=where or "body", at=err.start)
        refusal.param = where or None  # the body's field at fault, dotted (messages.0.content)
        raise refusal from None


def check_form(body: bytes) -> None:
    """A form body (`a=1&b=2`) whose fields do not decode as UTF-8 (a lone surrogate sent as `%ED%A0%80`): refused."""
    try:
        parse_qsl(body.decode("ascii", "strict"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as err:
        raise BadRequest(400, "err_guard_form", detail=str(err)[:100]) from None


class Guard:
    """ASGI middleware around the whole server. `pages` maps a mount path ("/admin", "/rate", "") to the set
    of event numbers (`fn_index`) its page has."""

    def __init__(self, app, pages: dict[str, set[int]] | None = None, hosts: list[str] | None = None) -> None:
        self.app, self.pages = app, dict(sorted((pages or {}).items(), key=lambda kv: -len(kv[0])))
        self.hosts = None if hosts is None else {h.lower() for h in (*LOCAL_NAMES, *hosts)}

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

    def _host_allowed(self, headers: dict[str, str]) -> bool:
        # a server on loopback answers only for its own names: a web page on another site that points its DNS
        # name at 127.0.0.1 (DNS rebinding) sends that name as Host, and is refused
        if self.hosts is None:
            return True
        host = headers.get("host", "").strip().lower()
        name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0] if ":" in host else host
        return name in self.hosts or name.endswith(".localhost")

    async def _http(self, scope, receive, send) -> None:
        path: str = scope.get("path", "")
        if self.hosts is not None:
            raw = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            if not self._host_allowed(raw):
                host = raw.get("host", "")[:100]
                await _reply(
                    send, BadRequest(403, "err_guard_host", host=host, names=", ".join(sorted(self.hosts))), raw
                )
                return
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
        too_big = BadRequest(413, "err_guard_too_big", limit=limits.limit_body_bytes)
        if declared.isdigit() and int(declared) > limits.limit_body_bytes:
            await _reply(send, too_big, headers)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limits.limit_body_bytes:
                await _reply(send, too_big, headers)
                return
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            self._check_body(path, kind, body, limits.limit_json_depth)
        except BadRequest as err:
            await _reply(send, err, headers)
            return
        await self.app(scope, _replay(body, receive), send)

    def _check_body(self, path: str, kind: str, body: bytes, depth_limit: int) -> None:
        if (path == "/v1" or path.startswith("/v1/")) and (body or kind) and not is_json(kind):
            # the API reads JSON only; refusing the rest here also stops a web page's cross-origin "simple" POST
            # (text/plain, a form), which a browser sends without asking the server first
            raise BadRequest(415, "err_guard_media_type", path=path, kind=kind or "none")
        if not body:
            return
        if kind in JSON_TYPES or is_json(kind):
            self._check_event(path, check_json(body, depth_limit))
            return
        if kind == FORM_TYPE:
            check_form(body)
        try:  # declared as something else (a form, text/html, multipart ...): still checked if it reads as JSON
            data = check_json(body, depth_limit)
        except BadRequest as err:
            if err.key == "err_guard_not_json":
                return
            raise
        self._check_event(path, data)

    def _check_event(self, path: str, data: object) -> None:
        if "/gradio_api/" not in path or not isinstance(data, dict) or data.get("fn_index") is None:
            return
        mount = next((m for m in self.pages if path == m or path.startswith(m + "/")), None)
        if mount is None:
            return
        fn = data["fn_index"]
        if isinstance(fn, bool) or not isinstance(fn, int) or fn not in self.pages[mount]:
            raise BadRequest(404, "err_guard_no_event", fn=json.dumps(fn)[:40])


def _replay(body: bytes, receive: Callable):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _reply(send, err: BadRequest, headers: dict[str, str]) -> None:
    kind = "invalid_request_error" if err.status < 500 else "server_error"
    body = {"error": {"message": err.text(headers), "type": kind, "param": err.param, "code": CODES.get(err.status)}}
    payload = json.dumps(body, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": err.status,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
