"""The Models tab: the registry as a table (the prompt format an "auto" model will get shown as detected); add
(checked first; the table stays readable meanwhile) and remove."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from rp_eval import paths
from rp_eval.chat.formats import FORMATS, detect_format
from rp_eval.models import registry
from rp_eval.ui.locale import headers, t, warn, words


def _tokenizer_config(source: str) -> dict | None:
    """The tokenizer_config.json of a local folder or of a hub model already in the cache (no download)."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        path = folder / "tokenizer_config.json"
    else:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(source, "tokenizer_config.json")
        except Exception:  # noqa: BLE001 - not a hub id: nothing known
            return None
        path = Path(cached) if isinstance(cached, str) else None
    try:
        config = json.loads(path.read_text(encoding="utf-8")) if path and path.is_file() else None
    except (OSError, ValueError):
        return None
    if config is not None and (path.parent / "chat_template.jinja").is_file():
        config.setdefault("chat_template", (path.parent / "chat_template.jinja").read_text(encoding="utf-8"))
    return config


def shown_format(row, rows: dict) -> str:
    """What the prompt-format column says: a chosen format as is; for "auto", the one loading will pick
    ("auto → llama2"), from the tokenizer's files when they are on this machine."""
    if row.prompt_format != "auto":
        return row.prompt_format
    sources = [row.source] + [rows[p].source for p in (row.parents or []) if p in rows]
    config = next((c for c in map(_tokenizer_config, sources) if c is not None), None)
    if config is None:
        return t("format_when_loaded")
    base = rows.get((row.parents or [""])[0]) if row.kind == "adapter" else row
    fmt = detect_format(SimpleNamespace(chat_template=config.get("chat_template")), (base or row).model_type,
                        f"{row.name} {(base or row).source}")  # fmt: skip
    return f"auto → {fmt.name}"


def models_table():
    """The registry's table with the detected prompt formats."""
    frame = registry.table()
    rows = {r.name: r for r in registry.list_models()}
    frame["prompt format"] = [shown_format(rows[n], rows) for n in frame["name"]]
    frame["architecture"] = [t("arch_lora_adapter") if a == "LoRA adapter" else a for a in frame["architecture"]]
    return headers(words(frame, "kind", "kind_"))


def _names() -> list[str]:
    return [r.name for r in registry.list_models()]


def add(source: str, name: str, prompt_format: str, trust_remote_code: bool):
    try:
        source = paths.confine_source(source)
        row = registry.add_model(source, name, prompt_format=prompt_format, trust_remote_code=trust_remote_code)
        message = t("added", name=row.name, architecture=row.architecture)
    except (registry.RegistryError, paths.PathNotAllowed) as err:
        message = warn(err)
    return models_table(), gr.update(choices=_names()), message


def remove(name: str | None, delete_files: bool):
    if not name:
        return models_table(), gr.update(), f"⚠️ {t('choose_model')}"
    try:
        registry.remove_model(name, delete_files=delete_files)
        message = t("removed_files" if delete_files else "removed", name=name)
    except registry.RegistryError as err:
        message = warn(err)
    return models_table(), gr.update(choices=_names(), value=None), message


def build(startup_problems: list[str]) -> None:
    gr.Markdown(t("models_intro"))
    table = gr.Dataframe(value=models_table, interactive=False, wrap=True, elem_id="models-table")
    status = gr.Markdown(
        "\n".join([t("startup_problems"), *[f"- {p}" for p in startup_problems]]) if startup_problems else "",
        elem_id="models-status",
    )
    with gr.Row():
        with gr.Column():
            gr.Markdown(f"### {t('add_heading')}")
            source = gr.Textbox(label=t("source"), placeholder=t("source_placeholder"), elem_id="model-source")
            name = gr.Textbox(label=t("name"))
            fmt = gr.Dropdown(["auto", *FORMATS], value="auto", label=t("prompt_format"))
            trust = gr.Checkbox(False, label=t("trust_remote_code"))
            add_button = gr.Button(t("add"), variant="primary", elem_id="model-add")
        with gr.Column():
            gr.Markdown(f"### {t('remove_heading')}")
            choice = gr.Dropdown(choices=_names(), label=t("remove_choice"), value=None)
            delete_files = gr.Checkbox(False, label=t("delete_files"))
            remove_button = gr.Button(t("remove"), variant="stop")
            refresh = gr.Button(t("refresh"), size="sm")
    # the check of a hub id can take a while: the spinner sits on the message, the table stays readable
    add_button.click(add, [source, name, fmt, trust], [table, choice, status], show_progress_on=status)
    remove_button.click(remove, [choice, delete_files], [table, choice, status])
    refresh.click(lambda: (models_table(), gr.update(choices=_names())), None, [table, choice])
