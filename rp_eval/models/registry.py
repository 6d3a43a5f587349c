"""The model registry: base models (hub id or folder), LoRA adapters and merges, with where they came from.

A model is checked before it is registered (config readable, tokenizer present, architecture known), from
its config and tokenizer files only: no weights are read.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from rp_eval import settings
from rp_eval.chat.formats import FORMATS
from rp_eval.errors import RpEvalError
from rp_eval.models.hub import HubUnreachable, hub_kwargs
from rp_eval.store import ModelRow, get_store

KINDS = ("base", "adapter", "merged", "demo")


class RegistryError(RpEvalError):
    """A model that can not be registered, loaded or removed, with a message meant for a person."""


@dataclass(frozen=True)
class SourceInfo:
    source: str
    is_local: bool
    is_adapter: bool
    architecture: str
    model_type: str
    parameters: int
    size_bytes: int
    base: str = ""  # an adapter's base model, as its adapter_config.json names it


def _causal_lm_architectures() -> set[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())


def _weights_summary(folder: Path) -> tuple[int, int]:
    """(parameters, bytes) of the weight files in a folder, from safetensors headers only."""
    files = list(folder.glob("*.safetensors"))
    size = sum(f.stat().st_size for f in files) or sum(f.stat().st_size for f in folder.glob("*.bin"))
    params = 0
    for f in files:
        with open(f, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(header_len))
        for key, meta in header.items():
            if key != "__metadata__":
                n = 1
                for d in meta["shape"]:
                    n *= d
                params += n
    return params, size


def _hub_error(source: str, err: Exception) -> RegistryError:
    if settings.offline():
        return RegistryError(key="err_registry_offline", source=source)
    return RegistryError(key="err_registry_hub", source=source, detail=str(err).splitlines()[0])


def inspect_source(source: str, trust_remote_code: bool = False) -> SourceInfo:
    """Check that `source` is a causal LM (or a LoRA adapter) with a tokenizer; read no weights."""
    from transformers import AutoConfig, AutoTokenizer

    source = source.strip()
    if not source:
        raise RegistryError(key="err_registry_no_source")
    path = Path(source).expanduser()
    local = path.exists() or source.startswith((".", "/", "~"))
    if local:
        if not path.exists():
            raise RegistryError(key="err_registry_no_folder", source=source)
        if not path.is_dir():
            raise RegistryError(key="err_registry_file", source=source)
        if (path / "adapter_config.json").exists():
            return _inspect_adapter(path)
        if not (path / "config.json").exists():
            raise RegistryError(key="err_registry_no_config", source=source)
        source = str(path.resolve())
    try:
        extra = {} if local else hub_kwargs(source)  # no network: refused in seconds, or read from the local cache
    except HubUnreachable as err:
        raise RegistryError(key=err.key, **err.values) from None
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code, **extra)
    except (OSError, ValueError) as err:
        if local:
            raise RegistryError(key="err_registry_bad_config", source=source, detail=str(err).splitlines()[0]) from err
        raise _hub_error(source, err) from err
    architectures = list(getattr(config, "architectures", None) or [])
    known = _causal_lm_architectures()
    if (not architectures or not any(a in known for a in architectures)) and not trust_remote_code:
        raise RegistryError(key="err_registry_not_causal", source=source, architectures=architectures or "-")
    try:
        AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code, **extra)
    except (OSError, ValueError, TypeError) as err:
        raise RegistryError(key="err_registry_tokenizer", source=source, detail=str(err).splitlines()[0]) from err
    params, size = _weights_summary(path) if local else (0, 0) if extra else _hub_weights_summary(source)
    return SourceInfo(source, local, False, architectures[0] if architectures else "", config.model_type, params, size)


def _hub_weights_summary(source: str) -> tuple[int, int]:
    try:
        from huggingface_hub import get_safetensors_metadata

        meta = get_safetensors_metadata(source)
        params = sum(meta.parameter_count.values())
        return params, params * 2
    except Exception:  # noqa: BLE001 - the size is a nicety; registering must not fail on it
        return 0, 0


def _inspect_adapter(path: Path) -> SourceInfo:
    try:
        cfg = json.loads((path / "adapter_config.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RegistryError(key="err_registry_adapter_config", path=path, detail=err) from err
    base = cfg.get("base_model_name_or_path") or ""
    if not base:
        raise RegistryError(key="err_registry_adapter_base", path=path)
    params, size = _weights_summary(path)
    return SourceInfo(
        str(path.resolve()), True, True, "LoRA adapter", cfg.get("peft_type", "LORA").lower(), params, size, base
    )


def _find_base(base: str) -> ModelRow:
    """The registered model an adapter's `base_model_name_or_path` refers to (by name or by source)."""
    for row in get_store().list_models():
        if base in (row.name, row.source) or (Path(base).exists() and Path(base).resolve() == Path(row.source)):
            return row
    raise RegistryError(key="err_registry_base_missing", base=base)


