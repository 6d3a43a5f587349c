"""Leaderboard figures with matplotlib (Gradio's native plots draw no error bars): scores with their 95%
intervals, the win-rate heatmap, and Likert means per axis with intervals. Each returns a Figure (None when
there is nothing to draw), which `gr.Plot` shows and `fig.savefig` writes. Their words come from `say(key,
**values)`: English by default (rp_eval.errors.MESSAGES, "plot_..."), the page's language when the UI passes its own.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display on a server

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from rp_eval import plotfonts  # noqa: E402
from rp_eval.errors import english  # noqa: E402
from rp_eval.ratings.records import AXES  # noqa: E402


def scores_figure(arena: pd.DataFrame, say=english) -> Figure | None:
    if arena.empty:
        return None
    frame = arena.iloc[::-1]  # best at the top
    with plt.rc_context(plotfonts.rc()):
        return _scores(frame, say)


def _scores(frame: pd.DataFrame, say) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(frame)), layout="constrained")
    y = np.arange(len(frame))
    err = np.vstack([frame["score"] - frame["lower"], frame["upper"] - frame["score"]])
    ax.errorbar(frame["score"], y, xerr=np.nan_to_num(err), fmt="o", color="tab:blue", ecolor="gray", capsize=4)
    ax.set_yticks(
        y, [say("plot_model_votes", model=r, votes=v) for r, v in zip(frame["model"], frame["votes"], strict=True)]
    )
    ax.axvline(1000, color="lightgray", lw=1, zorder=0)
    ax.set_xlabel(say("plot_bt_axis"))
    plt.close(fig)
    return fig


def win_rate_figure(rates: pd.DataFrame, counts: pd.DataFrame, say=english) -> Figure | None:
    if rates.empty:
        return None
    with plt.rc_context(plotfonts.rc()):
        return _win_rates(rates, counts, say)


def _win_rates(rates: pd.DataFrame, counts: pd.DataFrame, say) -> Figure:
    n = len(rates)
    fig, ax = plt.subplots(figsize=(2.5 + 0.9 * n, 1.2 + 0.7 * n), layout="constrained")
    image = ax.imshow(rates.to_numpy(dtype=float), cmap="RdBu", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            value = rates.iat[i, j]
            if not np.isnan(value):
                color = "white" if abs(value - 0.5) > 0.3 else "black"
                ax.text(j, i, f"{value:.2f}\n({counts.iat[i, j]})", ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(n), rates.columns, rotation=30, ha="right")
    ax.set_yticks(range(n), rates.index)
    ax.set_xlabel(say("plot_opponent"))
    ax.set_ylabel(say("plot_model"))
    fig.colorbar(image, ax=ax, label=say("plot_win_rate"))
    plt.close(fig)
    return fig


def likert_figure(likert: pd.DataFrame, say=english) -> Figure | None:
    if likert.empty:
        return None
    with plt.rc_context(plotfonts.rc()):
        return _likert(likert, say)


def _likert(likert: pd.DataFrame, say) -> Figure:
    models = sorted(likert["model"].unique())
    axes = [a.name for a in AXES]
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
    x = np.arange(len(axes))
    for k, model in enumerate(models):
        rows = likert[likert["model"] == model].set_index("axis").reindex(axes)
        err = np.vstack([rows["mean"] - rows["lower"], rows["upper"] - rows["mean"]])
        ax.bar(x + k * width - 0.4 + width / 2, rows["mean"], width, yerr=np.nan_to_num(err), capsize=3, label=model)
    ax.set_xticks(x, [say(f"plot_axis_{a.name}") for a in AXES])
    ax.set_ylim(0, 5.2)
    ax.set_ylabel(say("plot_likert_axis"))
    ax.legend(fontsize=8, loc="lower right")
    plt.close(fig)
    return fig
