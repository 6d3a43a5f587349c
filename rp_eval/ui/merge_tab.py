"""The Merge tab: which models can merge (a matrix), the recipe builder with a live YAML preview that edits both
ways, recipe files, and running a merge with progress and cancel. Logic lives in rp_eval.merge."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from rp_eval.errors import RpEvalError
from rp_eval.merge import compat, form, recipe
from rp_eval.merge.methods import methods
from rp_eval.models import registry
from rp_eval.ui.locale import error_text, headers, t, warn

DTYPES = ["", "bfloat16", "float16", "float32"]


def _names() -> list[str]:
    return [r.name for r in registry.list_models()]


def _warn(err: Exception) -> str:
    return warn(err)


def check(models: list[str]):
    if len(models or []) < 2:
        return gr.update(), t("mg_pick_two")
    try:
        return headers(compat.matrix(models, say=t, render=error_text)), t("mg_checked", n=len(models))
    except RpEvalError as err:
        return gr.update(), _warn(err)


def _rows(df, columns: list[str]) -> list[dict]:
    if df is None:
        return []
    frame = df if isinstance(df, pd.DataFrame) else pd.DataFrame(df, columns=columns)
    return [{c: ("" if pd.isna(v) else str(v)) for c, v in row.items()} for row in frame.to_dict("records")]


def _form(method, base, inputs, params, dtype, tokenizer_source, chat_template) -> form.RecipeForm:
    return form.RecipeForm(
        merge_method=method or "",
        base_model=base or "",
        inputs=tuple(form.InputRow(**r) for r in _rows(inputs, form.INPUT_COLUMNS) if r.get("model")),
        parameters=tuple(form.ParamRow(**r) for r in _rows(params, form.PARAM_COLUMNS) if r.get("parameter")),
        dtype=dtype or "",
        tokenizer_source=tokenizer_source or "",
        chat_template=chat_template or "",
    )


def _widgets(f: form.RecipeForm) -> tuple:
    inputs = pd.DataFrame([r.model_dump() for r in f.inputs], columns=form.INPUT_COLUMNS)
    params = pd.DataFrame([r.model_dump() for r in f.parameters], columns=form.PARAM_COLUMNS)
    models = [r.model for r in f.inputs]
    bases = list(dict.fromkeys([""] + models + ([f.base_model] if f.base_model else [])))
    return (
        f.merge_method,
        gr.update(value=list(dict.fromkeys(models)), choices=list(dict.fromkeys(_names() + models))),
        gr.update(value=f.base_model, choices=bases),
        inputs,
        params,
        f.dtype,
        f.tokenizer_source,
        f.chat_template,
    )


def _problems_text(text: str) -> str:
    found = recipe.problems(text)
    if not found:
        return t("mg_valid")
    return "\n".join(f"- ⚠️ `{p.field}`: {error_text(p.message)}" for p in found)


def form_to_yaml(*widgets):
    """Form edited: the YAML preview and the problems follow."""
    try:
        text = recipe.to_yaml(form.from_form(_form(*widgets)))
    except RpEvalError as err:
        return gr.update(), _warn(err)
    return text, _problems_text(text)


def yaml_to_form(text: str):
    """YAML edited: the form follows (when the form can show it) and the problems are listed."""
    try:
        f = form.to_form(recipe.load_yaml(text))
    except RpEvalError as err:
        return (*[gr.update()] * 8, _warn(err))
    return (*_widgets(f), _problems_text(text))


def pick(method, models, *widgets):
    """Method or models chosen: a fresh form for them, keeping what was set for models still there."""
    current = _form(method, *widgets)
    f = form.defaults(method, list(models or []), keep=current)
    text = recipe.to_yaml(form.from_form(f))
    return (*_widgets(f), text, _problems_text(text))


def load(name: str):
    try:
        text = recipe.load_recipe(name)
    except RpEvalError as err:
        return (*[gr.update()] * 9, _warn(err))
    return (*yaml_to_form(text)[:8], text, t("mg_loaded", name=name))


def save(name: str, text: str, duplicate: bool):
    try:
        path = recipe.save_recipe(name, text, overwrite=not duplicate)
    except RpEvalError as err:
        return gr.update(), _warn(err)
    return gr.update(choices=recipe.list_recipes(), value=path.stem), t("mg_saved", path=path)


def run(text: str, name: str, progress=gr.Progress()):  # noqa: B008 - Gradio's way of asking for a progress bar
    from rp_eval.merge.run import merge

    try:
        for p in merge(text, name or "", confined=True):  # every path the YAML names lies in the allowed folders
            progress(p.fraction, desc=error_text(p.message))
            if p.stage == "done":
                yield t("mg_done", name=p.model, seconds=f"{p.seconds:.1f}", folder=p.folder)
            else:
                yield f"⏳ {error_text(p.message)}"
    except RpEvalError as err:
        yield _warn(err)


def build() -> None:
    gr.Markdown(t("mg_intro"))
    with gr.Accordion(t("mg_compat_heading"), open=True):
        with gr.Row():
            check_models = gr.Dropdown(
                _names(), multiselect=True, label=t("mg_models"), scale=4, elem_id="merge-check-models"
            )
            check_button = gr.Button(t("mg_check"), scale=1, elem_id="merge-check")
        matrix = gr.Dataframe(
            lambda: headers(pd.DataFrame(columns=["model"])), interactive=False, wrap=True, elem_id="merge-matrix"
        )
        check_status = gr.Markdown()
    gr.Markdown(f"### {t('mg_builder_heading')}")
    with gr.Row():
        # nothing chosen while the form is empty (a Dropdown shows its first choice unless told None); choosing a
        # preset loads it into the form at once
        files = gr.Dropdown(
            recipe.list_recipes(), value=None, label=t("mg_recipe_file"), allow_custom_value=True, scale=3,
            elem_id="merge-recipe-file",
        )  # fmt: skip
        load_button = gr.Button(t("mg_load"), scale=1)
        save_button = gr.Button(t("mg_save"), scale=1)
        dup_button = gr.Button(t("mg_duplicate"), scale=1)
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                method = gr.Dropdown(list(methods()), value="slerp", label=t("mg_method"), elem_id="merge-method")
                models = gr.Dropdown(
                    _names(), multiselect=True, allow_custom_value=True, label=t("mg_models"), elem_id="merge-models"
                )
                base = gr.Dropdown([""], value="", allow_custom_value=True, label=t("mg_base"), elem_id="merge-base")
            inputs = gr.Dataframe(
                headers=form.INPUT_COLUMNS, datatype=["str"] * 6, column_count=(6, "fixed"), label=t("mg_inputs"),
                interactive=True, elem_id="merge-inputs",
            )  # fmt: skip
            params = gr.Dataframe(
                headers=form.PARAM_COLUMNS, datatype=["str"] * 4, column_count=(4, "fixed"), label=t("mg_params"),
                interactive=True, elem_id="merge-params",
            )  # fmt: skip
            gr.Markdown(t("mg_cells_help"))
            with gr.Row():
                dtype = gr.Dropdown(DTYPES, value="", label=t("mg_dtype"))
                tokenizer_source = gr.Textbox(label=t("mg_tokenizer_source"), placeholder="base / union / model")
                chat_template = gr.Textbox(label=t("mg_chat_template"), placeholder="auto / chatml / model")
        with gr.Column(scale=2):
            yaml_box = gr.Code(language="yaml", label=t("mg_yaml"), interactive=True, elem_id="merge-yaml")
            problems_md = gr.Markdown(elem_id="merge-problems")
    gr.Markdown(f"### {t('mg_run_heading')}")
    with gr.Row():
        out_name = gr.Textbox(label=t("mg_out_name"), elem_id="merge-name", scale=3)
        run_button = gr.Button(t("mg_run"), variant="primary", elem_id="merge-run", scale=1)
        cancel_button = gr.Button(t("mg_cancel"), variant="stop", scale=1)
    status = gr.Markdown(elem_id="merge-status")

    rest = [base, inputs, params, dtype, tokenizer_source, chat_template]
    widgets = [method, models, *rest]
    all_form = [method, *rest]
    check_button.click(check, check_models, [matrix, check_status])
    for w in (method, models):
        w.input(pick, [method, models, *rest], [*widgets, yaml_box, problems_md])
    for w in rest:
        w.input(form_to_yaml, all_form, [yaml_box, problems_md])
    yaml_box.input(yaml_to_form, yaml_box, [*widgets, problems_md])
    load_button.click(load, files, [*widgets, yaml_box, status])
    files.select(load, files, [*widgets, yaml_box, status])
    save_button.click(lambda n, y: save(n, y, False), [files, yaml_box], [files, status])
    dup_button.click(lambda n, y: save(n, y, True), [files, yaml_box], [files, status])
    job = run_button.click(run, [yaml_box, out_name], status)
    cancel_button.click(lambda: t("mg_cancelled"), None, status, cancels=[job])
