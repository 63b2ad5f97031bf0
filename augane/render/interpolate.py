"""Barycentric interpolation of mesh attributes at covered pixels (differentiable).

Attributes are either per vertex, (B, V, C), or per face corner, (B, F, 3, C)
(as DECA's ``face_vertices`` builds them), or per face corner shared by the
batch, (F, 3, C) (e.g. UVs with seams). Interpolation
uses the rasteriser's screen-space barycentrics (no perspective correction,
as DECA with an orthographic camera), so gradients flow to the attribute
values and, through the barycentrics, to the vertex positions.
"""

from __future__ import annotations

from torch import Tensor

from augane.render.rasterize import Fragments


def interpolate_packed(fragments: Fragments, attributes: Tensor) -> Tensor:
    """Attribute values at the covered pixels.

    Args:
        fragments: the rasteriser's output for B meshes of V vertices, F faces.
        attributes: (B, V, C) per-vertex, (B, F, 3, C) per-face-corner, or
            (F, 3, C) per-face-corner values shared by the batch.
    Returns:
        (N, C) values at the ``fragments.pixels``, in their order.
    """
    batch, vertices, faces = fragments.batch_size, fragments.num_vertices, fragments.num_faces
    bary = fragments.packed_bary
    if attributes.ndim == 3 and attributes.shape[:2] == (batch, vertices):
        flat = attributes.reshape(batch * vertices, attributes.shape[-1])
        corners = [flat.index_select(0, fragments.packed_corners[k]) for k in range(3)]
    elif attributes.ndim == 4 and attributes.shape[:3] == (batch, faces, 3):
        flat = attributes.reshape(batch * faces, 3 * attributes.shape[-1])
        per_face = flat.index_select(0, fragments.packed_faces).view(-1, 3, attributes.shape[-1])
        corners = [per_face[:, k] for k in range(3)]
    elif attributes.ndim == 3 and attributes.shape[:2] == (faces, 3):
        face_in_mesh = fragments.packed_faces - fragments.packed_batch * faces
        per_face = attributes.reshape(faces, -1).index_select(0, face_in_mesh).view(-1, 3, attributes.shape[-1])
        corners = [per_face[:, k] for k in range(3)]
    else:
        raise ValueError(
            f"attributes must be per vertex ({batch}, {vertices}, C), per face corner ({batch}, {faces}, 3, C) "
            f"or shared per face corner ({faces}, 3, C), "
            f"got {tuple(attributes.shape)}"
        )
    return bary[:, 0:1] * corners[0] + bary[:, 1:2] * corners[1] + bary[:, 2:3] * corners[2]


def interpolate(fragments: Fragments, attributes: Tensor, background: float = 0.0) -> Tensor:
    """Attribute images: (B, H, W, C) interpolated values, ``background`` where no face is visible.

    Args:
        fragments: the rasteriser's output.
        attributes: (B, V, C), (B, F, 3, C) or (F, 3, C) values (see :func:`interpolate_packed`).
        background: value of uncovered pixels.
    """
    return fragments.unpack(interpolate_packed(fragments, attributes), background=background)
