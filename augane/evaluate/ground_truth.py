"""Per-frame errors against the synthetic world's ground truth (DISFA-layout videos of the demo world).

The demo world writes, beside its DISFA-layout videos, one table per subject
``<root>/GroundTruth/<subject>.parquet`` (:mod:`augane.demo.world_disfa`):
``subject``, ``frame`` (0-based), the true parameters as ``gt_<name>_<i>``
(DECA's layout; ``cam`` for the whole frame) and ``gt_landmarks_<i>``, the
105 landmarks projected into the frame in pixels. Real DISFA has no such
folder. For each reconstructed frame this module computes:

* ``vertex_error_mm``: expression-only mean per-vertex error
  (:func:`augane.evaluate.geometry.vertex_error_mm`): both meshes use the
  true identity and no global rotation; the predicted mesh takes the
  method's expression and jaw pose, the true mesh the true ones;
* ``landmark_nme``: the method's 105 projected landmarks, mapped from the
  crop back into the frame with the inverse crop transform, against the true
  ones, normalised by the true outer-eye-corner distance;
* ``expression_rmse``: root mean square difference of the 50 expression
  coefficients (the synthetic world's expression space is the model's own).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from augane.demo.world_disfa import GROUND_TRUTH_FOLDER
from augane.errors import DataError
from augane.evaluate.geometry import ground_truth_columns, landmark_nme, vertex_error_mm
from augane.flame.camera import normalised_to_pixels
from augane.preprocess.crop import apply_transform, invert_transform
from augane.train.face import FaceDecoder

#: Error columns written per frame, in order.
ERROR_COLUMNS: tuple[str, ...] = ("vertex_error_mm", "landmark_nme", "expression_rmse")


def ground_truth_folder(dataset_root: str | Path) -> Path | None:
    """``<root>/GroundTruth`` when the dataset has one (the synthetic world), else None."""
    folder = Path(dataset_root) / GROUND_TRUTH_FOLDER
    return folder if folder.is_dir() else None


class GroundTruth:
    """The per-frame truth tables of one synthetic DISFA-layout dataset, read per subject on demand.

    Args:
        folder: the ``GroundTruth`` folder.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DataError(f"ground-truth folder {self.folder} does not exist")
        self._tables: dict[str, pd.DataFrame] = {}

    def _subject(self, subject: str) -> pd.DataFrame:
        if subject not in self._tables:
            path = self.folder / f"{subject}.parquet"
            if not path.is_file():
                raise DataError(f"{path} does not exist: no ground truth for subject {subject!r}")
            table = pd.read_parquet(path)
            if "frame" not in table.columns:
                raise DataError(f"{path} lacks column 'frame'")
            self._tables[subject] = table.set_index(table["frame"].astype(np.int64), drop=False)
        return self._tables[subject]

    def rows(self, keys: pd.DataFrame) -> pd.DataFrame:
        """The truth of each (``subject``, ``frame``) in ``keys``, in order.

        Raises:
            DataError: a subject's table is missing, or lacks one of the frames.
        """
        parts = []
        for subject, frame in zip(keys["subject"].astype(str), keys["frame"].astype(np.int64)):
            table = self._subject(subject)
            if frame not in table.index:
                raise DataError(f"{self.folder / (subject + '.parquet')} has no row for frame {frame}")
            parts.append(table.loc[[frame]])
        return pd.concat(parts, ignore_index=True)


def landmarks_in_source(landmarks_ndc: np.ndarray, transform: np.ndarray, crop_size: int) -> np.ndarray:
    """(B, L, 2) normalised crop coordinates -> source-image pixels, through each sample's inverse crop transform.

    Args:
        landmarks_ndc: (B, L, 2) in [-1, 1] over the crop.
        transform: (B, 2, 3) source pixels -> crop pixels.
        crop_size: S, the crop side in pixels.
    """
    pixels = normalised_to_pixels(np.asarray(landmarks_ndc, dtype=np.float64), crop_size)
    return np.stack([apply_transform(points, invert_transform(t)) for points, t in zip(pixels, transform)])


@torch.no_grad()
def frame_errors(
    face: FaceDecoder,
    truth: pd.DataFrame,
    expression: torch.Tensor,
    pose: torch.Tensor,
    landmarks_ndc: torch.Tensor,
    transform: np.ndarray,
) -> pd.DataFrame:
    """Errors of B reconstructed frames against their truth rows.

    Args:
        face: the face decoder the reconstruction used (model and crop size).
        truth: (B rows) from :meth:`GroundTruth.rows`.
        expression: (B, E) predicted expression.
        pose: (B, 6) predicted pose (global, jaw axis-angle).
        landmarks_ndc: (B, 105, 2) predicted landmarks, normalised crop coordinates.
        transform: (B, 2, 3) source pixels -> crop pixels of each frame.
    Returns:
        (B rows) :data:`ERROR_COLUMNS`.
    """
    device = expression.device
    dtype = face.flame.v_template.dtype
    true_shape = torch.from_numpy(ground_truth_columns(truth, "shape")).to(device, dtype)
    true_exp = torch.from_numpy(ground_truth_columns(truth, "exp")).to(device, dtype)
    true_pose = torch.from_numpy(ground_truth_columns(truth, "pose")).to(device, dtype)
    true_shape = _fit(true_shape, face.flame.n_shape)
    true_exp = _fit(true_exp, face.flame.n_exp)
    jaw_only = torch.zeros_like(true_pose)
    jaw_only[:, 3:] = true_pose[:, 3:]
    predicted_jaw = torch.zeros_like(pose, dtype=dtype)
    predicted_jaw[:, 3:] = pose[:, 3:].to(dtype)
    true_vertices = face.decode(true_shape, true_exp, jaw_only).vertices
    predicted_vertices = face.decode(true_shape, _fit(expression.to(dtype), face.flame.n_exp), predicted_jaw).vertices
    crop_size = face.image_size[0]
    predicted_points = landmarks_in_source(landmarks_ndc.cpu().numpy(), transform, crop_size)
    true_points = ground_truth_columns(truth, "landmarks").reshape(len(truth), -1, 2)
    difference = _fit(expression.to(dtype), face.flame.n_exp) - true_exp
    return pd.DataFrame({
        "vertex_error_mm": vertex_error_mm(predicted_vertices.cpu().numpy(), true_vertices.cpu().numpy()),
        "landmark_nme": landmark_nme(predicted_points, true_points),
        "expression_rmse": difference.square().mean(dim=1).sqrt().cpu().numpy().astype(np.float64),
    })


def _fit(values: torch.Tensor, size: int) -> torch.Tensor:
    """Truncate or zero-pad the last axis to ``size`` (the truth may carry more or fewer coefficients)."""
    if values.shape[1] >= size:
        return values[:, :size]
    return torch.nn.functional.pad(values, (0, size - values.shape[1]))
