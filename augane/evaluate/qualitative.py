"""Qualitative grids like the paper's Figures 2-3, and the choice of frames they show.

Rows are the input and each method's render (paper order: input, DECA, EMOCA,
AUGANE); columns are chosen frames. Two ways to choose the frames:

* ``disagreement``: frames where the detector's decisions differ most. A
  frame's score is the number of evaluated AUs on which the input and the
  methods' renders do not all agree. Subjects take turns (the subject with the
  highest-scoring frame first) so the grid spans several videos; within a
  subject, frames are taken by score (ties: more AUs active on the input,
  then earlier frame) and at least ``min_separation`` frame numbers apart.
* ``even``: frames evenly spaced within each selected subject, the count
  shared round-robin over subjects in table order.

Images for the command line live under ``<images>/<method>/<subject>/<frame:06d>.png``
(method ``input`` for the input crops).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from augane.errors import DataError
from augane.evaluate.metrics import AlignedDetections
from augane.evaluate.plots import save_figure
from augane.evaluate.predictions import REFERENCE_METHOD, display_name
from augane.evaluate.subjects import sorted_subjects, subject_label, subject_sort_key

#: Row order of the paper's Figures 2-3.
FIGURE_ROWS: tuple[str, ...] = ("input", "deca", "emoca", "augane")
STRATEGIES: tuple[str, ...] = ("disagreement", "even")


def disagreement_scores(aligned: AlignedDetections) -> np.ndarray:
    """(n,) number of AUs on which the input and the methods' renders do not all agree."""
    stacked = np.stack([aligned.reference, *aligned.methods.values()])
    return (stacked.min(axis=0) != stacked.max(axis=0)).sum(axis=1)


def _choose_by_disagreement(aligned: AlignedDetections, count: int, min_separation: int) -> list[int]:
    scores = disagreement_scores(aligned)
    active = aligned.reference.sum(axis=1)
    queues: dict[str, list[int]] = {}
    for subject in sorted_subjects(set(aligned.subjects.tolist())):
        rows = np.flatnonzero(aligned.subjects == subject)
        order = sorted(rows, key=lambda i: (-scores[i], -active[i], aligned.frames[i]))
        queues[subject] = order
    turn = sorted(queues, key=lambda s: (-scores[queues[s][0]], subject_sort_key(s)))
    chosen: list[int] = []
    taken: dict[str, list[int]] = {s: [] for s in queues}
    while len(chosen) < count and any(queues.values()):
        for subject in turn:
            if len(chosen) == count:
                break
            queue = queues[subject]
            while queue:
                candidate = queue.pop(0)
                frame = aligned.frames[candidate]
                if all(abs(frame - other) >= min_separation for other in taken[subject]):
                    chosen.append(candidate)
                    taken[subject].append(frame)
                    break
    return chosen


