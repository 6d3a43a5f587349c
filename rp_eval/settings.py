"""Where rp_eval keeps its files, read from the environment once per call."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The workspace folder: database, demo models, merged models, runs (`RP_EVAL_HOME`, default ./workspace)."""
    path = Path(os.environ.get("RP_EVAL_HOME", "workspace")).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """`RP_EVAL_DATABASE_URL` if set (e.g. a PostgreSQL URL for a lab server), else a SQLite file in the workspace."""
    return os.environ.get("RP_EVAL_DATABASE_URL") or f"sqlite:///{home() / 'rp_eval.sqlite'}"


def models_dir() -> Path:
    path = home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
