"""The first start's waiting page: while the demo models are built, the app's address already answers with a page
that shows the build's progress (the terminal keeps its own bar), instead of "site can't be reached".

A small standard-library HTTP server holds the port during the build and is closed right before the real server
binds it. Every path answers 503 with `Retry-After` (API clients learn to come back); a browser gets the page,
which polls `/__first_start.json` and reloads itself once the real app answers. The page comes before any language
choice, so it speaks Japanese and English together, as the login page does.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATUS_PATH = "/__first_start.json"

PAGE = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>rp_eval</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:"Noto Sans CJK JP",sans-serif;max-width:46em;margin:3em auto;padding:0 1em;color:#222}}
progress{{width:100%;height:1.4em}} .en{{color:#555}}</style></head>
<body><h1>rp_eval</h1>
<p>初めての起動です。オフラインで試せる小さなデモモデルを準備しています。終わると自動でアプリが開きます。</p>
<p class="en">First start: the tiny offline demo models are being prepared on this machine. The app opens by itself
when they are ready.</p>
<progress id="first-start-bar" value="{done}" max="{total}"></progress>
<p id="first-start-text">{message} ({done}/{total})</p>
<p id="first-start-time">{clock}</p>
<script>
const bar = document.getElementById("first-start-bar"), text = document.getElementById("first-start-text");
const clock = document.getElementById("first-start-time");
async function poll() {{
  try {{
    const r = await fetch("{status}", {{cache: "no-store"}});
    if (r.status === 503) {{
      const s = await r.json();
      bar.max = Math.max(s.total, 1); bar.value = s.done;
      text.textContent = s.message + " (" + s.done + "/" + s.total + ")";
      clock.textContent = s.clock;
    }} else {{ location.reload(); return; }}
  }} catch (e) {{ /* the real server is taking over the port: try again */ }}
  setTimeout(poll, 1000);
}}
setTimeout(poll, 1000);
</script></body></html>
"""


def clock_line(elapsed: float, left: float | None) -> str:
    """Elapsed time and, once some work is done, the time left at the pace so far, in both languages."""
    if left is None:
        return f"経過 {elapsed:.0f} 秒 / {elapsed:.0f} s elapsed"
    return f"経過 {elapsed:.0f} 秒・残り約 {left:.0f} 秒 / {elapsed:.0f} s elapsed, about {left:.0f} s left"


class _State:
    def __init__(self) -> None:
        self.message, self.done, self.total = "starting", 0, 0
        self.began = time.monotonic()
        self.lock = threading.Lock()

    def as_dict(self) -> dict:
        with self.lock:
            elapsed = time.monotonic() - self.began
            left = elapsed * (self.total - self.done) / self.done if 0 < self.done <= self.total else None
            return {
                "message": self.message,
                "done": self.done,
                "total": self.total,
                "elapsed_s": round(elapsed, 1),
                "left_s": None if left is None else round(left, 1),
                "clock": clock_line(elapsed, left),
            }


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(503)
            self.send_header("Content-Type", kind)
            self.send_header("Retry-After", "5")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            now = state.as_dict()
            if self.path.split("?")[0] == STATUS_PATH:
                self._send(json.dumps(now, ensure_ascii=False).encode(), "application/json")
            elif self.path.startswith("/v1"):
                error = {
                    "error": {"message": "the server is starting: the demo models are being built", "progress": now}
                }
                self._send(json.dumps(error, ensure_ascii=False).encode(), "application/json")
            else:
                values = {k: html.escape(str(now[k])) for k in ("message", "done", "total", "clock")}
                page = PAGE.format(status=STATUS_PATH, **values)
                self._send(page.encode(), "text/html; charset=utf-8")

        do_HEAD = do_GET
        do_POST = do_GET

        def log_message(self, *args) -> None:  # the terminal shows the build's bar, not a line per poll
            pass

    return Handler


@contextmanager
def waiting_page(host: str, port: int) -> Iterator[Callable[[str, int, int], None]]:
    """Serve the waiting page on host:port for the duration of the block; yields a progress callback
    (message, done, total) for the build. If the port can not be bound, the block runs without a page."""
    state = _State()

    def report(message: str, done: int, total: int) -> None:
        with state.lock:
            state.message, state.done, state.total = message, done, total

    try:
        server = ThreadingHTTPServer((host, port), _handler(state))
    except OSError:
        yield report
        return
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="first-start-page", daemon=True)
    thread.start()
    try:
        yield report
    finally:
        server.shutdown()
        server.server_close()
