"""The Evaluate tab: choose models, split, subset, seed and settings; watch the progress; read one table per
model (human ratings joined), a model × metric heat map, plots, a per-item drill-down with the user's line;
export CSV and a one-file report. Past runs are listed from the store and reopened: the page opens on the
newest finished run of each model, so results outlive a reload."""

from __future__ import annotations

import html
import time

import gradio as gr
import pandas as pd

from rp_eval import paths, settings
from rp_eval.chat.generate import GenerationSettings
from rp_eval.errors import RpEvalError
from rp_eval.evaluate import human_ppi, plots, report
from rp_eval.evaluate.runner import EVAL_GENERATION, EvalConfig, EvalResult, Progress, run_evaluation
from rp_eval.evaluate.task import load_task
from rp_eval.models import registry
from rp_eval.store import get_store
from rp_eval.ui import meta_section, numbers
from rp_eval.ui.locale import axes, error_text, header, headers, t, warn, word, words
from rp_eval.ui.zerogpu import on_gpu

DRILL_COLUMNS = ["model", "item", "persona", "user_line", "reply", "finish_reason", "combined", "chars"]
DRILL_COLUMNS += ["expected_markers", "first_person_ok", "other_persona_markers", "politeness_match"]
DRILL_COLUMNS += ["degenerate_repetition"]
# Headers keep whole words: the long metric names break at their underscores, never letter by letter.
TABLE_CSS = (
    "<style>#ev-table th, #ev-drill th, #ev-runs th {word-break: normal !important; overflow-wrap: normal "
    "!important; hyphens: none; min-width: 5.5em;} #ev-table th *, #ev-drill th *, #ev-runs th * "
    "{word-break: normal !important; overflow-wrap: normal !important;}</style>"
)


def _names() -> list[str]:
    return [r.name for r in registry.list_models()]


def _bar(done: int, total: int, message: str) -> str:
    return (
        f'<progress id="ev-bar" value="{done}" max="{max(total, 1)}" style="width:100%"></progress>'
        f'<p id="ev-progress-text">{html.escape(message, quote=False)} ({done}/{total})</p>'
    )


def _heatmap(result: EvalResult | None, group: str | None):
    if result is None or not result.rows:
        return None
    table = report.model_table(result)
    return plots.metric_heatmap(table, group or "all", colorbar=t("ev_heatmap_scale"), say=t)


def _outputs(result: EvalResult, group: str | None = "all"):
    """Table, heat map, finish and length plots, drill-down: what a result fills (a run's or a reopened one's)."""
    human = report.human_table(get_store())
    table = headers(human_ppi.with_ppi(report.model_table(result, human), get_store(), result)[0])
    heat = plots.metric_heatmap(report.model_table(result), group or "all", colorbar=t("ev_heatmap_scale"), say=t)
    finish = words(report.finish_table(result), "finish_reason", "finish_")
    return table, heat, finish, report.length_table(result), _drill(result, None)


def _form(models, split, limit, seed, max_new_tokens, temperature, batch_size, weights, judge, reference):
    """The form as an EvalConfig; a number out of range or not a number is refused naming its field."""
    limit = numbers.whole(limit if limit not in (None, "") else 0, "ev_limit", 0, 1_000_000)
    return EvalConfig(
        models=list(models),
        split=split,
        limit=limit or None,
        seed=numbers.whole(seed if seed not in (None, "") else 0, "ev_seed", 0, 2**32 - 1),
        batch_size=numbers.whole(batch_size, "ev_batch", 1, 512),
        generation=GenerationSettings(
            max_new_tokens=numbers.whole(max_new_tokens, "ev_max_new_tokens", 1, 4096),
            temperature=numbers.real(temperature, "ev_temperature", 0, 5),
            top_p=EVAL_GENERATION.top_p,
        ),
        weights=str(paths.confine(weights, "weights file")) if weights else None,
        judge_model=judge or None,
        reference_model=reference or None,
    )


@on_gpu(duration=600)
def _run(models, split, limit, seed, max_new_tokens, temperature, batch_size, weights, judge, reference, group):
    empty = [gr.update()] * 9
    if not models:
        yield [_bar(0, 0, t("ev_choose_models")), t("ev_choose_models"), *empty[1:]]
        return
    try:
        config = _form(models, split, limit, seed, max_new_tokens, temperature, batch_size, weights, judge, reference)
    except (numbers.BadNumber, RpEvalError) as err:
        yield [_bar(0, 0, t("ev_not_started")), warn(err), *empty[1:]]
        return
    try:
        for event in run_evaluation(config):
            if isinstance(event, Progress):
                yield [_bar(event.done, event.total, error_text(event.message)), *empty]
                continue
            table, heat, finish, lengths, drill = _outputs(event, group)
            failed = "".join(f"\n- ⚠️ {t('ev_failed', model=m, why=w)}" for m, w in event.failed.items())
            done = t("ev_done", replies=len(event.rows), version=event.task_version) + failed
            runs = _runs()
            yield [_bar(1, 1, t("ev_finished")), done, table, heat, finish, lengths, drill, event, *runs]
    except RpEvalError as err:
        yield [_bar(0, 0, t("ev_error")), warn(err), *empty[1:]]


def _drill(result: EvalResult | None, model: str | None):
    if result is None or not result.rows:
        return pd.DataFrame(columns=DRILL_COLUMNS)
    items = report.item_table(result, load_task())
    if model:
        items = items[items["model"] == model]
    return headers(words(items[[c for c in DRILL_COLUMNS if c in items]], "finish_reason", "finish_"))


