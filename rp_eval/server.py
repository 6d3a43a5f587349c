"""Serving the page and the OpenAI-compatible API together (`python app.py`, `rp-eval serve`)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path


def arguments(description: str = "rp_eval: the app") -> argparse.ArgumentParser:
    from rp_eval import settings

    p = argparse.ArgumentParser(
        description=description, epilog=settings.describe(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--auth", default=None, help="users YAML for a lab server's login (see: rp-eval users add)")


def serve(args: argparse.Namespace) -> int:
    from rp_eval import settings

    start = time.perf_counter()
    try:
        config = settings.config()
    except settings.ConfigError as err:
        sys.exit(f"error: {err}")
    from rp_eval.models import demo

    use_demo = not config.models
    waiting = contextlib.ExitStack()  # the first start's page holds the port until the real server takes it
    page = None
    if use_demo and not demo.demos_ready():  # answered before the heavy imports below
        from rp_eval.firststart import waiting_page

        page = waiting.enter_context(waiting_page(args.host, args.port))
        print(f"First start: {demo.first_start_plan()}; progress at http://{args.host}:{args.port}")
    from rp_eval.cli import _terminal_progress
    from rp_eval.models import registry
    from rp_eval.ui import build_app
    from rp_eval.ui.locale import both  # the login page comes before a language: it shows both

    problems = registry.register_configured()
    if use_demo:
        report = _terminal_progress()
        if page is not None:
            report = lambda *progress, bar=report: (bar(*progress), page(*progress))  # noqa: E731
        demo.build_demo_models(report)
    for line in problems:
        print(f"warning: {line}")
    from rp_eval import processes

    marked = {kind: runs for kind, runs in processes.sweep().items() if runs}
    for kind, runs in marked.items():
        print(f"{kind}: {len(runs)} run(s) left unfinished by a stopped process, now shown as interrupted")

    import gradio as gr
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse

    from rp_eval import api

    users = args.auth or config.auth
    server = api.install(FastAPI(title="rp_eval", docs_url=None, redoc_url=None, openapi_url=None), bool(users))
    # /rate: the blind page, the Rate tab alone: no model name anywhere in it before a vote
    blind_page = build_app(problems, demo_models=False, only={"rate_tab"})
    server.add_api_route("/rate", lambda: RedirectResponse("/rate/"), include_in_schema=False)
    mounted: dict[str, gr.Blocks] = {}
    if users:
        from rp_eval import paths
        from rp_eval.auth import AuthError, Login
        from rp_eval.ui import RATER_TABS

        paths.protect_users_file(users)  # no typed path or file input may name it
        try:
            raters, admins = Login(users), Login(users, admins_only=True)
            admins.throttle = raters.throttle  # one count of failures for both pages
        except AuthError as err:
            sys.exit(f"error: {err}")
        mounted["/admin"] = build_app(problems, demo_models=use_demo)
        mounted["/rate"] = blind_page
        mounted[""] = build_app(problems, demo_models=use_demo, only=RATER_TABS)
        server.add_api_route("/admin", lambda: RedirectResponse("/admin/"), include_in_schema=False)
        logins = {
            "/admin": (admins, both("login_admin")),
            "/rate": (raters, both("login")),
            "": (raters, both("login")),
        }
        for path, page in mounted.items():
            login, message = logins[path]
            # the async check: a password hash on Gradio's event loop would hold up every other request
            server = _mount(server, page, path, users, auth=login.check, auth_message=message)
        print(f"login required ({users}); raters at / (blind rating alone at /rate), admins at /admin")
    else:
        mounted["/rate"], mounted[""] = blind_page, build_app(problems, demo_models=use_demo)
        for path, page in mounted.items():
            server = _mount(server, page, path)
    from rp_eval.store import get_store

    schema = get_store().revision  # the Alembic revision the database was brought to (rp_eval.store.migrate)
    print(f"data: {settings.home()} (database {settings.database_url()}, schema {schema}); blind rating page: /rate")
    print(
        f"ready in {time.perf_counter() - start:.1f} s: http://{args.host}:{args.port}  (OpenAI-compatible API at /v1)"
    )
    _unknown_endpoints_not_found(server)
    waiting.close()
    from rp_eval.guard import Guard

    loopback = args.host in ("127.0.0.1", "localhost", "::1")  # elsewhere (a lab server, a Space) any Host
    hosts = list(config.allowed_hosts) if loopback else None
    guarded = Guard(server, {path: set(page.fns) for path, page in mounted.items()}, hosts=hosts)
    from rp_eval.upload_budget import start_purging

    start_purging()  # uploads older than keep_uploads_hours, now and every ten minutes
    _quiet_shutdown()
    # SIGTERM: open event streams are not waited for more than a few seconds
    uvicorn.run(guarded, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=3)
    return 0


def _quiet_shutdown() -> None:
    """A page's event stream still open when the server stops is cancelled after the grace period; uvicorn logs
    that as an error ("Cancel 1 running task(s), timeout graceful shutdown exceeded", then a traceback), which is
    no error of the app: the traceback is left out of the log, the line says what happened as information."""
    import asyncio
    import logging

    class _Cancelled(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if str(record.msg).startswith("Cancel %s running task(s)"):
                record.levelno, record.levelname = logging.INFO, "INFO"
                record.msg = "stopped: %s open page or API stream(s) closed"
            return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))

    for name in ("uvicorn.error", "uvicorn"):
        logging.getLogger(name).addFilter(_Cancelled())


def _private(blocks) -> None:
    """No event is listed in the page's API description (`window.gradio_api_info`, served before a login),
    so a visitor who has not signed in learns no endpoint name and no model name from it; the page still calls
    its events by number, and a signed-in client by name."""
    for fn in blocks.fns.values():
        if fn.api_visibility == "public":
            fn.api_visibility = "undocumented"


def _export_folders() -> list[str]:
    """Gradio hands out a file a handler returns only from the working folder, the temporary folder or an
    allowed path, and serves allowed paths to anyone signed in: so the workspace's export folders are added only
    when the workspace lies elsewhere, and never the whole workspace (the database, models, other runs)."""
    import tempfile

    from rp_eval import settings

    home = settings.home()
    if any(home.is_relative_to(Path(p).resolve()) for p in (os.getcwd(), tempfile.gettempdir())):
        return []
    return [str(home / "exports"), str(home / "evaluate" / "exports")]


def _mount(server, blocks, path: str, users: str | None = None, **login):
    """One page on the server, with Gradio's file checks on: a file input takes only a file uploaded through
    Gradio (a mounted app skips that check unless marked launched), so the database, the users file or any other
    server path named by a client is refused before it is opened; `/file=` serves only Gradio's upload and cache
    folders (plus the export folders, see `_export_folders`)."""
    import gradio as gr

    from rp_eval import event_limit, settings

    config = settings.config()
    _private(blocks)
    blocks.queue(default_concurrency_limit=4, max_size=64)
    event_limit.install(blocks)  # one login can not fill the queue for everyone
    server = gr.mount_gradio_app(
        server,
        blocks,
        path=path or "/",
        allowed_paths=_export_folders(),
        show_error=False,  # an unexpected exception's text (paths, internals) stays in the log; gr.Error is shown
        max_file_size=int(config.limit_upload_mb * 2**20),
        footer_links=[],
        app_kwargs={"docs_url": None, "redoc_url": None, "openapi_url": None},
        **login,
    )
    blocks.has_launched = True  # turns on Gradio's "was this file uploaded here?" check for the mounted page
    from starlette.routing import Mount

    from rp_eval.upload_budget import UploadBudget

    page = next(r.app for r in reversed(server.routes) if isinstance(r, Mount) and r.path == (path or ""))
    page.add_middleware(UploadBudget, page=page)  # bytes per login, the disk kept free (rp_eval.upload_budget)
    if users:  # sessions that end when their user changes in the users file (rp_eval.auth.Sessions)
        from rp_eval import auth

        page.tokens = auth.Sessions(auth.users_file(users))
    return server


def _unknown_endpoints_not_found(server) -> None:
    """Gradio answers a call to an endpoint its page does not have (an admin tab's, asked of the raters' page)
    with a 500 and a traceback in the log; answer 404 instead."""
    from fastapi.responses import JSONResponse
    from gradio.route_utils import FnIndexInferError
    from starlette.routing import Mount

    for route in server.routes:
        if isinstance(route, Mount) and hasattr(route.app, "add_exception_handler"):
            route.app.add_exception_handler(
                FnIndexInferError, lambda _request, err: JSONResponse({"error": str(err)}, status_code=404)
            )
