"""The Models tab: the registry as a table; add (checked first) and remove."""

from __future__ import annotations

import gradio as gr

from rp_eval import paths
from rp_eval.chat.formats import FORMATS
from rp_eval.models import registry
from rp_eval.ui.locale import headers, t, warn


def _table():
    return headers(registry.table())


def _names() -> list[str]:
    return [r.name for r in registry.list_models()]


def add(source: str, name: str, prompt_format: str, trust_remote_code: bool):
    try:
        source = paths.confine_source(source)
        row = registry.add_model(source, name, prompt_format=prompt_format, trust_remote_code=trust_remote_code)
        message = t("added", name=row.name, architecture=row.architecture)
    except (registry.RegistryError, paths.PathNotAllowed) as err:
        message = warn(err)
    return _table(), gr.update(choices=_names()), message


def remove(name: str | None, delete_files: bool):
    if not name:
        return _table(), gr.update(), f"⚠️ {t('choose_model')}"
    try:
        registry.remove_model(name, delete_files=delete_files)
        message = t("removed_files" if delete_files else "removed", name=name)
    except registry.RegistryError as err:
        message = warn(err)
    return _table(), gr.update(choices=_names(), value=None), message


def build(startup_problems: list[str]) -> None:
    gr.Markdown(t("models_intro"))
    table = gr.Dataframe(value=_table, interactive=False, wrap=True, elem_id="models-table")
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
    add_button.click(add, [source, name, fmt, trust], [table, choice, status])
    remove_button.click(remove, [choice, delete_files], [table, choice, status])
    refresh.click(lambda: (_table(), gr.update(choices=_names())), None, [table, choice])
