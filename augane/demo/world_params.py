"""The demo world's ground truth: per-sample face parameters in DECA's layout, and their label columns.

Every synthetic sample is drawn from parameters laid out exactly as DECA's
236-vector (:data:`augane.nets.deca.DECA_PARAM_LAYOUT`), so a prediction of
any DECA-format encoder compares with the truth entry by entry:

* ``shape`` (100): identity coefficients (the demo face model fills the first 20);
* ``tex`` (50): albedo coefficients (the demo model's albedo space fills the first 10);
* ``exp`` (50): expression (the demo model's AU components fill the first 15,
  from :func:`augane.demo.face_model.au_parameters`);
* ``pose`` (6): global axis-angle (radians) then jaw axis-angle (AU26);
* ``cam`` (3): DECA's ``(s, tx, ty)`` for the **whole** rendered image
  (see :mod:`augane.flame.camera`); :func:`augane.demo.world_camera.camera_to_crop`
  expresses it in a face crop's frame;
* ``light`` (27): the (9, 3) SH coefficients in DECA's order, flattened row-major.

Label tables spell each entry as a column ``gt_<name>_<i>`` (the convention of
the manifest, ARCHITECTURE.md), plus ``gt_landmarks_<i>``: the 105 landmarks
projected into the rendered image, in its pixels, flattened ``x0, y0, x1, ...``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from augane.nets.deca import DECA_PARAM_LAYOUT

#: Ground-truth groups written to label tables, with their sizes.
GROUND_TRUTH_LAYOUT: dict[str, int] = {**DECA_PARAM_LAYOUT, "landmarks": 210}


def ground_truth_column_names(name: str, size: int | None = None) -> list[str]:
    """``gt_<name>_0 .. gt_<name>_<size-1>`` (size from :data:`GROUND_TRUTH_LAYOUT` when not given)."""
    size = GROUND_TRUTH_LAYOUT[name] if size is None else size
    return [f"gt_{name}_{index}" for index in range(size)]


@dataclass
class FaceParameters:
    """Parameters of B faces, in DECA's layout (float64 arrays).

    Attributes:
        shape: (B, 100) identity.
        tex: (B, 50) albedo.
        exp: (B, 50) expression.
        pose: (B, 6) global then jaw axis-angle, radians.
        cam: (B, 3) ``(s, tx, ty)`` for the whole image.
        light: (B, 9, 3) SH coefficients.
    """

    shape: np.ndarray
    tex: np.ndarray
    exp: np.ndarray
    pose: np.ndarray
    cam: np.ndarray
    light: np.ndarray

    def __post_init__(self) -> None:
        batch = self.shape.shape[0]
        for name, size in DECA_PARAM_LAYOUT.items():
            value = getattr(self, name)
            flat = value.reshape(value.shape[0], -1) if value.ndim >= 2 else value
            if flat.ndim != 2 or flat.shape != (batch, size):
                raise ValueError(f"{name} must hold {size} values per face for {batch} faces, got {value.shape}")

    def __len__(self) -> int:
        return int(self.shape.shape[0])

    def vector(self) -> np.ndarray:
        """(B, 236) in DECA's order."""
        parts = [getattr(self, name).reshape(len(self), -1) for name in DECA_PARAM_LAYOUT]
        return np.concatenate(parts, axis=1)

    def columns(self, landmarks: np.ndarray | None = None) -> pd.DataFrame:
        """The ``gt_<name>_<i>`` columns (and ``gt_landmarks_<i>`` from (B, 105, 2) pixels when given)."""
        blocks = {}
        for name, size in DECA_PARAM_LAYOUT.items():
            values = getattr(self, name).reshape(len(self), size)
            blocks.update(zip(ground_truth_column_names(name), values.T))
        if landmarks is not None:
            flat = np.asarray(landmarks, dtype=np.float64).reshape(len(self), -1)
            blocks.update(zip(ground_truth_column_names("landmarks", flat.shape[1]), flat.T))
        return pd.DataFrame(blocks)

    @classmethod
    def from_columns(cls, table: pd.DataFrame) -> FaceParameters:
        """Read the parameters back from ``gt_<name>_<i>`` columns (e.g. a label table or a manifest)."""
        from augane.errors import DataError

        values = {}
        for name, size in DECA_PARAM_LAYOUT.items():
            names = ground_truth_column_names(name)
            missing = [column for column in names if column not in table.columns]
            if missing:
                raise DataError(f"the table lacks ground-truth columns {missing[:3]} ... ({len(missing)} of gt_{name}_*)")
            values[name] = table[names].to_numpy(dtype=np.float64)
        values["light"] = values["light"].reshape(-1, 9, 3)
        return cls(**values)

    @classmethod
    def concatenate(cls, parts: list[FaceParameters]) -> FaceParameters:
        """Stack several batches into one."""
        return cls(**{name: np.concatenate([getattr(part, name) for part in parts]) for name in DECA_PARAM_LAYOUT})

    def select(self, index: np.ndarray | slice) -> FaceParameters:
        """The faces at ``index``."""
        return FaceParameters(**{name: getattr(self, name)[index] for name in DECA_PARAM_LAYOUT})


def landmark_columns_to_points(table: pd.DataFrame) -> np.ndarray:
    """(N, 105, 2) landmark pixels from ``gt_landmarks_<i>`` columns."""
    return table[ground_truth_column_names("landmarks")].to_numpy(dtype=np.float64).reshape(len(table), -1, 2)
