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
    batch, count = vertices.shape[:2]
    offsets = torch.arange(batch, device=vertices.device)[:, None] * count
    corner_ids = [(faces[:, k][None] + offsets).reshape(-1) for k in range(3)]  # (B*F,) batch-global
    coords = vertices.reshape(batch * count, 3).T  # (3, B*V)
    corners = [coords.index_select(1, ids) for ids in corner_ids]  # (3, B*F) each
    e1, e2 = corners[1] - corners[0], corners[2] - corners[0]
    face_normal = torch.stack(
        [e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0]]
    )
    summed = vertices.new_zeros((3, batch * count))
    for ids in corner_ids:
        summed = summed.index_add(1, ids, face_normal)
    length = (summed[0] * summed[0] + summed[1] * summed[1] + summed[2] * summed[2]).sqrt().clamp(min=1e-6)
    return (summed / length).T.reshape(batch, count, 3)


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


def sh_shading_channels(normals: Tensor, light: Tensor, counts: list[int]) -> Tensor:
    """SH shading of packed pixels, channels first.

    Args:
        normals: (3, N) normals of the covered pixels, grouped by image.
        light: (B, 9, 3) coefficients.
        counts: pixels of each image (length B, summing to N).
    Returns:
        (3, N) RGB shading.
    """
    x, y, z = normals
    basis = torch.stack([torch.ones_like(x), x, y, z, x * y, x * z, y * z, x * x - y * y, 3.0 * z * z - 1.0])
    constants = torch.tensor(SH_CONSTANTS, dtype=normals.dtype, device=normals.device)
    weights = (light * constants[None, :, None]).transpose(1, 2)  # (B, 3, 9)
    parts = [weights[b] @ part for b, part in enumerate(torch.split(basis, counts, dim=1)) if part.shape[1]]
    return torch.cat(parts, dim=1) if parts else normals.new_zeros((3, 0))


def shape_shading(normals: Tensor) -> Tensor:
    """DECA's grey shape lighting of normals (..., 3) -> (..., 3) RGB (the same in each channel)."""
    directions = F.normalize(torch.tensor(SHAPE_LIGHT_DIRECTIONS, dtype=normals.dtype, device=normals.device), dim=-1)
    cosines = (normals @ directions.T).clamp(0.0, 1.0)
    intensity = cosines.mean(-1, keepdim=True) * SHAPE_LIGHT_INTENSITY
    return intensity.expand(*normals.shape[:-1], 3)


def shape_shading_channels(normals: Tensor) -> Tensor:
    """:func:`shape_shading` of packed normals (3, N) -> (3, N)."""
    directions = F.normalize(torch.tensor(SHAPE_LIGHT_DIRECTIONS, dtype=normals.dtype, device=normals.device), dim=-1)
    intensity = (directions @ normals).clamp(0.0, 1.0).mean(0) * SHAPE_LIGHT_INTENSITY
    return intensity.expand(3, -1)


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
