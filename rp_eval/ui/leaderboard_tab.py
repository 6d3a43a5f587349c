"""The Leaderboard tab: the aggregates of `rp_eval.ratings.leaderboard` as tables and plots, filters, exports.

Nothing is computed on page load (a rater in the middle of a blind pair gets no model names over the wire
from this tab); Refresh computes it, and "refresh on new ratings" polls the rating count every 15 s.
"""

from __future__ import annotations

import time
from datetime import datetime

import gradio as gr
import pandas as pd

from rp_eval import auth, settings
from rp_eval.errors import RpEvalError, Said
from rp_eval.ratings import leaderboard, plots, sources
from rp_eval.ratings.records import RatingError, RatingFilter, load_scores, load_votes, write_frame
from rp_eval.store import get_store
from rp_eval.store import ratings as table
from rp_eval.ui.locale import error_text, headers, t, warn, words

FEW_VOTES = 20  # below this many votes in the combined ranking, a line says its intervals are wide


def _date(text: str) -> datetime | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError as err:
        raise RatingError(t("lb_bad_date", text=text)) from err


def _filter(persona, rater, exclude, since, until) -> RatingFilter:
    return RatingFilter(
        persona=persona or "",
        rater=rater or "",
        exclude_raters=tuple(exclude or ()),
        since=_date(since),
        until=_date(until),
    )


def _source_words(problem):
    """A problem naming a source ('judge') with the source's word in the page's language."""
    if isinstance(problem, Said) and problem.values.get("source") in sources.SOURCES:
        return Said(problem.key, **{**problem.values, "source": t(f"lb_source_{problem.values['source']}")})
    return problem


def combined(where: RatingFilter, rounds: int, weighting: str, shown: str):
    """The combined ranking's summary, table and plot; a clear line, no table, when nothing can be ranked."""
    store = get_store()
    try:
        board = sources.combined_board(
            store,
            where,
            weights="fit" if weighting == "fit" else None,
            rounds=rounds,
            sources=None if shown == "all" else [shown],
        )
    except RpEvalError as err:
        return t("lb_combined_none", error=error_text(err)), gr.update(value=None), None
    fit = board.fit
    used = sum(board.counts[s] for s in fit.weights)
    parts = [
        t(
            "lb_combined_source",
            source=t(f"lb_source_{s}"),
            votes=board.counts[s],
            raters=fit.raters.get(s, 0),
            weight=f"{fit.weights[s]:g}",
            scale=f"{fit.scale.get(s, 1.0):.2f}",
        )
        for s in fit.weights
    ]
    lines = [t("lb_combined_summary", votes=used, rounds=fit.rounds, sources=t("sep_list").join(parts))]
    if fit.length:
        values = t("sep_list").join(f"{t(f'lb_source_{s}')} {v:+.2f}" for s, v in fit.length.items())
        lines.append(t("lb_combined_length", values=values))
    if used < FEW_VOTES:
        lines.append(t("lb_combined_few", n=used))
    lines += ["⚠️ " + error_text(_source_words(p)) for p in fit.problems]
    plot_frame = board.table.assign(votes=board.table.filter(like="votes_").sum(axis=1))
    return "\n\n".join(lines), headers(board.table), plots.scores_figure(plot_frame, say=t)


