"""The Evolve tab: set up a genome from the registered models, start / stop / resume a CMA-ES search, watch best
and mean fitness per generation, browse the candidates, export the best (recipe to merges/, full mergekit merge,
registered). All work is done by rp_eval.evolve.search."""

from __future__ import annotations

import threading

import gradio as gr
import pandas as pd

from rp_eval.errors import RpEvalError
from rp_eval.evolve import audit
from rp_eval.evolve.genome import METHOD_PARAMS, Genome, save_genome
from rp_eval.evolve.search import SearchSettings, evolve, export_best, stored_settings
from rp_eval.models import registry
from rp_eval.store import evolve as db
from rp_eval.store import get_store
from rp_eval.ui.locale import axes, t, warn

_STOP = threading.Event()


def _names() -> list[str]:
    return [r.name for r in registry.list_models() if r.kind != "adapter"]


def _history_frame(history) -> pd.DataFrame:
    rows = [{"generation": g, "fitness": v, "series": s} for g, b, m in history for s, v in (("best", b), ("mean", m))]
    # the empty plot names both series: the legend and colours keep the series the first value had
    empty = [{"generation": 0, "fitness": 0.0, "series": s} for s in ("best", "mean")]
    return pd.DataFrame(rows or empty)


def candidates_frame(run: str) -> pd.DataFrame:
    row = db.get_run(get_store(), run)
    cands = db.candidates(get_store(), row.id) if row is not None else []
    return audit.with_flags(pd.DataFrame(
        [
            {
                "generation": c.generation,
                "index": c.index,
                "status": c.status,
                "fitness": c.fitness,
                "test_fitness": c.test_fitness,
                **{k: round(v, 4) for k, v in (c.metrics or {}).items()},
                "build_s": round(c.build_seconds, 3),
                "eval_s": round(c.eval_seconds, 2),
                "error": c.error,
            }
            for c in cands
        ]  # fmt: skip
    ), cands)  # fmt: skip


def _settings(population, budget, sigma, seed, dev_limit, tokens) -> SearchSettings:
    return SearchSettings(
        population=int(population), budget=int(budget), sigma0=float(sigma), seed=int(seed),
        dev_limit=int(dev_limit), max_new_tokens=int(tokens),
    )  # fmt: skip


def _stream(genome, settings, run, resume):
    _STOP.clear()
    try:
        for p in evolve(genome, settings, run, resume=resume, stop=_STOP):
            yield p.message, _history_frame(p.history), candidates_frame(run)
    except RpEvalError as err:
        yield warn(err), gr.skip(), gr.skip()


def start(models, base, method, granularity, split, run, population, budget, sigma, seed, dev_limit, tokens):
    try:
        if not [m for m in models or [] if m != base]:
            raise RpEvalError(key="err_evolve_no_models")
        genome = Genome(
            name=run, models=[m for m in models or [] if m != base], base_model=base or None, method=method,
            layer_granularity=int(granularity), split_attention_mlp=bool(split),
        )  # fmt: skip
        save_genome(genome)
        settings = _settings(population, budget, sigma, seed, dev_limit, tokens)
    except (RpEvalError, ValueError) as err:
        yield warn(err), gr.skip(), gr.skip()
        return
    yield from _stream(genome, settings, run, resume=False)


def resume(run):
    row = db.get_run(get_store(), run)
    if row is None:
        yield f"⚠ no evolve run named '{run}'", gr.skip(), gr.skip()
        return
    yield from _stream(None, stored_settings(row), run, resume=True)


def stop():
    _STOP.set()
    return t("evo_stopping")


def export(run, name):
    try:
        steps = list(export_best(run, name))
        return t("evo_exported", name=steps[-1].model)
    except RpEvalError as err:
        return warn(err)


def build() -> None:
    gr.Markdown(t("evo_intro"))
    names = _names()
    with gr.Row():
        models = gr.Dropdown(names, multiselect=True, label=t("evo_models"), elem_id="ev-models")
        base = gr.Dropdown(names, label=t("evo_base"), elem_id="ev-base")
        method = gr.Dropdown(list(METHOD_PARAMS), value="dare_ties", label=t("evo_method"))
        granularity = gr.Number(0, precision=0, label=t("evo_granularity"))
        split = gr.Checkbox(False, label=t("evo_split"))
    with gr.Row():
        run = gr.Textbox("evolve-1", label=t("evo_run"), elem_id="ev-run")
        population = gr.Number(4, precision=0, label=t("evo_population"), elem_id="ev-population")
        budget = gr.Number(8, precision=0, label=t("evo_budget"), elem_id="ev-budget")
        sigma = gr.Number(0.2, label=t("evo_sigma"))
        seed = gr.Number(0, precision=0, label=t("evo_seed"))
        dev_limit = gr.Number(4, precision=0, label=t("evo_dev_limit"), elem_id="ev-dev-limit")
        tokens = gr.Number(16, precision=0, label=t("evo_tokens"), elem_id="ev-tokens")
    with gr.Row():
        start_btn = gr.Button(t("evo_start"), variant="primary", elem_id="ev-start")
        stop_btn = gr.Button(t("evo_stop"), variant="stop", elem_id="ev-stop")
        resume_btn = gr.Button(t("evo_resume"), elem_id="ev-resume")
        refresh_btn = gr.Button(t("evo_refresh"), elem_id="ev-refresh")
    status = gr.Markdown(elem_id="ev-status")
    gr.Markdown(audit.describe_meta(audit.default_fitness_meta()), elem_id="ev-fitness-meta")
    plot = gr.LinePlot(
        _history_frame([]), x="generation", y="fitness", color="series", title=t("evo_plot"), elem_id="ev-plot",
        **axes("generation", "fitness", "series"),
    )  # fmt: skip
    table = gr.Dataframe(label=t("evo_candidates"), interactive=False, elem_id="ev-candidates")
    with gr.Row():
        export_name = gr.Textbox("evolved-best", label=t("evo_export_name"), elem_id="ev-export-name")
        export_btn = gr.Button(t("evo_export"), elem_id="ev-export")
    inputs = [models, base, method, granularity, split, run, population, budget, sigma, seed, dev_limit, tokens]
    start_btn.click(start, inputs, [status, plot, table])
    resume_btn.click(resume, [run], [status, plot, table])
    stop_btn.click(stop, None, status)
    refresh_btn.click(candidates_frame, [run], table)
    export_btn.click(export, [run, export_name], status)
    for picker in (models, base):  # models registered since the page was built (merges, fine-tunes)
        picker.focus(lambda: gr.update(choices=_names()), None, picker, queue=False, show_progress="hidden")