def add_model(
    source: str,
    name: str = "",
    *,
    kind: str = "",
    prompt_format: str = "auto",
    trust_remote_code: bool = False,
    parents: list[str] | None = None,
    made_by: dict | None = None,
    notes: str = "",
) -> ModelRow:
    """Check a model and register it; returns the stored row. Raises RegistryError with a clear message."""
    if prompt_format not in ("auto", *FORMATS):
        raise RegistryError(key="err_registry_format", format=prompt_format, known=", ".join(FORMATS))
    info = inspect_source(source, trust_remote_code)
    parents = list(parents or [])
    if info.is_adapter:
        parents = [_find_base(info.base).name] + [p for p in parents if p != info.base]
    kind = kind or ("adapter" if info.is_adapter else "base")
    if kind not in KINDS:
        raise RegistryError(key="err_registry_kind", kind=kind, kinds=", ".join(KINDS))
    name = (name or (Path(info.source).name if info.is_local else info.source)).strip()
    store = get_store()
    if store.get_model(name) is not None:
        raise RegistryError(key="err_merge_name_taken", name=name)
    for p in parents:
        if store.get_model(p) is None:
            raise RegistryError(key="err_registry_parent", name=p)
    return store.add_model(
        ModelRow(
            name=name,
            kind=kind,
            source=info.source,
            parents=parents,
            made_by=made_by or {},
            architecture=info.architecture,
            model_type=info.model_type,
            parameters=info.parameters,
            size_bytes=info.size_bytes,
            prompt_format=prompt_format,
            trust_remote_code=trust_remote_code,
            notes=notes,
        )
    )


def list_models() -> list[ModelRow]:
    return get_store().list_models()


def get_model(name: str) -> ModelRow:
    row = get_store().get_model(name)
    if row is None:
        known = ", ".join(r.name for r in list_models()) or "none yet"
        raise RegistryError(key="err_registry_unknown", name=name, known=known)
    return row


def remove_model(name: str, delete_files: bool = False) -> None:
    """Take a model off the registry; its files stay unless `delete_files` and they live in the workspace."""
    row = get_model(name)
    children = [r.name for r in list_models() if name in (r.parents or []) and r.kind == "adapter"]
    if children:
        raise RegistryError(key="err_registry_has_adapters", name=name, children=", ".join(children))
    folder = Path(row.source)
    inside = folder.exists() and settings.models_dir() in folder.resolve().parents
    if delete_files and folder.exists() and not inside:
        raise RegistryError(key="err_registry_outside", name=name, folder=folder)
    get_store().remove_model(name)
    if delete_files and inside:
        shutil.rmtree(folder)


def configured_sources() -> list[str]:
    """Models named by the `models` setting (`RP_EVAL_MODELS`): a comma-separated list of ids/folders, a list,
    or a YAML file with a `models:` list (strings, or mappings with `source`, and optionally `name`,
    `prompt_format`)."""
    value = settings.config().models
    if isinstance(value, str):
        value = value.strip()
        if value.endswith((".yaml", ".yml")):
            data = yaml.safe_load(Path(value).read_text()) or {}
            value = data.get("models", [])
        else:
            value = [v.strip() for v in value.split(",") if v.strip()]
    return [m if isinstance(m, str) else json.dumps(m) for m in value]


def register_configured() -> list[str]:
    """Register what `RP_EVAL_MODELS` names and is not registered yet; returns one line per problem."""
    problems = []
    try:
        entries = configured_sources()
    except (OSError, yaml.YAMLError) as err:
        return [f"RP_EVAL_MODELS: {err}"]
    known = {r.source for r in list_models()} | {r.name for r in list_models()}
    for entry in entries:
        spec = json.loads(entry) if entry.startswith("{") else {"source": entry}
        src = spec.get("source", "")
        if src in known or str(Path(src).expanduser().resolve()) in known:
            continue
        try:
            add_model(src, spec.get("name", ""), prompt_format=spec.get("prompt_format", "auto"))
        except RegistryError as err:
            problems.append(str(err))
    return problems


def _human(n: int, unit: str) -> str:
    if not n:
        return "?"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.1f} {suffix}{unit}"
    return f"{n} {unit}"


def table():
    """The registry as a table for people: one row a model."""
    import pandas as pd

    rows = [
        {
            "name": r.name,
            "kind": r.kind,
            "parents": ", ".join(r.parents or []),
            "architecture": r.architecture,
            "parameters": _human(r.parameters, ""),
            "size": _human(r.size_bytes, "B"),
            "prompt format": r.prompt_format,
            "where": r.source,
        }
        for r in list_models()
    ]
    columns = ["name", "kind", "parents", "architecture", "parameters", "size", "prompt format", "where"]
    return pd.DataFrame(rows, columns=columns)
