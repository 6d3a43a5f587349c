"""What a page's uploads may cost the server: bytes per login over a window, the disk kept free, old files purged.

Gradio caps one file (`limit_upload_mb`) but not how many: one rater could send a dozen 9 MB files in two seconds
and keep them all, and a full disk stops votes. Each page's upload route (`.../gradio_api/upload`) therefore
passes `UploadBudget` first:
- a login may upload `limit_upload_mb_per_login` MB per `limit_upload_window_minutes` (counted by the body's
  declared length, before it is read; an upload that Gradio then refuses is not counted); over it, 429 with
  Retry-After and a message in the page's language naming the limit. The count lives in the server's memory
  (a restart starts it again). A local app without a login has one person and no budget.
- while the disk of the workspace or of the upload folder has less than `limit_disk_free_mb` free, every upload
  (and so every card import) is refused with 507 naming the space left and the setting; votes and chat turns,
  which write a few kilobytes each, keep that space to go on working.
- files in the upload folder older than `keep_uploads_hours` are deleted at start and every ten minutes
  (`purge`). Gradio's own `delete_cache` forgets the files of an earlier run, so it is not used here.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import threading
import time
from collections import defaultdict, deque
from http.cookies import CookieError, SimpleCookie
from pathlib import Path

from rp_eval import settings
from rp_eval.errors import RpEvalError

PURGE_EVERY_S = 600


class UploadRefused(RpEvalError):
    """An upload or import refused for the disk's sake, naming the space left and the setting."""


class Ledger:
    """Bytes uploaded by each login over the last window (in memory, one per server)."""

    def __init__(self) -> None:
        self._sent: dict[str, deque[tuple[float, int]]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _trim(self, name: str, now: float, window: float) -> deque[tuple[float, int]]:
        sent = self._sent[name]
        while sent and sent[0][0] <= now - window:
            sent.popleft()
        return sent

    def used(self, name: str, window: float, now: float | None = None) -> int:
        with self._lock:
            return sum(n for _, n in self._trim(name, now or time.time(), window))

    def take(self, name: str, size: int, limit: int, window: float, now: float | None = None) -> float | None:
        """Count `size` bytes for `name` if they fit under `limit`: None; else the seconds until they would fit."""
        now = now or time.time()
        with self._lock:
            sent = self._trim(name, now, window)
            used = sum(n for _, n in sent)
            if used + size <= limit:
                sent.append((now, size))
                return None
            freed, wait = used + size - limit, window
            for at, n in sent:
                freed -= n
                if freed <= 0:
                    wait = at + window - now
                    break
            return max(1.0, wait)

    def give_back(self, name: str, size: int) -> None:
        with self._lock:
            sent = self._sent[name]
            for i in range(len(sent) - 1, -1, -1):
                if sent[i][1] == size:
                    del sent[i]
                    return


LEDGER = Ledger()


def upload_folder() -> Path:
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


def check_disk() -> None:
    """UploadRefused while the workspace's or the upload folder's disk has less than `limit_disk_free_mb` free."""
    limit = settings.config().limit_disk_free_mb
    for folder in (settings.home(), upload_folder()):
        probe = Path(folder)
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free = shutil.disk_usage(probe).free / 2**20
        if free < limit:
            raise UploadRefused(key="err_upload_disk_low", free=f"{free:.0f}", limit=f"{limit:g}", folder=str(folder))


def purge(folder: Path, age_s: float, now: float | None = None) -> tuple[int, int]:
    """Delete files under `folder` last changed more than `age_s` ago, then the folders left empty;
    (files, bytes) removed."""
    now = now or time.time()
    files = size = 0
    if not folder.is_dir():
        return 0, 0
    for root, dirs, names in os.walk(folder, topdown=False):
        for name in names:
            path = Path(root) / name
            try:
                st = path.lstat()
                if now - st.st_mtime > age_s:
                    path.unlink()
                    files, size = files + 1, size + st.st_size
            except OSError:  # gone meanwhile, or not ours to delete
                continue
        for name in dirs:
            with contextlib.suppress(OSError):
                (Path(root) / name).rmdir()  # only when empty
    return files, size


def start_purging() -> threading.Thread:
    """Purge the upload folder now and every ten minutes, in a daemon thread; each purge that removed something
    prints one line."""

    def run() -> None:
        while True:
            age = settings.config().keep_uploads_hours * 3600
            files, size = purge(upload_folder(), age)
            if files:
                print(f"uploads: removed {files} files ({size / 2**20:.1f} MB) older than {age / 3600:g} h", flush=True)
            time.sleep(PURGE_EVERY_S)

    thread = threading.Thread(target=run, name="upload-purge", daemon=True)
    thread.start()
    return thread


class UploadBudget:
    """ASGI middleware in front of one Gradio page (`page`, its FastAPI app: its `tokens` and `cookie_id` say who
    is signed in), for that page's upload route."""

    def __init__(self, app, page) -> None:
        self.app, self.page = app, page

    def _login(self, headers: dict[str, str]) -> str | None:
        try:
            cookies = SimpleCookie(headers.get("cookie", ""))
        except CookieError:
            return None
        cookie_id = getattr(self.page, "cookie_id", "")
        for name in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"):
            if name in cookies:
                return self.page.tokens.get(cookies[name].value)
        return None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].rstrip("/").endswith("/upload"):
            await self.app(scope, receive, send)
            return
        from rp_eval.guard import BadRequest

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            check_disk()
        except UploadRefused as err:
            await _reply(send, BadRequest(507, err.key, **err.values), headers)
            return
        name = self._login(headers) if getattr(self.page, "auth", None) is not None else None
        if not name:  # no login on this page (a local app), or none yet (Gradio's login check answers 401)
            await self.app(scope, receive, send)
            return
        declared = headers.get("content-length", "")
        if not declared.isdigit():
            await _reply(send, BadRequest(411, "err_upload_no_length"), headers)
            return
        config, size = settings.config(), int(declared)
        window, limit = config.limit_upload_window_minutes * 60, int(config.limit_upload_mb_per_login * 2**20)
        wait = LEDGER.take(name, size, limit, window)
        if wait is not None:
            used = LEDGER.used(name, window) / 2**20
            minutes = config.limit_upload_window_minutes
            err = BadRequest(
                429,
                "err_upload_budget",
                used=f"{used:.1f}",
                limit=f"{config.limit_upload_mb_per_login:g}",
                minutes=minutes,
                wait=math.ceil(wait / 60),
            )
            await _reply(send, err, headers, retry_after=math.ceil(wait))
            return
        status = {}

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if status.get("code") != 200:  # refused by Gradio (too big, not a form) or broken off: not counted
                LEDGER.give_back(name, size)


async def _reply(send, err, headers: dict[str, str], retry_after: int | None = None) -> None:
    """Plain text, as Gradio answers its own upload refusals: the page's upload shows the text."""
    payload = err.text(headers).encode("utf-8")
    head = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(payload)).encode())]
    if retry_after is not None:
        head.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": err.status, "headers": head})
    await send({"type": "http.response.body", "body": payload})
