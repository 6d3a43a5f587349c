"""The evaluation's metric chart: a model × metric heat map (matplotlib; `gr.Plot` shows it, `savefig` writes it).

Every directed metric is turned so that 1 is the good end (no leaks = 1), so one colour scale reads the whole
table; `group` keeps one metric group (ending, length, leakage, japanese, character) for a closer look.
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
from rp_eval.evaluate.metrics import METRICS  # noqa: E402

GROUPS: list[str] = list(dict.fromkeys(m.group for m in METRICS if m.good is not None))


def heatmap_frame(table: pd.DataFrame, group: str = "all") -> pd.DataFrame:
    """Models as rows, metrics as columns (the combined score first), each turned so that 1 is the good end."""
    chosen = [m for m in METRICS if m.good is not None and m.name in table and group in ("all", m.group)]
    if table.empty or "model" not in table:
        return pd.DataFrame()
    frame = pd.DataFrame(index=table["model"].astype(str))
    if group == "all" and "combined" in table:
        frame["combined"] = table["combined"].to_numpy(dtype=float)
    for m in chosen:
        values = table[m.name].to_numpy(dtype=float)
        frame[m.name] = 1 - values if m.good == "low" else values
    return frame


def _label(say, metric: str) -> str:
    """A metric's name as the page words it (the Japanese page has words for them; else the identifier)."""
    try:
        return say(f"col_{metric}")
    except KeyError:
        return metric


def metric_heatmap(table: pd.DataFrame, group: str = "all", colorbar: str = "", say=english) -> Figure | None:
    """The heat map of `heatmap_frame`, each cell written with its value; None when there is nothing to draw.
    `say(key, **values)` words the labels (default English; the UI passes its own, in the page's language);
    metric names are the identifiers the weights file and the CSV use, or the page's words for them."""
    frame = heatmap_frame(table, group)
    if frame.empty or frame.shape[1] == 0:
        return None
    rows, cols = frame.shape
    columns = [say("plot_combined") if c == "combined" else _label(say, c) for c in frame.columns]
    with plt.rc_context(plotfonts.rc()):
        height = 1.7 + 0.5 * rows
        fig, ax = plt.subplots(figsize=(2.2 + 0.62 * cols, height), layout="constrained")
        fig.get_layout_engine().set(rect=(0, 0, 1, 1 - 0.4 / height))  # the top 0.4 in: under the page's plot label
        image = ax.imshow(frame.to_numpy(), cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
        for i in range(rows):
            for j in range(cols):
                value = frame.iat[i, j]
                if not np.isnan(value):
                    color = "white" if value < 0.2 or value > 0.85 else "black"
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8, color=color)
        ax.set_xticks(range(cols), columns, rotation=40, ha="right", fontsize=9)
        ax.set_yticks(range(rows), frame.index, fontsize=9)
        fig.colorbar(image, ax=ax, label=colorbar, fraction=0.04)
    plt.close(fig)
    return fig
