"""The Evolve tab: set up a genome from the registered models, start / stop / resume a CMA-ES search, watch best
and mean fitness per generation, browse the candidates, export the best (recipe to a folder the user names, by
default the workspace's merges/; full mergekit merge, registered). Genomes are saved in the workspace too. All
work is done by rp_eval.evolve.search."""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr
import pandas as pd

from rp_eval import paths, plotfonts, settings
from rp_eval.errors import RpEvalError, Said, categories
from rp_eval.evolve import audit
from rp_eval.evolve.genome import METHOD_PARAMS, Genome, save_genome
from rp_eval.evolve.search import SearchSettings, evolve, export_best, recipe_path, recipes_folder, stored_settings
from rp_eval.models import registry
from rp_eval.store import evolve as db
from rp_eval.store import get_store
from rp_eval.ui import locale, numbers
from rp_eval.ui.locale import error_text, headers, t, warn, word, words
from rp_eval.ui.uploads import uploaded
from rp_eval.ui.zerogpu import on_gpu

_STOPS: dict[str, threading.Event] = {}  # run name -> its stop flag, while this process runs it


def _names() -> list[str]:
    return [r.name for r in registry.list_models() if r.kind != "adapter"]


def _weight_names() -> list[str]:
    """The fitness's weights on offer: the defaults (""), then every weights file of the workspace by name (the
    calibrated weights from the ratings among them once the Evaluate tab has fitted them)."""
    from rp_eval.evaluate.score import weights_dir

    return ["", *sorted(p.stem for p in weights_dir().glob("*.yaml"))]


def prefit_line(name: str | None) -> str:
    """For weights fitted on the lab's preferences: what they were fitted on and their held-out agreement."""
    from rp_eval.evaluate import preference_fit as pf

    found = pf.figures(name or "")
    if not found:
        return ""
    return t(
        "evo_prefit_line",
        name=name,
        blind=found.get("blind_votes", 0),
        chat=found.get("chat_preferences", 0),
        agreement=pf.agreement_text(found.get("agreement")),
        default=pf.agreement_text(found.get("agreement_default")),
    )


def fit_to_preferences():
    """Fit the fitness weights on the stored blind votes and chat preferences, save them, and choose them; or say
    why not (too few votes)."""
    from rp_eval.evaluate import preference_fit as pf

    try:
        result = pf.fit_preferences(get_store())
        pf.save(result)
    except RpEvalError as err:
        return gr.update(), warn(err)
    lines = [t("evo_prefit_saved", name=pf.NAME), prefit_line(pf.NAME)]
    lines += ["⚠️ " + error_text(p) for p in result.problems]
    return gr.update(choices=_weight_names(), value=pf.NAME), "\n\n".join(lines)


def _history_frame(history) -> pd.DataFrame:
    """(generation, fitness, series) with generations counted from 1 and fitness rounded to 4 places."""
    rows = [
        {"generation": g + 1, "fitness": round(v, 4), "series": s}
        for g, b, m in history
        for s, v in (("best", b), ("mean", m))
    ]
    return pd.DataFrame(rows, columns=["generation", "fitness", "series"])


def _history_figure(history):
    """Best-so-far and mean fitness per generation; whole generations on the axis (matplotlib, for `gr.Plot`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    frame = _history_frame(history)
    with plt.rc_context(plotfonts.rc()):
        fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
        for series, style in (("best", "o-"), ("mean", "s--")):
            part = frame[frame["series"] == series]
            ax.plot(part["generation"], part["fitness"], style, label=t(f"evo_series_{series}"))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if frame.empty:
            ax.set_xlim(0.5, 2.5)
        ax.set_xlabel(t("evo_axis_generation"))
        ax.set_ylabel(t("evo_axis_fitness"))
        ax.grid(alpha=0.3)
        if not frame.empty:
            ax.legend(loc="lower right")
    plt.close(fig)
    return fig


def candidates_frame(run: str) -> pd.DataFrame:
    row = db.get_run(get_store(), run)
    cands = db.candidates(get_store(), row.id) if row is not None else []
    return audit.with_flags(pd.DataFrame(
        [
            {
                "generation": c.generation + 1,  # counted from 1, as on the plot and in the status line
                "index": c.index,
                "status": c.status,
                "fitness": None if c.fitness is None else round(c.fitness, 4),
                "test_fitness": None if c.test_fitness is None else round(c.test_fitness, 4),
                **{k: round(v, 4) for k, v in (c.metrics or {}).items()},
                "build_s": round(c.build_seconds, 3),
                "eval_s": round(c.eval_seconds, 2),
                "error": c.error,
            }
            for c in cands
        ]  # fmt: skip
    ), cands)  # fmt: skip


def _shown(run: str) -> pd.DataFrame:
    """The candidates table as the page shows it: headers and statuses in the page's language."""
    frame = words(candidates_frame(run), "status", "run_status_")
    if "flag" in frame:
        frame = frame.assign(flag=frame["flag"].map(lambda f: error_text(f) if isinstance(f, Said) else f))
    return headers(frame)