def refresh(persona, rater, exclude, since, until, rounds, weighting="equal", shown="all"):
    store = get_store()
    names = table.raters(store)
    choices = (
        gr.update(choices=[""] + table.personas_rated(store)),
        gr.update(choices=[""] + names),
        gr.update(choices=names),
    )
    try:
        where = _filter(persona, rater, exclude, since, until)
        start = time.perf_counter()
        board = leaderboard.from_store(store, where, rounds=max(100, int(rounds)))
        seconds = time.perf_counter() - start
    except RpEvalError as err:
        return (warn(err), *[gr.skip()] * 11, *choices)
    together = combined(where, max(100, int(rounds)), weighting, shown)
    counts = table.count_rows(store)
    summary = t(
        "lb_summary",
        votes=int(board.arena["votes"].sum() // 2) if not board.arena.empty else 0,
        scores=int(board.likert.loc[board.likert["axis"] == "overall", "n"].sum()),
        rounds=board.rounds,
        seconds=f"{seconds:.1f}",
    )
    rates = (
        board.win_rates.rename_axis("model").reset_index()
        if not board.win_rates.empty
        else pd.DataFrame(columns=["model"])
    )
    return (
        summary,
        *together,
        headers(board.arena),
        plots.scores_figure(board.arena, say=t),
        headers(rates),
        plots.win_rate_figure(board.win_rates, board.counts, say=t),
        headers(words(board.likert, "axis", "plot_axis_")),
        plots.likert_figure(board.likert, say=t),
        headers(words(board.agreement_frame(), "what", "plot_axis_")),
        counts["votes"] + counts["scores"],
        *choices,
    )


def export(kind, fmt, persona, rater, exclude, since, until, rounds, request: gr.Request = None):
    user = getattr(request, "username", None)
    if kind == "raw" and user and not auth.is_admin(user):
        rater = user  # on a lab server a rater's raw export holds their own ratings only, whatever was asked
    try:
        where = _filter(persona, rater, exclude, since, until)
        store = get_store()
        folder = settings.home() / "exports" / datetime.now().strftime("%Y%m%d-%H%M%S")
        if kind == "raw":
            files = [
                write_frame(load_votes(store, where), folder / f"votes.{fmt}", fmt),
                write_frame(load_scores(store, where), folder / f"scores.{fmt}", fmt),
            ]
        else:
            board = leaderboard.from_store(store, where, rounds=max(100, int(rounds)))
            files = leaderboard.export(board, folder, fmt)
    except RpEvalError as err:
        return gr.skip(), warn(err)
    return [str(f) for f in files], t("lb_exported", n=len(files), folder=folder)


def poll(auto: bool, seen: int, *filters):
    """Refresh only when "refresh on new ratings" is on and the number of ratings changed since the last one."""
    counts = table.count_rows(get_store()) if auto else {}
    if not auto or counts["votes"] + counts["scores"] == seen:
        return (gr.skip(),) * 15
    return refresh(*filters)


def build() -> None:
    gr.Markdown(t("lb_intro"))
    with gr.Row():
        persona = gr.Dropdown([""], value="", label=t("lb_persona"), allow_custom_value=True)
        rater = gr.Dropdown([""], value="", label=t("lb_rater"), allow_custom_value=True)
        exclude = gr.Dropdown([], value=[], multiselect=True, label=t("lb_exclude"), allow_custom_value=True)
    with gr.Row():
        since = gr.Textbox(label=t("lb_since"), placeholder="2026-05-01")
        until = gr.Textbox(label=t("lb_until"), placeholder="2026-06-01")
        rounds = gr.Number(1000, minimum=100, maximum=10000, precision=0, label=t("lb_rounds"))
    with gr.Row():
        refresh_button = gr.Button(t("lb_refresh"), variant="primary", elem_id="lb-refresh")
        auto = gr.Checkbox(False, label=t("lb_auto"))
    summary = gr.Markdown(t("lb_not_yet"), elem_id="lb-summary")
    gr.Markdown(f"### {t('lb_combined')}")
    with gr.Row():
        weighting = gr.Radio(
            [(t("lb_weights_equal"), "equal"), (t("lb_weights_fit"), "fit")],
            value="equal",
            label=t("lb_weights"),
            elem_id="lb-weights",
        )
        shown = gr.Radio(
            [(t("lb_sources_all"), "all"), *((t(f"lb_source_{s}"), s) for s in sources.SOURCES)],
            value="all",
            label=t("lb_sources"),
            elem_id="lb-sources",
        )
    combined_summary = gr.Markdown(elem_id="lb-combined-summary")
    combined_table = gr.Dataframe(column_count=0, interactive=False, elem_id="lb-combined")
    combined_plot = gr.Plot(label=t("lb_combined_plot"), elem_id="lb-combined-plot")
    gr.Markdown(f"### {t('lb_arena')}")
    arena_table = gr.Dataframe(column_count=0, interactive=False, elem_id="lb-table")
    scores_plot = gr.Plot(label=t("lb_scores_plot"), elem_id="lb-scores-plot")
    gr.Markdown(f"### {t('lb_win_rates')}")
    rates_table = gr.Dataframe(column_count=0, interactive=False)
    rates_plot = gr.Plot(label=t("lb_win_rates"))
    gr.Markdown(f"### {t('lb_likert')}")
    likert_table = gr.Dataframe(column_count=0, interactive=False, elem_id="lb-likert")
    likert_plot = gr.Plot(label=t("lb_likert"))
    gr.Markdown(f"### {t('lb_agreement')}")
    agreement_table = gr.Dataframe(column_count=0, interactive=False)
    with gr.Accordion(t("lb_export"), open=False):
        with gr.Row():
            kind = gr.Radio([(t("lb_export_raw"), "raw"), (t("lb_export_aggregates"), "aggregates")], value="raw")
            fmt = gr.Radio(["csv", "jsonl"], value="csv", label=t("lb_format"))
            export_button = gr.Button(t("lb_export_button"), elem_id="lb-export")
        files = gr.File(file_count="multiple", label=t("lb_files"))
        export_status = gr.Markdown()
    seen = gr.State(-1)
    timer = gr.Timer(15, active=False)
    filters = [persona, rater, exclude, since, until, rounds, weighting, shown]
    outputs = [summary, combined_summary, combined_table, combined_plot]
    outputs += [arena_table, scores_plot, rates_table, rates_plot, likert_table, likert_plot, agreement_table]
    outputs += [seen, persona, rater, exclude]
    refresh_button.click(refresh, filters, outputs, api_name="leaderboard_refresh")
    tab = gr.context.Context.block  # the tab this is built in: filled when it is opened, no Refresh needed
    opened = tab.select if isinstance(tab, gr.Tab) else gr.context.Context.root_block.load
    opened(refresh, filters, outputs, show_progress="minimal")
    auto.change(lambda on: gr.Timer(active=on), auto, timer)
    timer.tick(poll, [auto, seen, *filters], outputs, show_progress="hidden")
    export_button.click(export, [kind, fmt, *filters[:6]], [files, export_status], api_name="leaderboard_export")
