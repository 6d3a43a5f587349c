"""The Fine-tune tab: a form, a data preview with special tokens visible, progress, a loss plot, cancel.

Widgets and wiring only: training is `rp_eval.finetune.job` (a background thread); this tab follows its
progress through the `follow()` generator, so the page stays responsive and Cancel works mid-run.
"""

from __future__ import annotations

import html

import gradio as gr
import pandas as pd
from pydantic import ValidationError

from rp_eval import paths
from rp_eval.errors import RpEvalError
from rp_eval.finetune import job
from rp_eval.finetune.config import CHECKPOINTING, SCHEDULES, FinetuneSettings
from rp_eval.finetune.plan import plan_data
from rp_eval.finetune.preview import preview
from rp_eval.models import registry
from rp_eval.store import finetune as runs
from rp_eval.store import get_store
from rp_eval.ui import numbers
from rp_eval.ui.locale import axes, error_text, headers, t, warn, word

_CSS = (
    "<style>.ft-preview mark.ft-trained{background:#fde68a;color:#111}"
    ".ft-special{border:1px solid #b45309;border-radius:3px;padding:0 2px;font-weight:bold;color:#b45309}</style>"
)


def _bases() -> list[str]:
    return [r.name for r in registry.list_models() if r.kind != "adapter"]


def _runs_table() -> pd.DataFrame:
    rows = [
        {
            "run": r.id,
            "status": word("run_status_", r.status),
            "base": r.base_model,
            "adapter": r.adapter,
            "train loss": r.metrics.get("train_loss", ""),
            "stops (base → adapter)": _stop_words(r.metrics),
        }
        for r in _listed_runs()
    ]
    columns = ["run", "status", "base", "adapter", "train loss", "stops (base → adapter)"]
    return headers(pd.DataFrame(rows, columns=columns))


def _listed_runs():
    job.mark_interrupted()  # runs whose process is gone are shown failed, with the reason in their log
    return runs.list_runs(get_store())


def _stop_words(metrics: dict) -> str:
    check = metrics.get("stop_check")
    if not check:
        return ""
    return f"{check['base']['natural_stop_rate']:.0%} → {check['adapter']['natural_stop_rate']:.0%}"


def _preview(base: str | None, data: str, max_length: float) -> str:
    if not base:
        return f"⚠️ {t('ft_choose_base')}"
    try:
        pv = preview(base, paths.confine_source(data or "", "training data"), n=3, max_length=int(max_length))
    except RpEvalError as err:
        return html.escape(warn(err))
    if not pv.ok:
        return t("ft_refused", why=html.escape(error_text(pv.end_marker)))
    head = f"<p><code>{html.escape(error_text(pv.end_marker))}</code></p><p>{html.escape(error_text(pv.counts))}</p>"
    return _CSS + head + "".join(pv.html)


def _progress_html(p: job.Progress) -> str:
    eta = "–" if p.eta_seconds is None else f"{p.eta_seconds:.0f} s"
    status = word("run_status_", p.status)
    words = t("ft_progress", run=p.run_id, status=status, step=p.step, total=p.total or "?", epoch=p.epoch, eta=eta)
    value = f'value="{p.step}" max="{p.total}"' if p.total else ""
    return f'<progress id="ft-bar" {value} style="width:100%"></progress><p id="ft-progress-text">{words}</p>'


def _plot(p: job.Progress) -> pd.DataFrame:
    points = [
        {"step": x["step"], "loss": x[key], "series": t("ft_series_train" if key == "loss" else "ft_series_eval")}
        for x in p.losses
        for key in ("loss", "eval_loss")
        if key in x
    ]
    return pd.DataFrame(points, columns=["step", "loss", "series"])


def _result(p: job.Progress) -> str:
    if p.status == "done":
        out = t("ft_done", adapter=p.adapter)
        if p.metrics.get("merged"):
            out += "\n\n" + t("ft_merged", name=p.metrics["merged"])
        if p.metrics.get("merge_error"):
            out += "\n\n⚠️ " + p.metrics["merge_error"]
        check = p.metrics.get("stop_check")
        if check:
            b, a = check["base"], check["adapter"]
            out += (
                "\n\n"
                + t("ft_stop_caption", prompts=b.get("prompts", "?"))
                + "\n\n"
                + t(
                    "ft_stop_table",
                    base_stop=b["natural_stop_rate"],
                    tuned_stop=a["natural_stop_rate"],
                    base_text=b["end_text_rate"],
                    tuned_text=a["end_text_rate"],
                    base_sent=b["mean_sentences"],
                    tuned_sent=a["mean_sentences"],
                )
            )
        return out
    if p.status == "failed":
        return f"⚠️ {p.metrics.get('error', '')}"
    return ""


