"""Bar plots of the F1 tables: one group per subject or AU, methods side by side.

Figures are drawn on matplotlib's Agg canvas without pyplot (no global state,
no display needed) and written as PNG atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from augane.evaluate.metrics import AVERAGE_ROW
from augane.io.atomic import atomic_path

#: One colour per method (display names), shared by every figure.
METHOD_COLOURS: dict[str, str] = {"Input": "#7f7f7f", "AUGANE": "#d62728", "DECA": "#1f77b4", "EMOCA": "#2ca02c"}
_FALLBACK_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")


def method_colour(name: str, position: int) -> str:
    """Colour of a method by display name; unknown names cycle through a fallback palette."""
    return METHOD_COLOURS.get(name, _FALLBACK_COLOURS[position % len(_FALLBACK_COLOURS)])


def save_figure(figure: Figure, path: str | Path, dpi: int = 150) -> Path:
    """Write ``figure`` as a PNG to ``path`` atomically; returns the path."""
    FigureCanvasAgg(figure)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi, bbox_inches="tight")
    return Path(path)


def bar_plot(table: pd.DataFrame, path: str | Path, title: str, ylabel: str = "F1") -> Path:
    """Grouped bars: one group per row of ``table`` (subjects or AUs, ``Avg.`` last), one bar per column.

    Args:
        table: a paper-layout table (rows labelled, columns = method display names, values in [0, 1]
            or NaN, drawn as missing bars).
        path: PNG to write.
        title: figure title; the x label is the index name (``Subject``/``AU``).
    """
    if table.empty or table.shape[1] == 0:
        raise ValueError(f"nothing to plot for {title!r}: the table is empty")
    values = table.to_numpy(dtype=np.float64)
    groups, methods = values.shape
    width = 0.8 / methods
    centres = np.arange(groups)
    figure = Figure(figsize=(max(4.0, 0.55 * groups * max(1, methods) / 2 + 2.0), 3.2))
    axes = figure.add_subplot()
    for m, name in enumerate(table.columns):
        offsets = centres - 0.4 + width * (m + 0.5)
        axes.bar(offsets, np.nan_to_num(values[:, m]), width=width, label=str(name), color=method_colour(str(name), m))
    axes.set_xticks(centres, [str(label) for label in table.index])
    axes.set_xlabel(str(table.index.name or ""))
    axes.set_ylabel(ylabel)
    axes.set_ylim(0.0, 1.15)
    axes.set_yticks(np.linspace(0.0, 1.0, 6))
    axes.set_xlim(-0.6, groups - 0.4)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    if groups > 1 and str(table.index[-1]) == AVERAGE_ROW:
        axes.axvline(groups - 1.5, color="black", linewidth=0.6, linestyle=":")
    axes.set_title(title)
    axes.legend(ncol=methods, fontsize="small", loc="upper left", frameon=False)
    return save_figure(figure, path)
