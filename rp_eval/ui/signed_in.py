"""Who sent the event being handled: the login on a lab server (Gradio's request of the running event)."""

from __future__ import annotations

from gradio.context import LocalContext

from rp_eval import auth


def login() -> str:
    """The signed-in name, or "" where the app runs without a login."""
    request = LocalContext.request.get(None)
    return getattr(request, "username", None) or ""


def scope() -> str | None:
    """Whose conversations this person may open: their own (their login, "" without one), or None (everyone's)
    for an admin of a lab server and for the one user of a local app."""
    name = login()
    return None if auth.is_admin(name) else name
