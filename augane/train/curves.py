"""Loss curves of a run as one PNG, from its ``train_steps.csv`` and ``validation.csv``.

Top rows: the weighted total and every loss term per optimiser step (thin
line) with a moving average over ``window`` steps (thick line). Bottom rows:
validation metrics of GANE after each validation (dots and line) next to
DECA's own estimate on the same images (dashed line: it does not change
during training).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from augane.io.atomic import atomic_path
from augane.train.objective import TERM_NAMES

#: Validation metrics plotted, when present, in this order.
VALIDATION_PANELS = (
    "loss", "landmark_nme", "au_feature", "au_agreement", "expression_error", "vertex_error_mm",
)
_GANE, _DECA = "#1f77b4", "#d62728"


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` values (NaN-free input)."""
    if values.size == 0:
        return values
    window = max(1, min(window, values.size))
    cumulative = np.cumsum(np.insert(values.astype(np.float64), 0, 0.0))
    counts = np.minimum(np.arange(1, values.size + 1), window)
    starts = np.arange(values.size) + 1 - counts
    return (cumulative[np.arange(1, values.size + 1)] - cumulative[starts]) / counts


def write_loss_curves(steps_csv: Path, validation_csv: Path, out: Path, title: str = "", window: int = 0) -> Path:
    """Plot the run's tables into ``out`` (PNG, written atomically).

    Args:
        window: moving-average length in steps; 0 picks about a twentieth of the run.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = pd.read_csv(steps_csv) if Path(steps_csv).is_file() else pd.DataFrame()
    validation = pd.read_csv(validation_csv) if Path(validation_csv).is_file() else pd.DataFrame()
    train_panels = [name for name in ("loss", *TERM_NAMES) if name in steps and steps[name].notna().any()]
    val_panels = [
        name for name in VALIDATION_PANELS if not validation.empty and (validation["metric"] == name).any()
    ]
    columns = 4
    train_rows = max(1, math.ceil(len(train_panels) / columns))
    val_rows = math.ceil(len(val_panels) / columns)
    figure = Figure(figsize=(4.0 * columns, 3.0 * (train_rows + val_rows)), dpi=100)
    FigureCanvasAgg(figure)
    if not train_panels:
        axes = figure.add_subplot(train_rows + val_rows, 1, 1)
        axes.text(0.5, 0.5, "no training steps recorded yet", ha="center", va="center")
        axes.axis("off")
    window = window or max(1, len(steps) // 20)
    for index, name in enumerate(train_panels):
        axes = figure.add_subplot(train_rows + val_rows, columns, index + 1)
        rows = steps[["step", name]].dropna()
        values = rows[name].to_numpy(dtype=np.float64)
        axes.plot(rows["step"], values, color=_GANE, alpha=0.3, linewidth=0.8)
        axes.plot(rows["step"], moving_average(values, window), color=_GANE, linewidth=1.8)
        axes.set_title(f"train: {'total (weighted)' if name == 'loss' else name}", fontsize=9)
        axes.set_xlabel("step", fontsize=8)
        if np.all(values > 0) and values.max() / max(values.min(), 1e-12) > 20:
            axes.set_yscale("log")
        axes.tick_params(labelsize=7)
    for index, name in enumerate(val_panels):
        axes = figure.add_subplot(train_rows + val_rows, columns, train_rows * columns + index + 1)
        rows = validation[validation["metric"] == name]
        gane = rows[rows["method"] == "gane"].sort_values("step")
        deca = rows[rows["method"] == "deca"]
        axes.plot(gane["step"], gane["value"], "o-", color=_GANE, markersize=3, label="GANE")
        if not deca.empty:
            axes.axhline(float(deca["value"].iloc[-1]), color=_DECA, linestyle="--", label="DECA")
        axes.set_title(f"validation: {name}", fontsize=9)
        axes.set_xlabel("step", fontsize=8)
        axes.tick_params(labelsize=7)
        axes.legend(fontsize=7)
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    with atomic_path(out) as temporary:
        figure.savefig(temporary, format="png")
    return Path(out)
