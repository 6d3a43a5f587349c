"""The Evaluate tab: choose models, split, subset, seed and settings; watch the progress; read one table per
model (human ratings joined), plots, a per-item drill-down; export CSV and a one-file report."""

from __future__ import annotations

import html
import time

import gradio as gr
import pandas as pd

from rp_eval import paths, settings
from rp_eval.chat.generate import GenerationSettings
from rp_eval.errors import RpEvalError
from rp_eval.evaluate import report
from rp_eval.evaluate.runner import EVAL_GENERATION, EvalConfig, EvalResult, Progress, run_evaluation
from rp_eval.models import registry
from rp_eval.store import get_store
from rp_eval.ui import meta_section
from rp_eval.ui.locale import axes, t, warn
from rp_eval.ui.zerogpu import on_gpu

DRILL_COLUMNS = ["model", "item", "persona", "reply", "finish_reason", "combined", "chars", "expected_markers"]
DRILL_COLUMNS += ["first_person_ok", "other_persona_markers", "politeness_match", "degenerate_repetition"]


def _names() -> list[str]:
    return [r.name for r in registry.list_models()]


def _bar(done: int, total: int, message: str) -> str:
    return (
        f'<progress id="ev-bar" value="{done}" max="{max(total, 1)}" style="width:100%"></progress>'
        f'<p id="ev-progress-text">{html.escape(message, quote=False)} ({done}/{total})</p>'
    )


def _metric_bars(table: pd.DataFrame) -> pd.DataFrame:
    """Grouped bars without a group option: one bar per (metric, model), coloured by model."""
    long = report.metric_long(table)
    long["bar"] = long["metric"] + " · " + long["model"]
    return long


def _outputs(result: EvalResult):
    human = report.human_table(get_store())
    table = report.model_table(result, human)
    items = report.item_table(result)
    drill = items[[c for c in DRILL_COLUMNS if c in items]] if not items.empty else pd.DataFrame(columns=DRILL_COLUMNS)
    return table, _metric_bars(table), report.finish_table(result), report.length_table(result), drill


@on_gpu(duration=600)
def _run(models, split, limit, seed, max_new_tokens, temperature, batch_size, weights, judge, reference):
    empty = [gr.update()] * 7
    if not models:
        yield [_bar(0, 0, t("ev_choose_models")), *empty]
        return
    try:
        config = EvalConfig(
            models=list(models),
            split=split,
            limit=int(limit) if limit else None,
            seed=int(seed or 0),
            batch_size=int(batch_size),
            generation=GenerationSettings(
                max_new_tokens=int(max_new_tokens), temperature=float(temperature), top_p=EVAL_GENERATION.top_p
            ),
            weights=str(paths.confine(weights, "weights file")) if weights else None,
            judge_model=judge or None,
            reference_model=reference or None,
        )
        for event in run_evaluation(config):
            if isinstance(event, Progress):
                yield [_bar(event.done, event.total, event.message), *empty]
                continue
            table, bars, finish, lengths, drill = _outputs(event)
            failed = "".join(f"\n- ⚠️ {t('ev_failed', model=m, why=w)}" for m, w in event.failed.items())
            done = t("ev_done", replies=len(event.rows), version=event.task_version) + failed
            yield [_bar(1, 1, t("ev_finished")), done, table, bars, finish, lengths, drill, event]
    except RpEvalError as err:
        yield [_bar(0, 0, t("ev_error")), warn(err), *empty[1:]]


def _drill(result: EvalResult | None, model: str | None):
    if result is None:
        return pd.DataFrame(columns=DRILL_COLUMNS)
    items = report.item_table(result)
    if model:
        items = items[items["model"] == model]
    return items[[c for c in DRILL_COLUMNS if c in items]]


def _detail(result: EvalResult | None, drill: pd.DataFrame, evt: gr.SelectData) -> str:
    if result is None or drill is None or drill.empty:
        return ""
    row = drill.iloc[evt.index[0]]
    match = next((r for r in result.rows if r.model == row["model"] and r.item_id == row["item"]), None)
    if match is None:
        return ""
    scores = ", ".join(f"{k} {v:g}" for k, v in match.metrics.items())
    return t("ev_detail", model=match.model, item=match.item_id, reply=match.text or "∅", reason=match.finish_reason,
             combined=match.combined, scores=scores)  # fmt: skip


def _export(result: EvalResult | None):
    if result is None:
        return None, None, t("ev_nothing")
    folder = settings.home() / "evaluate" / "exports"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    csv = report.write_csv(result, folder / f"eval-{stamp}.csv")
    page = report.write_report(result, folder / f"eval-{stamp}.html", report.human_table(get_store()))
    return str(csv), str(page), t("ev_exported", folder=folder)


