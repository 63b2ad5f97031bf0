"""Barycentric interpolation of mesh attributes at covered pixels (differentiable).

Attributes are per vertex, (B, V, C); per face corner, (B, F, 3, C) (as DECA's
``face_vertices`` builds them); or per face corner shared by the batch,
(F, 3, C) (e.g. UVs with seams). Interpolation uses the rasteriser's
screen-space barycentrics (no perspective correction, as DECA with an
orthographic camera), so gradients flow to the attribute values and, through
the barycentrics, to the vertex positions.

Internally values are kept channels-first, (C, N), so that every gather,
product and scatter-add runs over contiguous 1-D rows; the backward pass is
written out (:class:`_Interpolate`) rather than recorded op by op.
"""

from __future__ import annotations

import torch
from torch import Tensor

from augane.render.fused import FusedKernel
from augane.render.rasterizer import Fragments


def _table_and_corners(fragments: Fragments, attributes: Tensor) -> tuple[Tensor, Tensor]:
    """The attributes as a (C, P) table and the (3, N) table columns of each pixel's face corners."""
    batch, vertices, faces = fragments.batch_size, fragments.num_vertices, fragments.num_faces
    channels = attributes.shape[-1]
    if attributes.ndim == 3 and attributes.shape[:2] == (batch, vertices):
        return attributes.reshape(batch * vertices, channels).T, fragments.packed_corners
    corner = torch.arange(3, device=fragments.pixels.device)[:, None]
    if attributes.ndim == 4 and attributes.shape[:3] == (batch, faces, 3):
        return attributes.reshape(batch * faces * 3, channels).T, fragments.packed_faces[None] * 3 + corner
    if attributes.ndim == 3 and attributes.shape[:2] == (faces, 3):
        face_in_mesh = fragments.packed_faces - fragments.packed_batch * faces
        return attributes.reshape(faces * 3, channels).T, face_in_mesh[None] * 3 + corner
    raise ValueError(
        f"attributes must be per vertex ({batch}, {vertices}, C), per face corner ({batch}, {faces}, 3, C) "
        f"or shared per face corner ({faces}, 3, C), got {tuple(attributes.shape)}"
    )


def interpolate_channels(fragments: Fragments, attributes: Tensor) -> Tensor:
    """Attribute values at the covered pixels, channels first.

    Args:
        fragments: the rasteriser's output for B meshes of V vertices, F faces.
        attributes: (B, V, C) per-vertex, (B, F, 3, C) per-face-corner, or
            (F, 3, C) per-face-corner values shared by the batch.
    Returns:
        (C, N) values at the ``fragments.pixels``, in their order.
    """
    table, corners = _table_and_corners(fragments, attributes)
    bary = fragments.packed_bary.T
    return _Interpolate.apply(bary, table.contiguous(), corners, fragments.fused)


def interpolate_packed(fragments: Fragments, attributes: Tensor) -> Tensor:
    """Attribute values at the covered pixels: (N, C) (see :func:`interpolate_channels`)."""
    return interpolate_channels(fragments, attributes).T


def interpolate(fragments: Fragments, attributes: Tensor, background: float = 0.0) -> Tensor:
    """Attribute images: (B, H, W, C) interpolated values, ``background`` where no face is visible.

    Args:
        fragments: the rasteriser's output.
        attributes: (B, V, C), (B, F, 3, C) or (F, 3, C) values (see :func:`interpolate_channels`).
        background: value of uncovered pixels.
    """
    return fragments.unpack(interpolate_channels(fragments, attributes).T, background=background)


class _Interpolate(torch.autograd.Function):
    """``out[c] = sum_k bary[k] * table[c, corners[k]]`` with gradients for ``bary`` and ``table``."""

    @staticmethod
    def forward(ctx, bary: Tensor, table: Tensor, corners: Tensor, fused: bool) -> Tensor:
        """bary (3, N); table (C, P); corners (3, N) int64 -> (C, N); ``fused``: compiled CPU kernels."""
        bary = bary.to(table.dtype)
        out, gathered = _INTERPOLATE(bary, table, corners, fused=fused, device=table.device)
        ctx.save_for_backward(bary, gathered, corners)
        ctx.table_shape = table.shape
        ctx.fused = fused
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        bary, gathered, corners = ctx.saved_tensors
        grad = grad.contiguous()
        grad_bary = grad_table = None
        if ctx.needs_input_grad[0] and ctx.needs_input_grad[1]:
            grad_bary, weighted = _INTERPOLATION_GRADIENTS(grad, gathered, bary, fused=ctx.fused, device=grad.device)
        elif ctx.needs_input_grad[0]:
            grad_bary = _barycentric_gradient(grad, gathered)
        elif ctx.needs_input_grad[1]:
            weighted = _corner_weights(grad, bary)
        if ctx.needs_input_grad[1]:
            # One scatter-add along the table's columns for all channels and corners (much faster than
            # index_add_ on CPU; the channels run in parallel).
            grad_table = grad.new_zeros(ctx.table_shape)
            channels = grad.shape[0]
            grad_table.scatter_add_(1, corners.reshape(1, -1).expand(channels, -1), weighted.view(channels, -1))
        return grad_bary, grad_table, None, None


def _interpolate(bary: Tensor, table: Tensor, corners: Tensor) -> tuple[Tensor, Tensor]:
    """Interpolated values (C, N) and the corner values (C, 3, N) they came from.

    Args:
        bary: (3, N) barycentrics; table: (C, P) attribute table; corners: (3, N) int64 table columns.
    """
    channels, count = table.shape[0], corners.shape[1]
    gathered = table.index_select(1, corners.reshape(-1)).view(channels, 3, count)
    return gathered[:, 0] * bary[0] + gathered[:, 1] * bary[1] + gathered[:, 2] * bary[2], gathered


def _interpolate_eager(bary: Tensor, table: Tensor, corners: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`_interpolate` as eager PyTorch runs it fastest (1-D gathers written in place)."""
    channels, count = table.shape[0], corners.shape[1]
    gathered = table.new_empty((channels, 3, count))
    for c in range(channels):
        for k in range(3):
            torch.index_select(table[c], 0, corners[k], out=gathered[c, k])
    out = gathered[:, 0] * bary[0]
    return out.add_(gathered[:, 1] * bary[1]).add_(gathered[:, 2] * bary[2]), gathered


_INTERPOLATE = FusedKernel(_interpolate, eager=_interpolate_eager)


def _barycentric_gradient(grad: Tensor, gathered: Tensor) -> Tensor:
    """(3, N) gradient of the barycentrics: ``sum_c gathered[c] * grad[c]``, channels summed in order.

    Args:
        grad: (C, N) gradient of the interpolated values; ``gathered``: (C, 3, N) the corner values.
    """
    grad_bary = gathered[0] * grad[0]
    for c in range(1, grad.shape[0]):
        grad_bary.add_(gathered[c] * grad[c])  # not addcmul_, which fuses multiply-adds
    return grad_bary


def _corner_weights(grad: Tensor, bary: Tensor) -> Tensor:
    """(C, 3, N) ``bary[k] * grad[c]``: what each corner's table column receives."""
    return bary[None] * grad[:, None]


def _interpolation_gradients(grad: Tensor, gathered: Tensor, bary: Tensor) -> tuple[Tensor, Tensor]:
    """The per-pixel terms of :class:`_Interpolate`'s backward pass: :func:`_barycentric_gradient`
    and :func:`_corner_weights` in one pass when compiled."""
    return _barycentric_gradient(grad, gathered), _corner_weights(grad, bary)


_INTERPOLATION_GRADIENTS = FusedKernel(_interpolation_gradients)