def _watch(run_id: int):
    for p in job.follow(run_id):
        yield _progress_html(p), _plot(p), "\n".join(map(error_text, p.log[-200:])), _result(p), run_id, _runs_table()


def _settings(base, data, adapter_name, r, alpha, dropout, targets, qlora, checkpointing, lr, schedule, warmup,
              epochs, max_steps, batch, accum, seed, eval_fraction, max_length, overflow, merge_full=False):  # fmt: skip
    """The form as FinetuneSettings; every number is checked first and a bad one refused naming its field."""
    return FinetuneSettings(
        base_model=base or "-",
        data=paths.confine_source(data or "", "training data"),
        adapter_name=adapter_name or "",
        lora_r=numbers.whole(r, "ft_rank", 1, 1024),
        lora_alpha=numbers.whole(alpha, "ft_alpha", 1, 100_000),
        lora_dropout=numbers.real(dropout, "ft_dropout", 0, 0.99),
        target_modules=tuple(x.strip() for x in (targets or "").split(",") if x.strip()),
        qlora=qlora,
        gradient_checkpointing=checkpointing,
        learning_rate=numbers.real(lr, "ft_lr", 1e-9, 1),
        schedule=schedule,
        warmup=numbers.real(warmup, "ft_warmup", 0, 1_000_000),
        epochs=numbers.real(epochs, "ft_epochs", 0.01, 10_000),
        max_steps=numbers.whole(max_steps, "ft_max_steps", -1, 10_000_000),
        batch_size=numbers.whole(batch, "ft_batch", 1, 4096),
        grad_accum=numbers.whole(accum, "ft_accum", 1, 4096),
        seed=numbers.whole(seed, "ft_seed", 0, 2**32 - 1),
        eval_fraction=numbers.real(eval_fraction, "ft_eval_fraction", 0, 0.9),
        max_length=numbers.whole(max_length, "ft_max_length", 8, 1_000_000),
        overflow=overflow,
        merge_full=bool(merge_full),
    )


def _plan(*form) -> str:
    """How long the run on this form will be, said before it starts (or why it would be refused)."""
    try:
        s = _settings(*form)
        p = plan_data(s)
    except (numbers.BadNumber, RpEvalError, ValidationError) as err:
        return warn(err)
    return t("ft_plan", steps=p.total_steps, per_epoch=p.steps_per_epoch, train=p.train, conversations=p.conversations,
             held=p.held, warmup=p.warmup_steps, checks=s.stop_check_prompts)  # fmt: skip


def _start(*form):
    if not form[0]:
        yield gr.update(), gr.update(), gr.update(), f"⚠️ {t('ft_choose_base')}", gr.update(), gr.update()
        return
    try:
        run_id = job.start(_settings(*form))
    except (numbers.BadNumber, RpEvalError, ValidationError) as err:
        yield gr.update(), gr.update(), gr.update(), warn(err), gr.update(), gr.update()
        return
    yield from _watch(run_id)


def _cancel(run_id: float | None) -> str:
    run = int(run_id or 0)
    return t("ft_cancel_sent", run=run) if job.cancel(run) else t("ft_not_running", run=run)


def _resume(run_id: float | None):
    try:
        run = job.resume(int(run_id or 0))
    except RpEvalError as err:
        yield gr.update(), gr.update(), gr.update(), warn(err), gr.update(), gr.update()
        return
    yield from _watch(run)


def _base_chosen(name: str | None, lr_now: float | None):
    """A base that suggests its own learning rate (the tiny demo-llama-eos) gets it, with a line saying why;
    choosing another base afterwards puts the default back."""
    from rp_eval.models import demo

    default = FinetuneSettings.model_fields["learning_rate"].default
    suggested = demo.suggested_finetune(name or "").get("learning_rate")
    if suggested:
        return gr.update(value=suggested), t("ft_lr_suggested", model=name, lr=suggested, default=default)
    if lr_now in {v["learning_rate"] for v in demo.FINETUNE_SUGGESTED.values()}:
        return gr.update(value=default), ""
    return gr.update(), ""


