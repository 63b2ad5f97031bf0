"""AU-consistency F1 (the paper's Tables 2-3) and F1 against DISFA's labels, with scikit-learn.

Definitions (n frames of the selected subjects after the frame stride; A the
evaluated AUs; tau = ``resources.au_detector.threshold``):

* reference r[f, a] = 1 if the detector's probability on input frame f is >= tau;
  prediction y_m[f, a] = 1 if its probability on method m's render of f is >= tau.
  A frame is evaluated only when the input and every method have an output for
  every evaluated AU (the others are counted as dropped and reported).
* F1(r, y) = ``sklearn.metrics.f1_score(r, y, zero_division=z)`` = 2TP / (2TP + FP + FN),
  and z when TP + FP + FN = 0 (neither reference nor prediction ever shows the AU).
  z is ``evaluate.disfa.zero_division``: 0 (default, what scikit-learn returns
  by default), 1, or NaN (the cell is left out of every mean).
* Per-subject F1 (Table 2): F1_m(s) = mean over a in A of F1(r[F_s, a], y_m[F_s, a]),
  F_s the evaluated frames of subject s, i.e. the macro F1 over AUs within one video.
* Per-AU F1 (Table 3): F1_m(a) = F1(r[F, a], y_m[F, a]) on the frames F of all
  selected subjects pooled.
* ``Avg.`` row: the mean of the rows above it (NaN cells left out), from
  unrounded values. Table 2's average is thus the mean over (subject, AU) cells;
  Table 3's is the macro F1 over AUs on pooled frames; the two differ in general.
  (The paper prints 0.39 / 0.18 / 0.30 under both tables, although its Table 3
  column means are 0.36 / 0.17 / 0.28.)
* Label F1: as above with r replaced by the DISFA label l[f, a] = 1 if the
  annotated intensity is >= ``evaluate.disfa.label_threshold``; frames whose
  label is -1 (not annotated) or absent are left out for that AU; the input
  frames themselves are scored too (column ``input``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from augane.errors import ConfigError, DataError
from augane.evaluate.predictions import (
    REFERENCE_METHOD,
    decisions,
    label_column,
    pred_column,
    prob_column,
)
from augane.evaluate.subjects import sorted_subjects

#: Label of the average row in every table.
AVERAGE_ROW = "Avg."


def zero_division_value(setting: int | float | str) -> float:
    """scikit-learn's ``zero_division`` from the config value (0, 1 or ``"nan"``)."""
    if isinstance(setting, str):
        if setting.strip().lower() == "nan":
            return float("nan")
        raise ConfigError(f"evaluate.disfa.zero_division must be 0, 1 or 'nan', got {setting!r}")
    if setting in (0, 1):
        return float(setting)
    raise ConfigError(f"evaluate.disfa.zero_division must be 0, 1 or 'nan', got {setting!r}")


def binary_f1(truth: np.ndarray, predicted: np.ndarray, zero_division: float) -> float:
    """F1 of the positive class (1) with scikit-learn; NaN when there are no frames.

    Args:
        truth, predicted: (n,) arrays of 0/1.
        zero_division: value returned when TP + FP + FN = 0.
    """
    if len(truth) == 0:
        return float("nan")
    return float(
        f1_score(
            np.asarray(truth, dtype=np.int8),
            np.asarray(predicted, dtype=np.int8),
            labels=[0, 1],
            pos_label=1,
            average="binary",
            zero_division=zero_division,
        )
    )


