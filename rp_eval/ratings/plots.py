"""Leaderboard figures with matplotlib (Gradio's native plots draw no error bars): scores with their 95%
intervals, the win-rate heatmap, and Likert means per axis with intervals. Each returns a Figure (None when
there is nothing to draw), which `gr.Plot` shows and `fig.savefig` writes.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display on a server

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from rp_eval.ratings.records import AXES  # noqa: E402


def scores_figure(arena: pd.DataFrame) -> Figure | None:
    if arena.empty:
        return None
    frame = arena.iloc[::-1]  # best at the top
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(frame)), layout="constrained")
    y = np.arange(len(frame))
    err = np.vstack([frame["score"] - frame["lower"], frame["upper"] - frame["score"]])
    ax.errorbar(frame["score"], y, xerr=np.nan_to_num(err), fmt="o", color="tab:blue", ecolor="gray", capsize=4)
    ax.set_yticks(y, [f"{r} ({v} votes)" for r, v in zip(frame["model"], frame["votes"], strict=True)])
    ax.axvline(1000, color="lightgray", lw=1, zorder=0)
    ax.set_xlabel("Bradley-Terry score (Elo scale) with 95% bootstrap interval")
    plt.close(fig)
    return fig


def win_rate_figure(rates: pd.DataFrame, counts: pd.DataFrame) -> Figure | None:
    if rates.empty:
        return None
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
    ax.set_xlabel("opponent")
    ax.set_ylabel("model")
    fig.colorbar(image, ax=ax, label="win rate of the row model\n(ties half; votes in brackets)")
    plt.close(fig)
    return fig


def likert_figure(likert: pd.DataFrame) -> Figure | None:
    if likert.empty:
        return None
    models = sorted(likert["model"].unique())
    axes = [a.name for a in AXES]
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
    x = np.arange(len(axes))
    for k, model in enumerate(models):
        rows = likert[likert["model"] == model].set_index("axis").reindex(axes)
        err = np.vstack([rows["mean"] - rows["lower"], rows["upper"] - rows["mean"]])
        ax.bar(x + k * width - 0.4 + width / 2, rows["mean"], width, yerr=np.nan_to_num(err), capsize=3, label=model)
    ax.set_xticks(x, [a.title for a in AXES])
    ax.set_ylim(0, 5.2)
    ax.set_ylabel("mean score (1-5) with 95% interval")
    ax.legend(fontsize=8, loc="lower right")
    plt.close(fig)
    return fig
