"""UV texture lookup as DECA does it: per-corner UVs interpolated, then bilinear sampling of a UV map.

UVs follow the OBJ convention (``u`` right, ``v`` up, in [0, 1]); the texel
grid is sampled like ``grid_sample(texture, (2u - 1, 1 - 2v),
align_corners=False)`` with zero padding, DECA's call, so row 0 of the
texture image is ``v = 1``. The layout itself (DECA's ``head_template.obj``)
is read by :func:`augane.flame.texture.load_head_template`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class UVLayout:
    """Per-corner UV coordinates of a mesh.

    Attributes:
        uvs: (T, 2) UV coordinates (OBJ convention, v up).
        uv_faces: (F, 3) int64 indices into ``uvs`` for each corner of the mesh's faces.
    """

    uvs: Tensor
    uv_faces: Tensor

    @classmethod
    def from_arrays(cls, uvs: np.ndarray | Tensor, uv_faces: np.ndarray | Tensor, num_faces: int) -> UVLayout:
        """Validated layout from arrays; ``num_faces`` is the mesh's face count."""
        uvs = torch.as_tensor(uvs, dtype=torch.float32)
        uv_faces = torch.as_tensor(uv_faces, dtype=torch.int64)
        if uvs.ndim != 2 or uvs.shape[1] != 2:
            raise ValueError(f"uvs must be (T, 2), got {tuple(uvs.shape)}")
        if uv_faces.shape != (num_faces, 3):
            raise ValueError(f"uv_faces must be ({num_faces}, 3) like the mesh's faces, got {tuple(uv_faces.shape)}")
        if uv_faces.numel() and (int(uv_faces.min()) < 0 or int(uv_faces.max()) >= uvs.shape[0]):
            raise ValueError(
                f"uv_faces index UVs {int(uv_faces.min())}..{int(uv_faces.max())} but there are {uvs.shape[0]}"
            )
        return cls(uvs=uvs, uv_faces=uv_faces)

    def face_uvs(self) -> Tensor:
        """(F, 3, 2) UV of each face corner."""
        return self.uvs[self.uv_faces]


def check_texture(texture: Tensor, batch: int) -> None:
    """Raise ``ValueError`` unless ``texture`` is (batch, C, Ht, Wt)."""
    if texture.ndim != 4 or texture.shape[0] != batch:
        raise ValueError(f"texture must be (B, C, Ht, Wt) with B = {batch}, got {tuple(texture.shape)}")


def sample_texture_packed(texture: Tensor, uv: Tensor, batch_index: Tensor) -> Tensor:
    """Bilinear texture values at packed UVs (differentiable in both).

    Args:
        texture: (B, C, Ht, Wt) UV maps.
        uv: (N, 2) UV coordinates (v up).
        batch_index: (N,) sorted image index of each UV.
    Returns:
        (N, C) sampled values (zero outside the map, as DECA's zero padding).
    """
    check_texture(texture, texture.shape[0])
    grid = torch.stack([uv[:, 0] * 2.0 - 1.0, 1.0 - uv[:, 1] * 2.0], dim=-1)
    counts = torch.bincount(batch_index, minlength=texture.shape[0]).tolist()
    parts = []
    for b, part in enumerate(torch.split(grid, counts)):
        if part.shape[0]:
            sampled = F.grid_sample(texture[b : b + 1], part[None, None], mode="bilinear", align_corners=False)
            parts.append(sampled[0, :, 0].T)
    return torch.cat(parts) if parts else uv.new_zeros((0, texture.shape[1]))
