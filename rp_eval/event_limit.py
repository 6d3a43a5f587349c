"""A lab server's per-login limit on the page's generating events (a chat reply, a rating pair).

The page's queue has one cap for everyone (`max_size`); without a limit per person, one signed-in rater who
clicks fast, or a script, fills it and every other rater waits or is told the queue is full. Each page's queue is
asked, when an event joins it, how many generating events of that login are queued or running on any page; at
`limit_events_per_login` the event is refused with 429 and Retry-After, like the API's in-flight limit
(`rp_eval.api.InFlight`, per key or address), and the page shows the message in the person's language. The count
is read from the queue itself, so an event that finished, failed or was cancelled is never left counted.

Only logins are limited: a local app without a login has one person, and its events are left alone.
"""

from __future__ import annotations

from itertools import chain

from rp_eval import settings

# The page events that generate text (their Gradio api_name); the others (lists, votes, exports) are quick.
GENERATING = frozenset({"respond", "regenerate", "rate_new_pair", "rate_continue", "rate_new_single"})
# Page events that read an uploaded file, counted with them: a card import parses a file of up to 5 MB
COUNTED = GENERATING | {"import_card"}


class TooManyEvents(Exception):
    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} generating events of this login (limit_events_per_login {limit})")
        self.count, self.limit = count, limit


def _generating(fn) -> bool:
    return getattr(fn, "api_name", None) in COUNTED


_QUEUES: list = []  # the queue of every page installed (the raters' page, /rate, /admin): one count over all
_JOINING: dict[str, int] = {}  # events between the check and their queue (Gradio's push awaits before it appends)


def count(username: str) -> int:
    """Generating events of `username` waiting in a page's queue or running there now."""
    waiting = (
        event for queue in _QUEUES for line in queue.event_queue_per_concurrency_id.values() for event in line.queue
    )
    running = (event for queue in _QUEUES for job in queue.active_jobs if job for event in job)
    return sum(1 for e in chain(waiting, running) if e.username == username and _generating(e.fn))


def install(blocks) -> None:
    """Wrap `blocks`' queue so a login's generating event over the limit is refused when it joins."""
    from fastapi import HTTPException
    from gradio import route_utils

    queue = blocks._queue
    push = queue.push
    _QUEUES.append(queue)

    async def limited(body, request, username):
        try:
            fn = route_utils.get_fn(blocks, None, body)
        except Exception:  # noqa: BLE001 - Gradio's own push answers a bad event
            return await push(body, request, username)
        if not username or not _generating(fn):
            return await push(body, request, username)
        limit = settings.config().limit_events_per_login
        now = count(username) + _JOINING.get(username, 0)
        if now >= limit:  # checked and counted with no await between: two joins at once can not both pass
            raise HTTPException(429, detail=message(TooManyEvents(now, limit), request), headers={"Retry-After": "2"})
        _JOINING[username] = _JOINING.get(username, 0) + 1
        try:
            return await push(body, request, username)
        finally:
            _JOINING[username] -= 1
            if not _JOINING[username]:
                del _JOINING[username]

    queue.push = limited


def message(err: TooManyEvents, request) -> str:
    """The refusal in the page's language (the switch's cookie, else the browser's)."""
    from rp_eval.ui import locale

    language = locale.choose(request.cookies.get(locale.COOKIE), request.headers.get("accept-language"))
    return locale.text("busy_per_login", language).format(count=err.count, limit=err.limit)