def _settings(population, budget, sigma, seed, dev_limit, tokens) -> SearchSettings:
    return SearchSettings(
        population=numbers.whole(population, "evo_population", 2, 10_000),
        budget=numbers.whole(budget, "evo_budget", 1, 10_000_000),
        sigma0=numbers.real(sigma, "evo_sigma", 1e-6, 100),
        seed=numbers.whole(seed, "evo_seed", 0, 2**31 - 1),
        dev_limit=numbers.whole(dev_limit, "evo_dev_limit", 1, 100_000),
        max_new_tokens=numbers.whole(tokens, "evo_tokens", 1, 4096),
    )


def _fitness_meta_line(meta: dict, task: str | None = None) -> str:
    """What the fitness is (task, weights, judge) and how often it prefers the better reply of the
    meta-evaluation pairs, in the page's language: the one place the page explains the fitness."""
    what = t(
        "evo_fitness_what", task=Path(task).name if task else t("evo_task_default"),
        weights=(meta or {}).get("weights") or "default", judge=(meta or {}).get("judge") or t("evo_judge_none"),
    )  # fmt: skip
    if not meta or "error" in meta:
        return what + "\n\n" + t("evo_meta_none")
    shown = [(c, f"{v:.0%}") for c, v in meta["by_category"].items() if v is not None]
    cats = categories([c for c, _ in shown], [v for _, v in shown])
    return what + "\n\n" + t(
        "evo_meta_line", accuracy=f"{meta['accuracy']:.1%}", pairs=meta["pairs"], lo=f"{meta['lo']:.1%}",
        hi=f"{meta['hi']:.1%}", categories=cats,
    )  # fmt: skip


def _status_line(p) -> str:
    """The search's status line: the library's own (English) line on an English page; in another language, the same
    news worded from the progress's fields (the candidate's own result is in the table below)."""
    if (locale.language() or "en") == "en":
        return p.message
    best = "–" if p.best is None else f"{p.best:.4f}"
    if p.done:
        return t("evo_line_done", evaluated=p.evaluated, best=best)
    if p.generation < 0:
        return t("evo_line_test", best=best)
    if p.message == "stopped":
        return t("evo_line_stopped", evaluated=p.evaluated, budget=p.budget, best=best)
    if p.evaluated == 0 and not p.history:
        return t("evo_line_loading")
    return t("evo_line_progress", generation=p.generation + 1, evaluated=p.evaluated, budget=p.budget, best=best)


def _stream(genome, settings, run, resume):
    stop_flag = _STOPS[run] = threading.Event()
    try:
        for p in evolve(genome, settings, run, resume=resume, stop=stop_flag):
            fitness = _fitness_meta_line(p.meta, settings.task) if p.meta else gr.skip()
            yield _status_line(p), _history_figure(p.history), _shown(run), fitness
    except RpEvalError as err:
        yield warn(err), gr.skip(), gr.skip(), gr.skip()
    finally:
        if _STOPS.get(run) is stop_flag:
            del _STOPS[run]


def _task_source(task_file, task_path) -> str | None:
    """The task the search scores on: an uploaded JSONL file, else a typed path (a file or a folder; relative
    paths are taken inside the workspace), else None (the project's own task). Checked here, so a bad line is
    refused with its file and line before anything is loaded."""
    from rp_eval.evaluate.task import load_task

    if task_file:
        source = uploaded(task_file if isinstance(task_file, str) else task_file.name)
    elif (task_path or "").strip():
        typed = Path(task_path.strip()).expanduser()
        source = paths.confine(typed if typed.is_absolute() else settings.home() / typed, "task file")
    else:
        return None
    load_task(source)
    return str(source)


@on_gpu(duration=600)
def start(
    models, base, method, granularity, split, run, population, budget, sigma, seed, dev_limit, tokens,
    task_file=None, task_path="", weights="", judge="",
):  # fmt: skip
    try:
        if not [m for m in models or [] if m != base]:
            raise RpEvalError(key="err_evolve_no_models")
        settings = _settings(population, budget, sigma, seed, dev_limit, tokens).model_copy(
            update={
                "task": _task_source(task_file, task_path),
                "weights": weights or None,
                "judge_model": judge or None,
            }
        )
        genome = Genome(
            name=run, models=[m for m in models or [] if m != base], base_model=base or None, method=method,
            layer_granularity=numbers.whole(granularity, "evo_granularity", 0, 10_000),
            split_attention_mlp=bool(split),
        )  # fmt: skip
        save_genome(genome)
    except (RpEvalError, ValueError) as err:
        yield warn(err), gr.skip(), gr.skip(), gr.skip()
        return
    yield from _stream(genome, settings, run, resume=False)


@on_gpu(duration=600)
def resume(run):
    row = db.get_run(get_store(), run)
    if row is None:
        yield f"⚠️ {t('evo_no_run', run=run)}", gr.skip(), gr.skip(), gr.skip()
        return
    yield from _stream(None, stored_settings(row), run, resume=True)