def _choose_evenly(aligned: AlignedDetections, count: int) -> list[int]:
    subjects = sorted_subjects(set(aligned.subjects.tolist()))
    share = [count // len(subjects) + (1 if i < count % len(subjects) else 0) for i in range(len(subjects))]
    chosen: list[int] = []
    for subject, wanted in zip(subjects, share):
        rows = np.flatnonzero(aligned.subjects == subject)
        rows = rows[np.argsort(aligned.frames[rows], kind="stable")]
        wanted = min(wanted, len(rows))
        positions = ((np.arange(wanted) + 0.5) * len(rows) / max(wanted, 1)).astype(np.int64)
        chosen.extend(rows[positions].tolist())
    return chosen


def choose_frames(
    aligned: AlignedDetections, count: int, strategy: str = "disagreement", min_separation: int = 20
) -> pd.DataFrame:
    """Pick the frames a qualitative grid shows.

    Args:
        aligned: detections of the evaluated frames.
        count: number of frames (``evaluate.disfa.qualitative_frames``); 0 gives none.
        strategy: ``disagreement`` or ``even`` (see module docstring).
        min_separation: ``disagreement`` only; least distance in frame numbers
            between two frames of one subject (20 = 1 s of DISFA video).
    Returns:
        ``subject, frame, score`` (score = disagreement), in table order.
    """
    if strategy not in STRATEGIES:
        raise DataError(f"evaluate.disfa.qualitative_strategy must be one of {list(STRATEGIES)}, got {strategy!r}")
    if count < 0:
        raise DataError(f"evaluate.disfa.qualitative_frames must be >= 0, got {count}")
    if count == 0 or len(aligned.frames) == 0:
        return pd.DataFrame({"subject": [], "frame": [], "score": []}).astype({"frame": np.int64, "score": np.int64})
    rows = (
        _choose_by_disagreement(aligned, count, min_separation)
        if strategy == "disagreement"
        else _choose_evenly(aligned, count)
    )
    scores = disagreement_scores(aligned)
    chosen = pd.DataFrame(
        {
            "subject": aligned.subjects[rows].astype(str),
            "frame": aligned.frames[rows].astype(np.int64),
            "score": scores[rows].astype(np.int64),
        }
    )
    order = sorted(
        range(len(chosen)), key=lambda i: (subject_sort_key(chosen.loc[i, "subject"]), chosen.loc[i, "frame"])
    )
    return chosen.iloc[order].reset_index(drop=True)


def image_path(images_dir: str | Path, method: str, subject: str, frame: int) -> Path:
    """Where the command line looks for the image of one frame: ``<dir>/<method>/<subject>/<frame:06d>.png``."""
    return Path(images_dir) / method / str(subject) / f"{int(frame):06d}.png"


def load_grid_images(
    images_dir: str | Path, chosen: pd.DataFrame, methods: Sequence[str]
) -> tuple[dict[str, list[np.ndarray | None]], list[Path]]:
    """Read the images of the chosen frames for ``input`` and each method.

    Returns:
        method -> one image (H, W, 3) float in [0, 1] or None per chosen frame, and the missing paths.
    """
    import matplotlib.image

    images: dict[str, list[np.ndarray | None]] = {}
    missing: list[Path] = []
    for method in (REFERENCE_METHOD, *methods):
        images[method] = []
        for subject, frame in zip(chosen["subject"], chosen["frame"]):
            path = image_path(images_dir, method, subject, frame)
            if not path.is_file():
                missing.append(path)
                images[method].append(None)
                continue
            try:
                images[method].append(np.asarray(matplotlib.image.imread(path)))
            except (OSError, ValueError, SyntaxError) as err:
                raise DataError(f"image {path} cannot be read as a PNG: {err}") from err
    return images, missing


def _as_rgb(image: np.ndarray, where: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise DataError(f"{where}: expected an image of shape (H, W, 3), (H, W, 4) or (H, W), got {image.shape}")
    image = image[..., :3]
    if np.issubdtype(image.dtype, np.integer):
        return image.astype(np.float64) / 255.0
    return np.clip(image.astype(np.float64), 0.0, 1.0)


def qualitative_grid(
    images: Mapping[str, Sequence[np.ndarray | None]],
    column_titles: Sequence[str],
    path: str | Path,
    rows: Sequence[str] = FIGURE_ROWS,
    cell_inches: float = 1.6,
) -> Path:
    """Draw the grid: one row per method present in ``images`` (in ``rows`` order), one column per frame.

    Args:
        images: method key -> one image per column ((H, W, 3) uint8 or float in [0, 1];
            None draws a grey "missing" cell).
        column_titles: one title per column (e.g. ``03 · 1520``).
        path: PNG to write.
    """
    shown = [method for method in rows if method in images] + [m for m in images if m not in rows]
    if not shown or not column_titles:
        raise DataError("a qualitative grid needs at least one row of images and one column")
    for method in shown:
        if len(images[method]) != len(column_titles):
            raise DataError(
                f"qualitative grid: row {method!r} has {len(images[method])} images for {len(column_titles)} columns"
            )
    figure = Figure(figsize=(cell_inches * len(column_titles) + 0.8, cell_inches * len(shown) + 0.4))
    grid = figure.subplots(len(shown), len(column_titles), squeeze=False)
    for r, method in enumerate(shown):
        for c, title in enumerate(column_titles):
            axes = grid[r, c]
            image = images[method][c]
            if image is None:
                axes.set_facecolor("#d9d9d9")
                axes.text(0.5, 0.5, "missing", ha="center", va="center", transform=axes.transAxes, fontsize="small")
            else:
                axes.imshow(_as_rgb(image, f"{method}, column {c}"), interpolation="bilinear")
            axes.set_xticks([])
            axes.set_yticks([])
            for spine in axes.spines.values():
                spine.set_visible(False)
            if r == 0:
                axes.set_title(title, fontsize="small")
            if c == 0:
                axes.set_ylabel(display_name(method), fontsize="medium")
    figure.subplots_adjust(wspace=0.04, hspace=0.04)
    return save_figure(figure, path)


def column_titles(chosen: pd.DataFrame) -> list[str]:
    """Column titles ``03 · 1520`` (subject as in the tables, frame number)."""
    return [f"{subject_label(s)} · {int(f)}" for s, f in zip(chosen["subject"], chosen["frame"])]
