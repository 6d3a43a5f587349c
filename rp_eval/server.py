"""Serving the page and the OpenAI-compatible API together (`python app.py`, `rp-eval serve`)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time


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
        print(f"First start: building the tiny offline demo models (about a minute and a half on 2 quiet CPU "
              f"cores); progress at http://{args.host}:{args.port}")  # fmt: skip
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

    import gradio as gr
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse

    from rp_eval import api

    users = args.auth or config.auth
    server = api.install(FastAPI(title="rp_eval"), login_required=bool(users))
    # /rate: the blind page, the Rate tab alone: no model name anywhere in it before a vote
    blind_page = build_app(problems, demo_models=False, only={"rate_tab"}).queue(default_concurrency_limit=4)
    server.add_api_route("/rate", lambda: RedirectResponse("/rate/"), include_in_schema=False)
    if users:
        from rp_eval.auth import AuthError, Login
        from rp_eval.ui import RATER_TABS

        try:
            raters, admins = Login(users), Login(users, admins_only=True)
        except AuthError as err:
            sys.exit(f"error: {err}")
        admin_page = build_app(problems, demo_models=use_demo).queue(default_concurrency_limit=4)
        rater_page = build_app(problems, demo_models=use_demo, only=RATER_TABS).queue(default_concurrency_limit=4)
        server.add_api_route("/admin", lambda: RedirectResponse("/admin/"), include_in_schema=False)
        server = gr.mount_gradio_app(server, admin_page, path="/admin", auth=admins, auth_message=both("login_admin"))
        server = gr.mount_gradio_app(server, blind_page, path="/rate", auth=raters, auth_message=both("login"))
        server = gr.mount_gradio_app(server, rater_page, path="/", auth=raters, auth_message=both("login"))
        print(f"login required ({users}); raters at / (blind rating alone at /rate), admins at /admin")
    else:
        blocks = build_app(problems, demo_models=use_demo).queue(default_concurrency_limit=4)
        server = gr.mount_gradio_app(server, blind_page, path="/rate")
        server = gr.mount_gradio_app(server, blocks, path="/")
    print(f"data: {settings.home()} (database {settings.database_url()}); blind rating page: /rate")
    print(
        f"ready in {time.perf_counter() - start:.1f} s: http://{args.host}:{args.port}  (OpenAI-compatible API at /v1)"
    )
    _unknown_endpoints_not_found(server)
    waiting.close()
    uvicorn.run(server, host=args.host, port=args.port, log_level="warning")
    return 0


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