def _detail(result: EvalResult | None, drill: pd.DataFrame, evt: gr.SelectData) -> str:
    if result is None or drill is None or drill.empty:
        return ""
    model, item_id = drill.iloc[evt.index[0], :2]  # model and item, under headers in the page's language
    match = next((r for r in result.rows if r.model == model and r.item_id == item_id), None)
    if match is None:
        return ""
    task = load_task()
    item = next((i for i in task.items if i.id == match.item_id), None)
    turns = ""
    if item is not None:
        persona = task.personas[item.persona]
        user = result.config.user if result.config else "あなた"
        speaker = {"user": user, "assistant": persona.name}
        turns = "\n".join(f"> **{speaker[m.role]}**: {persona.fill(m.content, user)}  " for m in item.turns)
    scores = t("sep_list").join(f"{header(k)} {v:g}" for k, v in match.metrics.items())
    head = t("ev_detail", model=match.model, item=match.item_id, reply=match.text or "∅", reason=word("finish_", match.finish_reason),
             combined=match.combined, scores=scores)  # fmt: skip
    return f"{t('ev_detail_turns')}\n\n{turns}\n\n{head}" if turns else head


def _run_label(row) -> str:
    return t(
        "ev_run_label", run=row["run"], model=row["model"], status=word("run_status_", row["status"]),
        replies=row["replies"],
        when=row["updated"], temperature=row["temperature"], seed=row["seed"],
    )  # fmt: skip


def _runs(selected: list[int] | None = None):
    """The table of stored runs and the picker's choices (newest finished run per model chosen by default)."""
    runs = report.past_runs(get_store())
    choices = [(_run_label(r), int(r["run"])) for _, r in runs.iterrows()]
    if selected is None:
        selected = report.latest_runs(runs, load_task().version)
    return headers(words(runs, "status", "run_status_")), gr.update(choices=choices, value=selected)


def _open(run_ids, group):
    """Past runs from the store, scored again, into every panel of the tab."""
    if not run_ids:
        return [t("ev_pick_runs"), *[gr.update()] * 6]
    result = report.reopen(get_store(), [int(r) for r in run_ids])
    table, heat, finish, lengths, drill = _outputs(result, group)
    skipped = "".join(f"\n- ⚠️ {t('ev_failed', model=m, why=w)}" for m, w in result.failed.items())
    note = t("ev_reopened", runs=len(result.runs), replies=len(result.rows), version=result.task_version)
    return [note + skipped, table, heat, finish, lengths, drill, result]


def _page_open(group):
    """When the page opens: the stored runs listed, the newest finished one of each model shown."""
    runs, picker = _runs()
    chosen = picker["value"]
    if not chosen:
        return [runs, picker, t("ev_no_runs"), *[gr.update()] * 6]
    return [runs, picker, *_open(chosen, group)]


def _export(result: EvalResult | None):
    if result is None or not result.rows:
        return None, None, t("ev_nothing")
    folder = settings.home() / "evaluate" / "exports"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    csv = report.write_csv(result, folder / f"eval-{stamp}.csv", load_task())
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
                limit = gr.Number(16, label=t("ev_limit"), elem_id="ev-limit")
                seed = gr.Number(0, label=t("ev_seed"), elem_id="ev-seed")
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
    gr.HTML(TABLE_CSS, padding=False)
    with gr.Accordion(t("ev_past"), open=True):
        runs = gr.Dataframe(
            column_count=0, interactive=False, wrap=False, max_height=260, label=t("ev_runs"), elem_id="ev-runs"
        )
        with gr.Row(equal_height=True):
            picker = gr.Dropdown([], multiselect=True, label=t("ev_pick"), elem_id="ev-pick", scale=4)
            open_runs = gr.Button(t("ev_open"), elem_id="ev-open", scale=1)
    status = gr.Markdown(elem_id="ev-status")
    table = gr.Dataframe(column_count=0, interactive=False, wrap=True, label=t("ev_table"), elem_id="ev-table")
    group = gr.Radio(
        [(t("ev_group_all"), "all"), *[(t(f"ev_group_{g}"), g) for g in plots.GROUPS]],
        value="all", label=t("ev_group"), elem_id="ev-metric-group",
    )  # fmt: skip
    heat = gr.Plot(label=t("ev_metric_plot"), elem_id="ev-metric-plot")
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
    drill = gr.Dataframe(column_count=0, interactive=False, wrap=True, elem_id="ev-drill")
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
        per_reply = gr.Dataframe(column_count=0, interactive=False, label=t("ev_corr_reply"))
        per_model = gr.Dataframe(column_count=0, interactive=False, label=t("ev_corr_model"))
    meta_section.build(weights, names)
    state = gr.State(None)

    form = [models, split, limit, seed, max_new, temperature, batch, weights, judge, reference, group]
    shown = [status, table, heat, finish, lengths, drill, state]
    run.click(_run, form, [progress, *shown, runs, picker], concurrency_limit=1)
    open_runs.click(_open, [picker, group], shown)
    group.change(_heatmap, [state, group], heat)
    gr.context.Context.root_block.load(_page_open, group, [runs, picker, *shown])
    drill_model.change(_drill, [state, drill_model], drill)
    drill.select(_detail, [state, drill], detail)
    export.click(_export, state, [csv_file, report_file, status])
    calibrate.click(_calibrate, [state, weights, ridge], [calibration, per_reply, per_model])
    choices = lambda: [gr.update(choices=_names())] + [gr.update(choices=["", *_names()])] * 3  # noqa: E731
    refresh.click(choices, None, [models, judge, reference, drill_model])
    refresh.click(lambda picked: _runs(picked or []), picker, [runs, picker])
