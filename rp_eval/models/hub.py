"""Whether a Hugging Face hub id can be read now, told in seconds instead of after a minute of retries.

With no network, `from_pretrained("owner/name")` retries for about a minute before it fails. Before a hub id is
read, `hub_kwargs` tries one TCP connection to the hub (or to the HTTPS proxy that reaches it) for
`PROBE_SECONDS`: when that fails, a model already in the local cache is read from it (`local_files_only`), and
any other id is refused at once with a hint (offline mode, or a folder). `HF_HUB_OFFLINE=1` skips the probe:
transformers then reads the cache only. huggingface_hub has no such check of its own, hence these lines.
"""

from __future__ import annotations

import os
import socket
import time
from urllib.parse import urlparse

from rp_eval import settings
from rp_eval.errors import RpEvalError

PROBE_SECONDS = 3.0
_REMEMBER_SECONDS = 30.0  # a probe's answer is reused this long (one check of several models probes once)
_last: dict[str, tuple[float, bool]] = {}


class HubUnreachable(RpEvalError):
    """A hub id given while the hub can not be reached, and the model is not in the local cache."""


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _target() -> tuple[str, int]:
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = urlparse(proxy if proxy else endpoint())
    return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)


def reachable() -> bool:
    """Whether one TCP connection to the hub (or its proxy) opens within PROBE_SECONDS; remembered a while."""
    host, port = _target()
    key = f"{host}:{port}"
    seen = _last.get(key)
    if seen is not None and time.monotonic() - seen[0] < _REMEMBER_SECONDS:
        return seen[1]
    try:
        with socket.create_connection((host, port), timeout=PROBE_SECONDS):
            ok = True
    except OSError:
        ok = False
    _last[key] = (time.monotonic(), ok)
    return ok


def _cached(source: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(source, "config.json"), str)
    except Exception:  # noqa: BLE001 - an id the cache can not even look up is simply not there
        return False


def hub_kwargs(source: str) -> dict:
    """Extra `from_pretrained` arguments for hub id `source`: {} when the hub answers (or in offline mode),
    local_files_only when it does not but the model is cached; HubUnreachable otherwise."""
    if settings.offline() or reachable():
        return {}
    if _cached(source):
        return {"local_files_only": True}
    raise HubUnreachable(key="err_hub_unreachable", source=source, endpoint=endpoint(), seconds=f"{PROBE_SECONDS:g}")
