"""Errors against ground truth, for the synthetic world where the true face is known.

* Vertex error: mean over vertices of the Euclidean distance between predicted
  and true vertices, in millimetres (model space is metres, as FLAME's). To
  measure *expression* only, build both meshes with the true identity (shape)
  and zero global rotation and translation, the predicted mesh from each
  method's expression and jaw pose; then differences come from expression alone.
  Optional alignment removes a translation or a rigid motion first (Kabsch,
  through :meth:`scipy.spatial.transform.Rotation.align_vectors`).
* Landmark NME: mean over landmarks of the Euclidean distance between predicted
  and true 2D landmarks, divided by a per-image normaliser: the true
  inter-ocular distance (outer eye corners) or the square root of the true
  landmarks' bounding-box area (the AFLW2000-3D convention).

Every function returns one value per sample, NaN where an input is NaN, so
frames without a face do not hide in an average.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from augane.errors import DataError
from augane.evaluate.predictions import KNOWN_METHODS
from augane.landmarks import MEDIAPIPE_105, MP_LEFT_EYE_OUTER, MP_RIGHT_EYE_OUTER

#: Positions of the outer eye corners within the 105 landmarks (subject's right, left).
OUTER_EYE_CORNERS_105: tuple[int, int] = (
    MEDIAPIPE_105.index(MP_RIGHT_EYE_OUTER),
    MEDIAPIPE_105.index(MP_LEFT_EYE_OUTER),
)

_ALIGNMENTS = ("none", "translation", "rigid")


def _batched(points: np.ndarray, name: str, dims: int) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 2:
        points = points[None]
    if points.ndim != 3 or points.shape[-1] != dims:
        raise DataError(f"{name} must have shape (N, P, {dims}) or (P, {dims}), got {points.shape}")
    return points


def _align(predicted: np.ndarray, target: np.ndarray, alignment: str) -> np.ndarray:
    """Move ``predicted`` (P, 3) onto ``target`` (P, 3) by the chosen alignment."""
    if alignment == "none":
        return predicted
    predicted_centre, target_centre = predicted.mean(axis=0), target.mean(axis=0)
    centred = predicted - predicted_centre
    if alignment == "rigid":
        rotation, _ = Rotation.align_vectors(target - target_centre, centred)
        centred = rotation.apply(centred)
    return centred + target_centre


def vertex_error_mm(
    predicted: np.ndarray,
    ground_truth: np.ndarray,
    alignment: str = "none",
    vertices: Sequence[int] | None = None,
    metres_per_unit: float = 1.0,
) -> np.ndarray:
    """Mean per-vertex Euclidean error in millimetres.

    Args:
        predicted: (N, V, 3) or (V, 3) vertices in model units.
        ground_truth: same shape, same vertex order.
        alignment: ``none``, ``translation`` (centroids matched) or ``rigid``
            (rotation + translation, least squares over the used vertices).
        vertices: optional subset of vertex indices (e.g. the face region).
        metres_per_unit: size of one model unit in metres (1 for FLAME).
    Returns:
        (N,) float64 errors in mm; NaN for a sample with any NaN coordinate.
    """
    if alignment not in _ALIGNMENTS:
        raise ValueError(f"alignment must be one of {_ALIGNMENTS}, got {alignment!r}")
    predicted, ground_truth = _batched(predicted, "predicted vertices", 3), _batched(
        ground_truth, "ground-truth vertices", 3
    )
    if predicted.shape != ground_truth.shape:
        raise DataError(f"predicted vertices {predicted.shape} and ground truth {ground_truth.shape} differ in shape")
    if vertices is not None:
        index = np.asarray(vertices, dtype=np.int64)
        predicted, ground_truth = predicted[:, index], ground_truth[:, index]
    errors = np.full(len(predicted), np.nan)
    for i, (mesh, target) in enumerate(zip(predicted, ground_truth)):
        if np.isnan(mesh).any() or np.isnan(target).any():
            continue
        moved = _align(mesh, target, alignment)
        errors[i] = np.linalg.norm(moved - target, axis=-1).mean() * metres_per_unit * 1000.0
    return errors


def landmark_normaliser(
    ground_truth: np.ndarray, normalisation: str = "interocular", eye_corners: tuple[int, int] | None = None
) -> np.ndarray:
    """Per-sample normaliser of the landmark error.

    Args:
        ground_truth: (N, L, 2) true landmarks.
        normalisation: ``interocular`` (distance between the two ``eye_corners``;
            defaults to the outer corners when L = 105) or ``bbox`` (sqrt of the
            width x height of the true landmarks' bounding box).
    Returns:
        (N,) float64.
    """
    if normalisation == "bbox":
        extent = np.nanmax(ground_truth, axis=1) - np.nanmin(ground_truth, axis=1)
        return np.sqrt(extent[:, 0] * extent[:, 1])
    if normalisation == "interocular":
        if eye_corners is None:
            if ground_truth.shape[1] != len(MEDIAPIPE_105):
                raise DataError(
                    f"interocular normalisation needs eye_corners for {ground_truth.shape[1]} landmarks "
                    f"(known by default only for the {len(MEDIAPIPE_105)}-point layout)"
                )
            eye_corners = OUTER_EYE_CORNERS_105
        right, left = eye_corners
        return np.linalg.norm(ground_truth[:, right] - ground_truth[:, left], axis=-1)
    raise ValueError(f"normalisation must be 'interocular' or 'bbox', got {normalisation!r}")


def landmark_nme(
    predicted: np.ndarray,
    ground_truth: np.ndarray,
    normalisation: str = "interocular",
    eye_corners: tuple[int, int] | None = None,
) -> np.ndarray:
    """Normalised mean landmark error per sample (unitless; x100 for percent).

    Args:
        predicted: (N, L, 2) or (L, 2) landmarks in pixels (or any unit shared with ``ground_truth``).
        ground_truth: same shape.
        normalisation, eye_corners: see :func:`landmark_normaliser`.
    Returns:
        (N,) float64; NaN where a landmark is NaN or the normaliser is 0.
    """
    predicted, ground_truth = _batched(predicted, "predicted landmarks", 2), _batched(
        ground_truth, "ground-truth landmarks", 2
    )
    if predicted.shape != ground_truth.shape:
        raise DataError(f"predicted landmarks {predicted.shape} and ground truth {ground_truth.shape} differ in shape")
    distances = np.linalg.norm(predicted - ground_truth, axis=-1).mean(axis=1)
    normaliser = landmark_normaliser(ground_truth, normalisation, eye_corners)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(normaliser > 0, distances / normaliser, np.nan)


def ground_truth_columns(table: pd.DataFrame, name: str) -> np.ndarray:
    """Gather the manifest's ``gt_<name>_<i>`` columns into an (N, D) array, i ascending.

    Raises:
        DataError: when no such column exists, or the indices are not 0..D-1.
    """
    prefix = f"gt_{name}_"
    found = {}
    for column in table.columns:
        suffix = str(column)[len(prefix) :]
        if str(column).startswith(prefix) and suffix.isdigit():
            found[int(suffix)] = column
    if not found:
        raise DataError(f"the table has no ground-truth columns {prefix}<i> (columns: {list(table.columns)[:12]} ...)")
    if sorted(found) != list(range(len(found))):
        raise DataError(f"ground-truth columns {prefix}<i> are not numbered 0..{len(found) - 1}: {sorted(found)}")
    return table[[found[i] for i in range(len(found))]].to_numpy(dtype=np.float64)


def validate_errors(errors: pd.DataFrame, source: str = "errors") -> pd.DataFrame:
    """Check a per-frame error table: a ``method`` column of known methods and at least one numeric error column.

    Raises:
        DataError: naming ``source`` and what was expected.
    """
    if "method" not in errors.columns:
        raise DataError(f"{source}: the error table lacks column 'method'; it has {list(errors.columns)}")
    unknown = sorted(set(errors["method"].astype(str)) - set(KNOWN_METHODS))
    if unknown:
        raise DataError(f"{source}: unknown method(s) {unknown}; expected some of {list(KNOWN_METHODS)}")
    if not _error_columns(errors):
        raise DataError(f"{source}: the error table holds no numeric error column (e.g. vertex_error_mm, landmark_nme)")
    return errors


def _error_columns(errors: pd.DataFrame) -> list[str]:
    return [
        c
        for c in errors.columns
        if c not in ("frame", "subject", "method", "sample_id") and pd.api.types.is_numeric_dtype(errors[c])
    ]


def summarise_errors(errors: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean, median and frame count of per-frame errors for each method.

    Args:
        errors: tidy table with ``method`` and one column per error metric
            (e.g. ``vertex_error_mm``, ``landmark_nme``), one row per frame.
        metrics: columns to summarise (default: every numeric column but ``frame``).
    Returns:
        rows = methods; columns ``<metric> mean``, ``<metric> median``, and ``frames``
        (frames with a value for every metric).
    """
    errors = validate_errors(errors)
    metrics = list(metrics) if metrics is not None else _error_columns(errors)
    grouped = errors.groupby("method", sort=False)
    summary = pd.DataFrame(index=pd.Index(list(grouped.groups), name="method"))
    for metric in metrics:
        summary[f"{metric} mean"] = grouped[metric].mean()
        summary[f"{metric} median"] = grouped[metric].median()
    complete = errors[list(metrics)].notna().all(axis=1)
    summary["frames"] = complete.groupby(errors["method"], sort=False).sum().astype(np.int64)
    return summary
