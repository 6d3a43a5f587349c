"""Settings in one place: defaults, then a config file (`rp_eval.yaml`), then environment variables.

The file is `RP_EVAL_CONFIG` if set, else `./rp_eval.yaml` if it exists. Every key has an environment variable
(`RP_EVAL_<KEY>`), which wins over the file. `python app.py --help` prints this table.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rp_eval.errors import RpEvalError


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    home: str = Field("workspace", description="workspace folder: database, demo and merged models, runs")
    database_url: str = Field("", description="SQLAlchemy URL; default a SQLite file in the workspace")
    models: str | list = Field(
        "", description="models to register at start: ids/folders, comma-separated, or a YAML file"
    )
    generation: dict = Field(default_factory=dict, description="default generation settings (max_new_tokens, ...)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where models run")
    kv_layout: Literal["auto", "rows", "blocks"] = Field(
        "auto",
        description="the static engine's KV cache: rows (a whole context per request) or blocks from one pool "
        "(requests wait for blocks, share cached prefixes); auto: blocks on a CPU, rows on CUDA",
    )
    demo_mode: Literal["auto", "on", "off"] = Field(
        "auto", description="chat and rating only (on by itself on a CPU Hugging Face Space)"
    )
    auth: str = Field("", description="users YAML file for the lab server's login (rp-eval users add ...)")
    cache_gb: float | None = Field(None, description="memory for models kept loaded (default 85% GPU / half RAM)")
    api_key: str = Field("", description="key the OpenAI-compatible API asks for (none: open)")
    allowed_roots: list[str] = Field(
        default_factory=list,
        description="folders besides the workspace that paths typed in the UI / HTTP API may name "
        f"(in the environment: separated by '{os.pathsep}')",
    )

    # -- limits: what one request may ask of a server (the page and the HTTP API) ---------------------
    limit_body_bytes: int = Field(1_000_000, ge=1024, description="largest request body (JSON) accepted, in bytes")
    limit_json_depth: int = Field(32, ge=4, le=1000, description="deepest nesting of lists/objects in a request")
    limit_prompt_tokens: int = Field(
        8192, ge=16, description="longest prompt in tokens (also never more than the model's context minus the reply)"
    )
    limit_max_tokens: int = Field(2048, ge=1, le=8192, description="most new tokens one API reply may ask for")
    limit_stop_count: int = Field(16, ge=0, description="most stop strings one API request may send")
    limit_stop_chars: int = Field(64, ge=1, description="longest stop string, in characters")
    limit_choices: int = Field(8, ge=1, le=64, description="most replies (`n`) one API request may ask for")
    limit_upload_mb: float = Field(10.0, gt=0, description="largest file the page accepts as an upload, in MB")
    limit_in_flight_api: int = Field(
        8, ge=1, description="API requests generating at once (more wait in their client's queue)"
    )
    limit_in_flight_per_user: int = Field(2, ge=1, description="API requests at once from one key or address")
    limit_queue_per_user: int = Field(
        16, ge=0, description="API requests of one key or address waiting for a place (more: 429, Retry-After)"
    )
    limit_queue_api: int = Field(64, ge=0, description="API requests waiting for a place, all clients together")
    limit_events_per_login: int = Field(
        2, ge=1, description="page events generating text (chat, rating) queued or running at once per login"
    )
    limit_login_failures: int = Field(
        5, ge=1, description="failed logins of one name before each try waits longer (an address: four times as many)"
    )
    limit_upload_mb_per_login: float = Field(
        100.0,
        gt=0,
        description="MB one login may upload per limit_upload_window_minutes (more: 429 until it falls out)",
    )
    limit_upload_window_minutes: int = Field(60, ge=1, description="the window limit_upload_mb_per_login counts over")
    limit_disk_free_mb: float = Field(
        500.0, ge=0, description="uploads and card imports stop while less is free (votes and chats keep it)"
    )
    keep_uploads_hours: float = Field(6.0, gt=0, description="uploaded files older than this are deleted")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the server answers to besides localhost when it listens on loopback only "
        "(a web page elsewhere can not drive it through DNS rebinding); comma-separated in the environment",
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value):
        return [h.strip().lower() for h in value.split(",") if h.strip()] if isinstance(value, str) else value

    chat_preferences: bool = Field(
        True, description="store chat choices (kept alternatives, edits, Stop then Regenerate) as preferences"
    )

    @field_validator("allowed_roots", mode="before")
    @classmethod
    def _split_roots(cls, value):
        return [p for p in value.split(os.pathsep) if p.strip()] if isinstance(value, str) else value


class ConfigError(RpEvalError):
    pass


def config_file() -> Path | None:
    explicit = os.environ.get("RP_EVAL_CONFIG")
    if explicit:
        return Path(explicit)
    default = Path("rp_eval.yaml")
    return default if default.exists() else None


def config() -> Config:
    """The settings now in force (read fresh each call, so tests and servers see changes)."""
    values: dict = {}
    from_file: set[str] = set()
    path = config_file()
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            raise ConfigError(f"config file {path} can not be read: {err}") from err
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must be a mapping of settings, not {type(loaded).__name__}")
        values.update(loaded)
        from_file = set(loaded)
    for key in Config.model_fields:
        env = os.environ.get(f"RP_EVAL_{key.upper()}")
        if env is not None and env != "":
            values[key] = env
    try:
        return Config(**values)
    except ValidationError as err:
        e = err.errors()[0]
        key = ".".join(map(str, e["loc"]))
        top = str(e["loc"][0]) if e["loc"] else ""
        where = (
            f"config file {path}"
            if top in from_file and not os.environ.get(f"RP_EVAL_{top.upper()}")
            else (f"RP_EVAL_{top.upper()}")
        )
        hint = f"; known settings: {', '.join(Config.model_fields)}" if e["type"] == "extra_forbidden" else ""
        raise ConfigError(f"setting '{key}' in {where}: {e['msg']}{hint}") from err


def describe() -> str:
    """The settings table for --help."""
    lines = ["settings (rp_eval.yaml key / environment variable: meaning):"]
    for key, field in Config.model_fields.items():
        lines.append(f"  {key} / RP_EVAL_{key.upper()}: {field.description}")
    return "\n".join(lines)


def home() -> Path:
    """The workspace folder (created on first use)."""
    path = Path(config().home).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    return config().database_url or f"sqlite:///{home() / 'rp_eval.sqlite'}"


def models_dir() -> Path:
    path = home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def demo_mode() -> bool:
    """Chat and rating only: on when asked, and by itself on a Hugging Face Space without a GPU."""
    mode = config().demo_mode
    if mode != "auto":
        return mode == "on"
    on_space = bool(os.environ.get("SPACE_ID"))
    return on_space and not _has_gpu()


def _has_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False