def build() -> None:
    gr.Markdown(t("ft_intro"))
    d = FinetuneSettings(base_model="-")
    with gr.Row():
        with gr.Column(scale=2):
            base = gr.Dropdown(choices=_bases(), value=None, label=t("ft_base"), elem_id="ft-base")
            base_note = gr.Markdown(elem_id="ft-base-note")
            data = gr.Textbox(label=t("ft_data"), placeholder=t("ft_data_placeholder"), elem_id="ft-data")
            adapter_name = gr.Textbox(label=t("ft_adapter_name"))
        with gr.Column(scale=1):
            preview_button = gr.Button(t("ft_preview"), elem_id="ft-preview-button")
            start = gr.Button(t("ft_start"), variant="primary", elem_id="ft-start")
            run_id = gr.Number(label=t("ft_run_id"), precision=0, value=None, elem_id="ft-run-id")
            with gr.Row():
                cancel = gr.Button(t("ft_cancel"), variant="stop", elem_id="ft-cancel")
                resume = gr.Button(t("ft_resume"), elem_id="ft-resume")
    with gr.Accordion(t("ft_lora"), open=False):
        with gr.Row():
            r = gr.Number(d.lora_r, label=t("ft_rank"), precision=0)
            alpha = gr.Number(d.lora_alpha, label=t("ft_alpha"), precision=0)
            dropout = gr.Number(d.lora_dropout, label=t("ft_dropout"))
            targets = gr.Textbox(label=t("ft_targets"))
        with gr.Row():
            qlora = gr.Checkbox(d.qlora, label=t("ft_qlora"))
            checkpointing = gr.Radio(
                [(t(f"ft_checkpointing_{k}"), k) for k in CHECKPOINTING],
                value=d.gradient_checkpointing,
                label=t("ft_checkpointing"),
            )
            merge_full = gr.Checkbox(d.merge_full, label=t("ft_merge_full"), elem_id="ft-merge-full")
    with gr.Accordion(t("ft_training"), open=False):
        with gr.Row():
            lr = gr.Number(d.learning_rate, label=t("ft_lr"), elem_id="ft-lr")
            schedule = gr.Dropdown(list(SCHEDULES), value=d.schedule, label=t("ft_schedule"))
            warmup = gr.Number(d.warmup, label=t("ft_warmup"), elem_id="ft-warmup")
            epochs = gr.Number(d.epochs, label=t("ft_epochs"))
            max_steps = gr.Number(d.max_steps, label=t("ft_max_steps"), precision=0, elem_id="ft-max-steps")
        with gr.Row():
            batch = gr.Number(d.batch_size, label=t("ft_batch"), precision=0, elem_id="ft-batch")
            accum = gr.Number(d.grad_accum, label=t("ft_accum"), precision=0, elem_id="ft-accum")
            seed = gr.Number(d.seed, label=t("ft_seed"), precision=0)
            eval_fraction = gr.Number(d.eval_fraction, label=t("ft_eval_fraction_loss"))
            max_length = gr.Number(d.max_length, label=t("ft_max_length"), precision=0)
            overflow = gr.Radio(
                [(t(f"ft_overflow_{k}"), k) for k in ("truncate", "drop")], value=d.overflow, label=t("ft_overflow")
            )
    plan = gr.Markdown(elem_id="ft-plan")
    preview_html = gr.HTML(elem_id="ft-preview")
    progress = gr.HTML(f"<p>{t('ft_progress_idle')}</p>", elem_id="ft-progress")
    result = gr.Markdown(elem_id="ft-result")
    with gr.Row():
        plot = gr.LinePlot(
            _plot(job.Progress(0, "")),
            x="step",
            y="loss",
            color="series",
            label=t("ft_loss_plot"),
            **axes("step", "loss", "series"),
        )
        log = gr.Textbox(label=t("ft_log"), lines=12, max_lines=12, autoscroll=True, elem_id="ft-log")
    gr.Markdown(f"### {t('ft_runs')}")
    table = gr.Dataframe(value=_runs_table, interactive=False, elem_id="ft-runs")
    refresh = gr.Button(t("ft_refresh"), size="sm")

    form = [base, data, adapter_name, r, alpha, dropout, targets, qlora, checkpointing, lr, schedule, warmup, epochs]
    form += [max_steps, batch, accum, seed, eval_fraction, max_length, overflow, merge_full]
    watched = [progress, plot, log, result, run_id, table]
    preview_button.click(_preview, [base, data, max_length], preview_html)
    start.click(_start, form, watched, concurrency_limit=None)
    for box in form[3:]:  # the plan follows every setting as it is typed or picked
        if hasattr(box, "change"):
            box.change(_plan, form, plan, show_progress="hidden", trigger_mode="always_last")
    base.change(_base_chosen, [base, lr], [lr, base_note], show_progress="hidden")
    data.blur(_plan, form, plan, show_progress="hidden")
    gr.context.Context.root_block.load(_plan, form, plan, show_progress="hidden")
    cancel.click(_cancel, run_id, result, concurrency_limit=None)
    resume.click(_resume, run_id, watched, concurrency_limit=None)
    refresh.click(lambda: (_runs_table(), gr.update(choices=_bases())), None, [table, base])