def f1_grid(
    truth: np.ndarray,
    predicted: np.ndarray,
    groups: np.ndarray | None,
    zero_division: float,
) -> tuple[list, np.ndarray]:
    """F1 per group and AU.

    Args:
        truth: (n, A) int, 1/0, or -1 where the truth is unknown (frame left out for that AU).
        predicted: (n, A) int 0/1.
        groups: (n,) group of each frame (e.g. subject), or None for one pooled group.
        zero_division: see :func:`binary_f1`.
    Returns:
        group names (table order) and a (G, A) float array.
    """
    if truth.shape != predicted.shape:
        raise ValueError(f"truth {truth.shape} and predictions {predicted.shape} differ in shape")
    if groups is None:
        names, members = [None], [np.ones(len(truth), dtype=bool)]
    else:
        names = sorted_subjects(set(groups.tolist()))
        members = [groups == name for name in names]
    scores = np.full((len(names), truth.shape[1]), np.nan)
    for g, rows in enumerate(members):
        for a in range(truth.shape[1]):
            known = rows & (truth[:, a] >= 0)
            scores[g, a] = binary_f1(truth[known, a], predicted[known, a], zero_division)
    return names, scores


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def with_average(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with an ``Avg.`` row: the mean of each column over the rows, NaN left out."""
    average = pd.DataFrame(
        [_nanmean(table.to_numpy(dtype=np.float64), axis=0)], columns=table.columns, index=[AVERAGE_ROW]
    )
    return pd.concat([table.astype(np.float64), average])


@dataclass(frozen=True)
class AlignedDetections:
    """Binary detections of the reference and of each method on the same evaluated frames.

    Attributes:
        subjects: (n,) subject of each frame.
        frames: (n,) frame number of each frame.
        aus: the A AUs, column order of the matrices.
        reference: (n, A) int8 0/1, the detector on the input frames.
        methods: method -> (n, A) int8 0/1, the detector on that method's renders.
        dropped: method (and ``input``) -> number of selected frames left out
            because it had no output there.
    """

    subjects: np.ndarray
    frames: np.ndarray
    aus: tuple[int, ...]
    reference: np.ndarray
    methods: dict[str, np.ndarray]
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def method_names(self) -> tuple[str, ...]:
        """The reconstruction methods, in column order."""
        return tuple(self.methods)


def evaluable_aus(
    predictions: pd.DataFrame, aus: Sequence[int], methods: Sequence[str]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Split ``aus`` into those the detector scored for the input and every method, and the rest.

    An AU is evaluable when, for ``input`` and each method, its ``prob_AU<k>``
    (or ``pred_AU<k>``) column exists and holds at least one value.
    """
    present, missing = [], []
    for au in aus:
        ok = True
        for method in (REFERENCE_METHOD, *methods):
            rows = predictions[predictions["method"] == method]
            column = prob_column(au) if prob_column(au) in rows.columns else pred_column(au)
            if column not in rows.columns or rows[column].notna().sum() == 0:
                ok = False
        (present if ok else missing).append(au)
    return tuple(present), tuple(missing)


def align_detections(
    predictions: pd.DataFrame,
    frames: pd.DataFrame,
    aus: Sequence[int],
    threshold: float,
    methods: Sequence[str],
) -> AlignedDetections:
    """Binarise and align the reference and each method on the selected frames.

    Args:
        predictions: a validated predictions table.
        frames: ``subject, frame`` pairs to evaluate (``VideoSelection.frames``).
        aus: AUs to evaluate (see :func:`evaluable_aus`).
        threshold: detector threshold tau.
        methods: reconstruction methods to align next to ``input``.

    Raises:
        DataError: a method has no prediction for a selected subject, or no frame is left.
    """
    if frames.empty:
        raise DataError("no frame is selected for evaluation (empty selection)")
    if not aus:
        raise DataError("no AU to evaluate: the detector emits none of the evaluated AUs for every method")
    keys = frames[["subject", "frame"]].reset_index(drop=True)
    columns = [label_column(au) for au in aus]
    valid = np.ones(len(keys), dtype=bool)
    matrices: dict[str, np.ndarray] = {}
    dropped: dict[str, int] = {}
    for method in (REFERENCE_METHOD, *methods):
        rows = predictions[predictions["method"] == method]
        for subject in keys["subject"].unique():
            if not (rows["subject"] == subject).any():
                raise DataError(
                    f"the predictions hold no '{method}' rows for selected subject {subject}; "
                    "every method must cover every selected subject"
                )
        detected = keys.merge(decisions(rows, aus, threshold), on=["subject", "frame"], how="left")
        values = detected[columns].to_numpy(dtype=np.float64)
        has_output = ~np.isnan(values).any(axis=1)
        dropped[method] = int((~has_output).sum())
        valid &= has_output
        matrices[method] = np.nan_to_num(values).astype(np.int8)
    if not valid.any():
        raise DataError("no selected frame has an output from the input detector and every method")
    return AlignedDetections(
        subjects=keys["subject"].to_numpy(dtype=object)[valid],
        frames=keys["frame"].to_numpy(dtype=np.int64)[valid],
        aus=tuple(aus),
        reference=matrices[REFERENCE_METHOD][valid],
        methods={method: matrices[method][valid] for method in methods},
        dropped=dropped,
    )


def f1_per_subject(aligned: AlignedDetections, zero_division: float = 0.0) -> pd.DataFrame:
    """Table 2: rows = subjects (table order), columns = methods; mean over AUs of per-AU F1 within the subject."""
    columns = {}
    names: list = []
    for method, predicted in aligned.methods.items():
        names, grid = f1_grid(aligned.reference, predicted, aligned.subjects, zero_division)
        columns[method] = _nanmean(grid, axis=1)
    table = pd.DataFrame(columns, index=pd.Index(names, name="subject"))
    return table


def f1_per_au(aligned: AlignedDetections, zero_division: float = 0.0) -> pd.DataFrame:
    """Table 3: rows = AUs, columns = methods; per-AU F1 on the pooled frames of all selected subjects."""
    columns = {}
    for method, predicted in aligned.methods.items():
        _, grid = f1_grid(aligned.reference, predicted, None, zero_division)
        columns[method] = grid[0]
    return pd.DataFrame(columns, index=pd.Index(list(aligned.aus), name="au"))


def f1_cells(aligned: AlignedDetections, zero_division: float = 0.0) -> pd.DataFrame:
    """Every (subject, AU, method) F1 of Table 2 before averaging over AUs, tidy."""
    parts = []
    for method, predicted in aligned.methods.items():
        names, grid = f1_grid(aligned.reference, predicted, aligned.subjects, zero_division)
        part = pd.DataFrame(grid, index=pd.Index(names, name="subject"), columns=list(aligned.aus))
        part = part.reset_index().melt(id_vars="subject", var_name="au", value_name="f1")
        part.insert(0, "method", method)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def support_per_au(aligned: AlignedDetections) -> pd.DataFrame:
    """Frames on which each AU is detected: on the inputs (the reference's positives) and on each method's renders.

    Returns:
        rows = AUs, columns = ``input`` then methods, integer counts; plus column ``frames``.
    """
    table = pd.DataFrame(
        {
            REFERENCE_METHOD: aligned.reference.sum(axis=0),
            **{method: predicted.sum(axis=0) for method, predicted in aligned.methods.items()},
        },
        index=pd.Index(list(aligned.aus), name="au"),
    ).astype(np.int64)
    table["frames"] = len(aligned.frames)
    return table


def frames_per_subject(aligned: AlignedDetections) -> pd.Series:
    """Number of evaluated frames per subject (table order)."""
    counts = pd.Series(aligned.subjects).value_counts()
    return counts.reindex(sorted_subjects(counts.index)).rename("frames")


def zero_support_cells(aligned: AlignedDetections) -> pd.DataFrame:
    """(subject, AU, method) cells where neither reference nor method detects the AU on any frame.

    Their F1 is the ``zero_division`` value; the report lists how many there are.
    """
    rows = []
    subjects = sorted_subjects(set(aligned.subjects.tolist()))
    for method, predicted in aligned.methods.items():
        for subject in subjects:
            mask = aligned.subjects == subject
            for a, au in enumerate(aligned.aus):
                if aligned.reference[mask, a].sum() == 0 and predicted[mask, a].sum() == 0:
                    rows.append((method, subject, au))
    return pd.DataFrame(rows, columns=["method", "subject", "au"])


def label_matrix(labels: pd.DataFrame, aligned: AlignedDetections, label_threshold: int) -> np.ndarray:
    """DISFA labels on the aligned frames: 1 if intensity >= ``label_threshold``, 0 below, -1 unknown.

    Args:
        labels: a validated labels table with ``AU<k>`` for the AUs of ``aligned``
            (a missing column makes that AU unknown everywhere).
    Returns:
        (n, A) int8.
    """
    keys = pd.DataFrame({"subject": aligned.subjects, "frame": aligned.frames})
    columns = [label_column(au) for au in aligned.aus if label_column(au) in labels.columns]
    joined = keys.merge(labels[["subject", "frame", *columns]], on=["subject", "frame"], how="left")
    matrix = np.full((len(keys), len(aligned.aus)), -1, dtype=np.int8)
    for a, au in enumerate(aligned.aus):
        if label_column(au) not in labels.columns:
            continue
        intensity = joined[label_column(au)].to_numpy(dtype=np.float64)
        known = ~np.isnan(intensity) & (intensity >= 0)
        matrix[known, a] = (intensity[known] >= label_threshold).astype(np.int8)
    return matrix


@dataclass(frozen=True)
class LabelF1:
    """F1 of the detector against DISFA's labels, on the inputs and on each method's renders.

    Attributes:
        per_au: rows = AUs, columns = ``input`` then methods (pooled frames).
        per_subject: rows = subjects, columns likewise (mean over AUs).
        positives: rows = AUs; ``labelled`` frames with a known label and ``positive`` ones.
    """

    per_au: pd.DataFrame
    per_subject: pd.DataFrame
    positives: pd.DataFrame


def label_f1(
    aligned: AlignedDetections, labels: pd.DataFrame, label_threshold: int, zero_division: float = 0.0
) -> LabelF1:
    """Score the detector on inputs and renders against the dataset's labels (see module docstring)."""
    if not 1 <= label_threshold <= 5:
        raise ConfigError(f"evaluate.disfa.label_threshold must lie in 1..5, got {label_threshold}")
    truth = label_matrix(labels, aligned, label_threshold)
    outputs: Mapping[str, np.ndarray] = {REFERENCE_METHOD: aligned.reference, **aligned.methods}
    per_au, per_subject = {}, {}
    names: list = []
    for method, predicted in outputs.items():
        _, pooled = f1_grid(truth, predicted, None, zero_division)
        per_au[method] = pooled[0]
        names, grid = f1_grid(truth, predicted, aligned.subjects, zero_division)
        per_subject[method] = _nanmean(grid, axis=1)
    index = pd.Index(list(aligned.aus), name="au")
    positives = pd.DataFrame(
        {"labelled": (truth >= 0).sum(axis=0), "positive": (truth == 1).sum(axis=0)}, index=index
    ).astype(np.int64)
    return LabelF1(
        per_au=pd.DataFrame(per_au, index=index),
        per_subject=pd.DataFrame(per_subject, index=pd.Index(names, name="subject")),
        positives=positives,
    )
