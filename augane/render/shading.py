"""Lighting as DECA computes it: vertex normals, 9-coefficient spherical harmonics, and the grey shape lights.

Conventions (DECA's ``SRenderY``):

* Normals are model-space vertex normals (FLAME's frame: x to the subject's
  left, y up, z towards the camera), area-weighted, interpolated over each
  face with the barycentrics and *not* renormalised.
* SH lighting: ``light`` is (B, 9, 3), nine coefficients per RGB channel, in
  the order ``1, x, y, z, xy, xz, yz, x^2 - y^2, 3 z^2 - 1`` of the normal's
  components, each scaled by :data:`SH_CONSTANTS` (the irradiance factors
  ``pi * A_l`` times the real SH normalisation). Shading
  ``sum_i SH_CONSTANTS[i] * basis_i(n) * light[:, i, c]`` multiplies the albedo.
* The grey shape render (DECA's ``render_shape``): albedo 180/255, five
  directional lights from (+-1, +-1, 1) and (0, 0, 1) with intensity 1.7,
  ``mean over lights of clamp(n . l, 0, 1) * 1.7``, and only pixels whose
  interpolated normal has ``z > -0.15`` are drawn.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

SH_CONSTANTS = (
    1.0 / math.sqrt(4.0 * math.pi),
    (2.0 * math.pi / 3.0) * math.sqrt(3.0 / (4.0 * math.pi)),
    (2.0 * math.pi / 3.0) * math.sqrt(3.0 / (4.0 * math.pi)),
    (2.0 * math.pi / 3.0) * math.sqrt(3.0 / (4.0 * math.pi)),
    (math.pi / 4.0) * 3.0 * math.sqrt(5.0 / (12.0 * math.pi)),
    (math.pi / 4.0) * 3.0 * math.sqrt(5.0 / (12.0 * math.pi)),
    (math.pi / 4.0) * 3.0 * math.sqrt(5.0 / (12.0 * math.pi)),
    (math.pi / 4.0) * 1.5 * math.sqrt(5.0 / (12.0 * math.pi)),
    (math.pi / 4.0) * 0.5 * math.sqrt(5.0 / (4.0 * math.pi)),
)
"""DECA's per-coefficient SH factors (``SRenderY.constant_factor``)."""

SHAPE_ALBEDO = 180.0 / 255.0
"""Grey albedo of DECA's shape renders."""

SHAPE_LIGHT_DIRECTIONS = ((-1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (-1.0, -1.0, 1.0), (1.0, -1.0, 1.0), (0.0, 0.0, 1.0))
"""Directions towards DECA's five shape-render lights (model space, normalised before use)."""

SHAPE_LIGHT_INTENSITY = 1.7

SHAPE_MIN_NORMAL_Z = -0.15
"""DECA's shape renders hide pixels whose interpolated normal points further away than this."""


def check_light(light: Tensor, batch: int) -> None:
    """Raise ``ValueError`` unless ``light`` is (batch, 9, 3)."""
    if light.ndim != 3 or light.shape != (batch, 9, 3):
        raise ValueError(f"light must be (B, 9, 3) SH coefficients with B = {batch}, got {tuple(light.shape)}")


def vertex_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Area-weighted unit vertex normals (right-hand rule on the face's vertex order).

    Args:
        vertices: (B, V, 3).
        faces: (F, 3) int64.
    Returns:
        (B, V, 3) normals; a vertex in no (or only degenerate) faces gets (0, 0, 0).
    """
    v0, v1, v2 = (vertices.index_select(1, faces[:, k]) for k in range(3))
    face_normals = torch.linalg.cross(v1 - v0, v2 - v0, dim=-1)
    summed = torch.zeros_like(vertices)
    for k in range(3):
        summed = summed.index_add(1, faces[:, k], face_normals)
    return F.normalize(summed, dim=-1, eps=1e-6)


def sh_basis(normals: Tensor) -> Tensor:
    """DECA's nine scaled SH basis values of normals (..., 3) -> (..., 9)."""
    x, y, z = normals.unbind(-1)
    basis = [torch.ones_like(x), x, y, z, x * y, x * z, y * z, x * x - y * y, 3.0 * z * z - 1.0]
    return torch.stack([value * constant for value, constant in zip(basis, SH_CONSTANTS)], dim=-1)


def sh_shading(normals: Tensor, light: Tensor) -> Tensor:
    """SH irradiance of normals under per-image lights.

    Args:
        normals: (B, ..., 3) normals (any shape between the batch and the last axis).
        light: (B, 9, 3) coefficients.
    Returns:
        (B, ..., 3) RGB shading.
    """
    check_light(light, normals.shape[0])
    basis = sh_basis(normals)
    flat = basis.reshape(basis.shape[0], -1, 9)
    return torch.bmm(flat, light).reshape(*normals.shape[:-1], 3)


def sh_shading_packed(normals: Tensor, light: Tensor, batch_index: Tensor) -> Tensor:
    """SH shading of packed pixels: normals (N, 3), light (B, 9, 3), batch_index (N,) sorted -> (N, 3)."""
    basis = sh_basis(normals)
    counts = torch.bincount(batch_index, minlength=light.shape[0]).tolist()
    parts = [part @ light[b] for b, part in enumerate(torch.split(basis, counts)) if part.shape[0]]
    return torch.cat(parts) if parts else basis.new_zeros((0, 3))


def shape_shading(normals: Tensor) -> Tensor:
    """DECA's grey shape lighting of normals (..., 3) -> (..., 3) RGB (the same in each channel)."""
    directions = F.normalize(torch.tensor(SHAPE_LIGHT_DIRECTIONS, dtype=normals.dtype, device=normals.device), dim=-1)
    cosines = (normals @ directions.T).clamp(0.0, 1.0)
    intensity = cosines.mean(-1, keepdim=True) * SHAPE_LIGHT_INTENSITY
    return intensity.expand(*normals.shape[:-1], 3)


def default_light(batch: int, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
    """A neutral white SH light for previews: ambient 0.7, frontal 0.3, overhead 0.15 (shading units).

    Returns:
        (batch, 9, 3) coefficients.
    """
    light = torch.zeros(9, 3, dtype=dtype, device=device)
    light[0] = 0.7 / SH_CONSTANTS[0]
    light[3] = 0.3 / SH_CONSTANTS[3]
    light[2] = 0.15 / SH_CONSTANTS[2]
    return light.expand(batch, 9, 3).clone()