def stop(run: str) -> str:
    """Ask the run to stop after its current candidate; a run that is not running here is said to be so."""
    flag = _STOPS.get(run)
    if flag is not None:
        flag.set()
        return t("evo_stopping")
    row = db.get_run(get_store(), run)
    if row is None:
        return f"⚠ {t('evo_no_run', run=run)}"
    if row.status == "running":  # another process (the CLI, another server) runs it
        return t("evo_running_elsewhere", run=run)
    best = "–" if row.best_fitness is None else f"{row.best_fitness:.4f}"
    return t("evo_not_running", run=run, status=word("run_status_", row.status), best=best)


def export(run, name, folder):
    try:
        where = None
        if (folder or "").strip():  # a relative folder is taken inside the workspace, not the working folder
            typed = Path(folder.strip()).expanduser()
            where = str(paths.confine(typed if typed.is_absolute() else settings.home() / typed, "recipe folder"))
        steps = list(export_best(run, name, where))
        return t("evo_exported_to", name=steps[-1].model, path=recipe_path(name, where))
    except RpEvalError as err:
        return warn(err)


def build() -> None:
    gr.Markdown(t("evo_intro"))
    names = _names()
    with gr.Row():
        models = gr.Dropdown(names, multiselect=True, label=t("evo_models"), elem_id="evo-models")
        base = gr.Dropdown(names, label=t("evo_base"), elem_id="evo-base")
        method = gr.Dropdown(list(METHOD_PARAMS), value="dare_ties", label=t("evo_method"))
        granularity = gr.Number(0, precision=0, label=t("evo_granularity"))
        split = gr.Checkbox(False, label=t("evo_split"))
    with gr.Row():  # the fitness: the researcher's own task, weights and judge
        task_file = gr.File(label=t("evo_task_file"), file_types=[".jsonl"], elem_id="evo-task-file", height=120)
        task_path = gr.Textbox(label=t("evo_task_path"), placeholder="prompts/eval/items", elem_id="evo-task-path")
        weights = gr.Dropdown(
            _weight_names(), value="", allow_custom_value=True, label=t("evo_weights"), elem_id="evo-weights"
        )
        judge = gr.Dropdown(["", *names], value="", label=t("evo_judge"), elem_id="evo-judge")
    with gr.Row(equal_height=True):  # the fitness that predicts this lab's raters
        prefit_btn = gr.Button(t("evo_prefit"), size="sm", scale=0, elem_id="evo-prefit")
        prefit = gr.Markdown(elem_id="evo-prefit-line")
    with gr.Row():
        run = gr.Textbox("evolve-1", label=t("evo_run"), elem_id="evo-run")
        population = gr.Number(4, precision=0, label=t("evo_population"), elem_id="evo-population")
        budget = gr.Number(8, precision=0, label=t("evo_budget"), elem_id="evo-budget")
        sigma = gr.Number(0.2, label=t("evo_sigma"))
        seed = gr.Number(0, precision=0, label=t("evo_seed"))
        dev_limit = gr.Number(4, precision=0, label=t("evo_dev_limit"), elem_id="evo-dev-limit")
        tokens = gr.Number(16, precision=0, label=t("evo_tokens"), elem_id="evo-tokens")
    with gr.Row():
        start_btn = gr.Button(t("evo_start"), variant="primary", elem_id="evo-start")
        stop_btn = gr.Button(t("evo_stop"), variant="stop", elem_id="evo-stop")
        resume_btn = gr.Button(t("evo_resume"), elem_id="evo-resume")
        refresh_btn = gr.Button(t("evo_refresh"), elem_id="evo-refresh")
    status = gr.Markdown(elem_id="evo-status")
    fitness = gr.Markdown(
        locale.composed("evo_fitness", _fitness_meta_line, audit.default_fitness_meta()), elem_id="evo-fitness-meta"
    )
    plot = gr.Plot(label=t("evo_plot"), elem_id="evo-plot")
    table = gr.Dataframe(column_count=0, label=t("evo_candidates"), interactive=False, elem_id="evo-candidates")
    with gr.Row():
        export_name = gr.Textbox("evolved-best", label=t("evo_export_name"), elem_id="evo-export-name")
        export_folder = gr.Textbox(
            label=t("evo_export_folder"), placeholder=str(recipes_folder()), elem_id="evo-export-folder"
        )
        export_btn = gr.Button(t("evo_export"), elem_id="evo-export")
    inputs = [models, base, method, granularity, split, run, population, budget, sigma, seed, dev_limit, tokens,
              task_file, task_path, weights, judge]  # fmt: skip
    start_btn.click(start, inputs, [status, plot, table, fitness])
    resume_btn.click(resume, [run], [status, plot, table, fitness])
    stop_btn.click(stop, run, status, queue=False)
    refresh_btn.click(_shown, [run], table)
    export_btn.click(export, [run, export_name, export_folder], status)
    for picker in (models, base, judge):  # models registered since the page was built (merges, fine-tunes)
        picker.focus(lambda: gr.update(choices=_names()), None, picker, queue=False, show_progress="hidden")
    weights.focus(lambda: gr.update(choices=_weight_names()), None, weights, queue=False, show_progress="hidden")
    prefit_btn.click(fit_to_preferences, None, [weights, prefit])
    weights.input(prefit_line, weights, prefit)
