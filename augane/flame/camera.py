"""The camera: DECA's weak-perspective (scaled orthographic) projection, in one place.

Every projection in AUGANE (landmarks in the losses, vertices for the
renderer, overlays) goes through :func:`project`. Conventions, as DECA:

* ``cam = (s, tx, ty)``: isotropic scale and a 2D translation applied in
  model units *before* scaling.
* ``x_n = s * (X + tx)``, ``y_n = -s * (Y + ty)``, ``z_n = -s * Z``. The
  FLAME/model frame is y-up and faces +z; the image frame is y-down with z
  increasing away from the viewer, so smaller ``z_n`` is nearer.
* Normalised image coordinates span [-1, 1] across the image; pixel
  coordinates are continuous with pixel ``i`` covering ``[i, i + 1)`` (its
  centre at ``i + 0.5``): ``u = (x_n + 1) * width / 2``.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

ArrayLike = TypeVar("ArrayLike", Tensor, np.ndarray)


def project(points: Tensor, cam: Tensor) -> Tensor:
    """Project model-space points to normalised image coordinates.

    Args:
        points: (B, N, 3) points in model units (metres for FLAME).
        cam: (B, 3) camera ``(s, tx, ty)``.
    Returns:
        (B, N, 3): ``(x_n, y_n, z_n)``; x right, y down in [-1, 1] over the
        image, z scaled like x and y and increasing away from the viewer.
    """
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"points must be (B, N, 3), got {tuple(points.shape)}")
    if cam.ndim != 2 or cam.shape[-1] != 3:
        raise ValueError(f"cam must be (B, 3) = (s, tx, ty), got {tuple(cam.shape)}")
    scale = cam[:, None, 0:1]
    xy = scale * (points[..., :2] + cam[:, None, 1:3])
    z = scale * points[..., 2:3]
    flip = torch.tensor([1.0, -1.0], dtype=points.dtype, device=points.device)
    return torch.cat([xy * flip, -z], dim=-1)


def _axis_sizes(coords: ArrayLike, width: int, height: int | None) -> ArrayLike:
    """(2,) array of (width, height) in the array type and dtype of ``coords``."""
    sizes = [width, width if height is None else height]
    if isinstance(coords, Tensor):
        return torch.tensor(sizes, dtype=coords.dtype, device=coords.device)
    return np.asarray(sizes, dtype=np.asarray(coords).dtype)


def normalised_to_pixels(xy: ArrayLike, width: int, height: int | None = None) -> ArrayLike:
    """Normalised [-1, 1] coordinates (..., 2) to continuous pixel coordinates (..., 2).

    Works on torch tensors and numpy arrays alike (returns the same type).
    """
    return (xy + 1.0) * _axis_sizes(xy, width, height) / 2.0


def pixels_to_normalised(uv: ArrayLike, width: int, height: int | None = None) -> ArrayLike:
    """Continuous pixel coordinates (..., 2) to normalised [-1, 1] coordinates (..., 2)."""
    return uv * 2.0 / _axis_sizes(uv, width, height) - 1.0