def _calibrate(result: EvalResult | None, weights: str, ridge: float):
    from rp_eval.evaluate.calibrate import calibrate_store, model_correlations

    try:
        weights = str(paths.confine(weights, "weights file")) if weights else None
        cal, path = calibrate_store(get_store(), weights, float(ridge or 1.0))
    except RpEvalError as err:
        return warn(err), None, None
    per_model = None
    if result is not None:
        per_model = model_correlations(report.model_table(result, report.human_table(get_store())))
    words = t("ev_calibrated", n=cal.n, before=cal.before, after=cal.after, cv=cal.after_cv, path=path)
    words += meta_section.calibration_note(cal)
    return words, cal.per_reply, per_model


def build() -> None:
    gr.Markdown(t("ev_intro"))
    names = _names()
    with gr.Row():
        with gr.Column(scale=2):
            models = gr.CheckboxGroup(names, value=names[:3], label=t("ev_models"), elem_id="ev-models")
            with gr.Row():
                split = gr.Radio(
                    [("dev", "dev"), ("test", "test"), (t("ev_split_all"), "all")], value="dev", label=t("ev_split")
                )
                limit = gr.Number(16, label=t("ev_limit"), precision=0, minimum=0, elem_id="ev-limit")
                seed = gr.Number(0, label=t("ev_seed"), precision=0)
        with gr.Column(scale=1):
            run = gr.Button(t("ev_run"), variant="primary", elem_id="ev-run")
            refresh = gr.Button(t("ev_refresh"), size="sm")
    with gr.Accordion(t("ev_settings"), open=False):
        with gr.Row():
            max_new = gr.Slider(8, 512, EVAL_GENERATION.max_new_tokens, step=8, label=t("ev_max_new_tokens"))
            temperature = gr.Slider(0.0, 1.5, EVAL_GENERATION.temperature, step=0.05, label=t("ev_temperature"))
            batch = gr.Slider(1, 128, 16, step=1, label=t("ev_batch"))
        with gr.Row():
            weights = gr.Textbox(label=t("ev_weights"), placeholder="prompts/eval/weights.yaml")
            judge = gr.Dropdown(["", *names], value="", label=t("ev_judge"))
            reference = gr.Dropdown(["", *names], value="", label=t("ev_reference"))
    progress = gr.HTML(_bar(0, 0, t("ev_idle")), elem_id="ev-progress")
    status = gr.Markdown(elem_id="ev-status")
    table = gr.Dataframe(interactive=False, wrap=True, label=t("ev_table"), elem_id="ev-table")
    with gr.Row():
        bars = gr.BarPlot(x="bar", y="value", color="model", label=t("ev_metric_plot"), x_label_angle=-60,
                          y_lim=[0, 1], sort=None, elem_id="ev-metric-plot", **axes("bar", "value", "model"))  # fmt: skip
    with gr.Row():
        finish = gr.BarPlot(x="model", y="share", color="finish_reason", label=t("ev_finish_plot"), y_lim=[0, 1],
                           **axes("model", "share", "finish_reason"))  # fmt: skip
        lengths = gr.BarPlot(
            x="chars",
            y="replies",
            color="model",
            label=t("ev_length_plot"),
            sort=report.LENGTH_LABELS,
            **axes("chars", "replies", "model"),
        )
    gr.Markdown(f"### {t('ev_drill')}")
    drill_model = gr.Dropdown(["", *names], value="", label=t("ev_drill_model"))
    drill = gr.Dataframe(interactive=False, wrap=True, elem_id="ev-drill")
    detail = gr.Markdown(elem_id="ev-detail")
    with gr.Row():
        export = gr.Button(t("ev_export"), elem_id="ev-export")
        csv_file = gr.File(label=t("ev_csv"), elem_id="ev-csv")
        report_file = gr.File(label=t("ev_report"), elem_id="ev-report")
    with gr.Accordion(t("ev_calibration"), open=False):
        gr.Markdown(t("ev_calibration_intro"))
        with gr.Row():
            ridge = gr.Number(1.0, label=t("ev_ridge"), minimum=0)
            calibrate = gr.Button(t("ev_calibrate"), elem_id="ev-calibrate")
        calibration = gr.Markdown(elem_id="ev-calibration")
        per_reply = gr.Dataframe(interactive=False, label=t("ev_corr_reply"))
        per_model = gr.Dataframe(interactive=False, label=t("ev_corr_model"))
    meta_section.build(weights, names)
    state = gr.State(None)

    form = [models, split, limit, seed, max_new, temperature, batch, weights, judge, reference]
    run.click(_run, form, [progress, status, table, bars, finish, lengths, drill, state], concurrency_limit=1)
    drill_model.change(_drill, [state, drill_model], drill)
    drill.select(_detail, [state, drill], detail)
    export.click(_export, state, [csv_file, report_file, status])
    calibrate.click(_calibrate, [state, weights, ridge], [calibration, per_reply, per_model])
    choices = lambda: [gr.update(choices=_names())] + [gr.update(choices=["", *_names()])] * 3  # noqa: E731
    refresh.click(choices, None, [models, judge, reference, drill_model])
