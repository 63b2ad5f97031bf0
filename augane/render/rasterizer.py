"""Exact z-buffer rasterisation of triangle meshes in plain PyTorch (CPU and CUDA).

Written by hand because pytorch3d and nvdiffrast cannot be installed here.
The same conventions as DECA's pytorch3d rasteriser (blur radius 0, one face
per pixel, screen-space barycentrics), with AUGANE's image coordinates
(:mod:`augane.flame.camera`): vertices arrive in normalised coordinates
``(x_n, y_n, z_n)``, x right and y down in [-1, 1] over the image, z
increasing away from the viewer (the smallest z wins). Pixel ``(i, j)``
(row, column) has its centre at ``x_n = (2 j + 1) / W - 1``,
``y_n = (2 i + 1) / H - 1``.

How it works
------------
Visibility is decided without gradients, for whole images at a time (all of
a typical batch in one go; groups of images bound the memory of huge ones):

1. Per face: an exact orientation test (float32 products with a rounding
   bound; the few faces whose sign is in doubt are recomputed in float64,
   where products of float32 differences are exact). Zero-area faces are
   skipped, back faces too when culling; what follows works on the rest.
2. Per remaining face: its corners sorted by y, its three edges, its depth
   plane (in quantised levels) and its barycentric coefficients. The face is
   drawn as two trapezoids, rows above its middle corner and rows from it on,
   each between the long edge and one short edge.
3. Row stage, per trapezoid and row: the covered pixel columns
   ``[first, first + length)`` (classic scanline, half-open in x and in y).
   Each edge's crossing is computed from its upper endpoint with the same
   float operations in whichever face evaluates it, so two faces sharing an
   edge see bit-identical crossings: a pixel centre on a shared edge or
   vertex belongs to exactly one of them (the top-left rule in y-down
   coordinates), with no cracks and no double hits. Rows come in passes (the
   first row of every trapezoid, upper and lower ones in one table, then
   further rows of those that have them, doubling), so that the work follows
   the trapezoids' heights without sorting.
4. Candidate stage: the spans are laid end to end, one candidate per covered
   pixel (never a padded box), each with a key that packs the quantised depth
   above the face's column in the face tables (an integer held exactly in a
   float64); one ``scatter_reduce`` (``amin``) keeps the nearest face per
   pixel (ties: the lower face index).

Every step is a handful of whole-batch tensor operations (a few hundred per
call, independent of the batch size), and the work is proportional to the
covered pixels, never to faces x pixels. The barycentrics of each pixel's
winning face then come from per-face coefficients with an analytic backward
pass (the same quantity pytorch3d differentiates), so images are
differentiable with respect to vertex positions wherever the visible face
does not change.

On CPU the cost is memory traffic: each operation streams its operands once,
so the code keeps float64 to the depth keys and the exact fallbacks, uses
1-D gathers and scatter-adds (much faster than row-wise ``index_add_``) and
arithmetic selects (``torch.where`` is several times slower). With
``fused=True`` the per-face tables (:func:`_face_tables`), the row spans
(:func:`_row_spans`), the trapezoids kept between passes
(:func:`_select_trapezoids`), the candidate keys
(:func:`_plane_candidate_keys`: the per-row tables' arithmetic done per
candidate, with nothing per row written out), the per-pixel lookups
(:func:`_winners`, :func:`_pixel_barycentrics`), the packing of per-pixel
values into images and back (:func:`_scatter_pixels`, :func:`_gather_pixels`)
and the per-pixel terms of the barycentrics' backward pass
(:func:`_barycentric_gradients`) run as compiled loops
(:mod:`augane.render.fused`), bit-identical to eager; the interpolation
follows the fragments' ``fused``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import torch
from torch import Tensor

from augane.flame.camera import normalised_to_pixels
from augane.render.fused import FusedKernel

_KEY_LIMIT = float(1 << 61)
"""Keys below this value are covered pixels (real keys are below 2**53; uncovered pixels hold +inf)."""

_MAX_SIDE_LOG2 = 15
"""Images up to 2**15 pixels on a side (larger ones are refused)."""


def _default_chunk_elements(device: torch.device) -> int:
    """Candidate pixels processed per step: cache-sized on CPU, large on GPUs."""
    return 1 << 18 if device.type == "cpu" else 1 << 24


def normalise_image_size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """``image_size`` as ``(height, width)``; an int means a square image."""
    if isinstance(image_size, int):
        height = width = image_size
    else:
        if len(image_size) != 2:
            raise ValueError(f"image_size must be an int or (height, width), got {image_size!r}")
        height, width = (int(v) for v in image_size)
    if not (1 <= height <= (1 << _MAX_SIDE_LOG2) and 1 <= width <= (1 << _MAX_SIDE_LOG2)):
        raise ValueError(f"image size must be between 1 and {1 << _MAX_SIDE_LOG2} pixels, got {height}x{width}")
    return height, width


def check_mesh(vertices: Tensor, faces: Tensor, what: str = "vertices") -> None:
    """Raise ``ValueError`` unless ``vertices`` is (B, V, 3) float and ``faces`` (F, 3) int64 in [0, V)."""
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"{what} must be (B, V, 3), got {tuple(vertices.shape)}")
    if not vertices.is_floating_point():
        raise ValueError(f"{what} must be a floating-point tensor, got {vertices.dtype}")
    if faces.ndim != 2 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be (F, 3) vertex indices, got {tuple(faces.shape)}")
    if faces.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"faces must be an integer tensor (int64), got {faces.dtype}")
    if faces.device != vertices.device:
        raise ValueError(f"faces are on {faces.device} but {what} on {vertices.device}")
    if faces.numel() > 0:
        low, high = int(faces.min()), int(faces.max())
        if low < 0 or high >= vertices.shape[1]:
            raise ValueError(
                f"faces index vertices {low}..{high} but the mesh has {vertices.shape[1]} vertices "
                f"(valid: 0..{vertices.shape[1] - 1})"
            )


@dataclass
class Fragments:
    """What the rasteriser found at each pixel, stored packed over covered pixels.

    The packed fields list the ``N`` covered pixels in row-major order over
    ``(B, H, W)``; the image-shaped views (``face_index``, ``bary``,
    ``depth``, ``mask``) are built on first access.

    Attributes:
        image_size: ``(H, W)``.
        batch_size: B.
        faces: (F, 3) int64, the mesh's faces (shared by the batch).
        num_vertices: V, vertices per mesh.
        pixels: (N,) int64 flat index into ``B * H * W`` of each covered pixel.
        packed_faces: (N,) int64 batch-global face index ``b * F + f``.
        packed_corners: (3, N) int64 batch-global vertex index ``b * V + v``
            of the visible face's three corners, in the face's vertex order.
        packed_bary: (N, 3) barycentric coordinates of the pixel centre in the
            visible face (screen space, sum to 1), differentiable with respect
            to the rasterised vertex positions.
        screen_vertices: (B, V, 3) the rasterised vertices (normalised
            coordinates), kept for depth interpolation.
        fused: whether interpolations and unpackings of these fragments run as
            compiled CPU kernels, as the rasteriser did (:mod:`augane.render.fused`;
            the same results).
    """

    image_size: tuple[int, int]
    batch_size: int
    faces: Tensor
    num_vertices: int
    pixels: Tensor
    packed_faces: Tensor
    packed_corners: Tensor
    packed_bary: Tensor
    screen_vertices: Tensor
    fused: bool = False

    @property
    def num_faces(self) -> int:
        """F, faces per mesh."""
        return int(self.faces.shape[0])

    @cached_property
    def packed_batch(self) -> Tensor:
        """(N,) int64 batch index of each covered pixel."""
        height, width = self.image_size
        return torch.div(self.pixels, height * width, rounding_mode="floor")

    def unpack(self, values: Tensor, background: float = 0.0) -> Tensor:
        """Scatter packed per-pixel values (N, C) into an image (B, H, W, C), ``background`` elsewhere."""
        height, width = self.image_size
        out = _ScatterPixels.apply(values.T, self.pixels, self.batch_size * height * width, float(background),
                                   self.fused)
        return out.view(self.batch_size, height, width, values.shape[-1])

    def unpack_image(self, values: Tensor, background: Tensor | float = 0.0) -> Tensor:
        """Packed values (N, C) as a channels-first image (B, C, H, W) over ``background``.

        Args:
            values: (N, C) values at the covered pixels.
            background: a number, or a (B, C, H, W) image kept where no face
                is visible (differentiable there).
        """
        height, width = self.image_size
        channels = values.shape[-1]
        shape = (self.batch_size, channels, height, width)
        if isinstance(background, Tensor):
            if background.shape != shape:
                raise ValueError(f"background must be {shape}, got {tuple(background.shape)}")
            canvas = background.to(values.dtype)
        else:
            canvas = values.new_full((1, 1, 1, 1), float(background)).expand(shape)
        return _ScatterChannels.apply(values.T, canvas, self.channel_base(channels))

    def channel_base(self, channels: int) -> Tensor:
        """(N,) flat index of each covered pixel's first channel in a (B, channels, H, W) image."""
        height, width = self.image_size
        return self.pixels + self.packed_batch * ((channels - 1) * height * width)

    def gather_image(self, image: Tensor) -> Tensor:
        """Values of a (B, C, H, W) image at the covered pixels: (N, C)."""
        height, width = self.image_size
        flat = image.reshape(self.batch_size, image.shape[1], height * width)
        return flat[self.packed_batch, :, self.pixels - self.packed_batch * (height * width)]

    @cached_property
    def mask(self) -> Tensor:
        """(B, H, W) bool, True where a face covers the pixel centre."""
        height, width = self.image_size
        mask = torch.zeros(self.batch_size * height * width, dtype=torch.bool, device=self.pixels.device)
        mask[self.pixels] = True
        return mask.view(self.batch_size, height, width)

    @cached_property
    def face_index(self) -> Tensor:
        """(B, H, W) int64 index of the visible face in its mesh (0..F-1), -1 for background."""
        height, width = self.image_size
        face = torch.full((self.batch_size * height * width,), -1, dtype=torch.int64, device=self.pixels.device)
        face[self.pixels] = self.packed_faces - self.packed_batch * self.num_faces
        return face.view(self.batch_size, height, width)

    @cached_property
    def bary(self) -> Tensor:
        """(B, H, W, 3) barycentric coordinates (0 on background), differentiable."""
        return self.unpack(self.packed_bary)

    @cached_property
    def packed_depth(self) -> Tensor:
        """(N,) normalised depth ``z_n`` of the visible surface at each covered pixel, differentiable."""
        z = self.screen_vertices[..., 2].reshape(-1)
        return sum(self.packed_bary[:, k] * z.index_select(0, self.packed_corners[k]) for k in range(3))

    @cached_property
    def depth(self) -> Tensor:
        """(B, H, W) normalised depth ``z_n`` of the visible surface, +inf on background."""
        return self.unpack(self.packed_depth[:, None], background=math.inf)[..., 0]


class _ScatterPixels(torch.autograd.Function):
    """Channels-first packed values (C, N) into a channels-last image (P, C) (P = B*H*W), with its backward.

    Eager: one strided ``index_copy_`` / ``index_select`` per channel (faster on CPU than copying
    (N, C) rows), and the gradient comes back channels first; ``fused``: one compiled pass
    (:mod:`augane.render.fused`).
    """

    @staticmethod
    def forward(ctx, values: Tensor, pixels: Tensor, num_pixels: int, background: float, fused: bool) -> Tensor:
        ctx.save_for_backward(pixels)
        ctx.fused = fused
        return _SCATTER_PIXELS(values, pixels, num_pixels, background, fused=fused, device=values.device)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        (pixels,) = ctx.saved_tensors
        return _GATHER_PIXELS(grad, pixels, fused=ctx.fused, device=grad.device), None, None, None, None


def _scatter_pixels(values: Tensor, pixels: Tensor, num_pixels: int, background: float) -> Tensor:
    """Packed values (C, N) written at rows ``pixels`` (N,) of a (num_pixels, C) image of ``background``."""
    return values.new_full((num_pixels, values.shape[0]), background).index_put_((pixels,), values.T)


def _scatter_pixels_eager(values: Tensor, pixels: Tensor, num_pixels: int, background: float) -> Tensor:
    """:func:`_scatter_pixels` as eager PyTorch runs it fastest (a strided 1-D copy per channel)."""
    out = values.new_full((num_pixels, values.shape[0]), background)
    for c in range(values.shape[0]):
        out[:, c].index_copy_(0, pixels, values[c])
    return out


def _gather_pixels(image: Tensor, pixels: Tensor) -> Tensor:
    """Rows ``pixels`` (N,) of a (P, C) image, channels first: (C, N)."""
    return image.index_select(0, pixels).T.contiguous()


def _gather_pixels_eager(image: Tensor, pixels: Tensor) -> Tensor:
    """:func:`_gather_pixels` as eager PyTorch runs it fastest (a strided 1-D gather per channel)."""
    packed = image.new_empty((image.shape[1], pixels.shape[0]))
    for c in range(image.shape[1]):
        torch.index_select(image[:, c], 0, pixels, out=packed[c])
    return packed


_SCATTER_PIXELS = FusedKernel(_scatter_pixels, eager=_scatter_pixels_eager)
_GATHER_PIXELS = FusedKernel(_gather_pixels, eager=_gather_pixels_eager)


class _ScatterChannels(torch.autograd.Function):
    """Channels-first packed values (C, N) written over a copy of a (B, C, H, W) canvas, with its backward.

    Channel ``c`` of pixel ``n`` sits at ``base[n] + c * H * W`` of the flat
    image: one ``index_copy_`` / ``index_select`` per channel on an offset view.
    """

    @staticmethod
    def forward(ctx, values: Tensor, canvas: Tensor, base: Tensor) -> Tensor:
        out = canvas.clone(memory_format=torch.contiguous_format)
        area = out.shape[2] * out.shape[3]
        flat = out.view(-1)
        for c in range(values.shape[0]):
            flat[c * area :].index_copy_(0, base, values[c])
        ctx.save_for_backward(base)
        ctx.area = area
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        (base,) = ctx.saved_tensors
        grad = grad.contiguous()
        flat = grad.view(-1)
        channels = grad.shape[1]
        grad_values = grad_canvas = None
        if ctx.needs_input_grad[0]:
            grad_values = grad.new_empty((channels, base.shape[0]))
            for c in range(channels):
                torch.index_select(flat[c * ctx.area :], 0, base, out=grad_values[c])
        if ctx.needs_input_grad[1]:
            grad_canvas = grad.clone()
            canvas_flat = grad_canvas.view(-1)
            for c in range(channels):
                canvas_flat[c * ctx.area :].index_fill_(0, base, 0.0)
        return grad_values, grad_canvas, None


def rasterize(
    vertices: Tensor,
    faces: Tensor,
    image_size: int | tuple[int, int],
    cull_backfaces: bool = False,
    chunk_elements: int | None = None,
    fused: bool = False,
) -> Fragments:
    """Rasterise a batch of meshes given in normalised image coordinates.

    Args:
        vertices: (B, V, 3) vertices in normalised image coordinates (the
            output of :func:`augane.flame.camera.project`); float32 or float64.
        faces: (F, 3) int64 vertex indices shared by the batch; both windings
            are rendered unless ``cull_backfaces``.
        image_size: ``H`` (square) or ``(H, W)`` in pixels.
        cull_backfaces: skip faces whose model-space normal (right-hand rule
            on the vertex order) points away from the viewer.
        chunk_elements: candidate pixels processed per step (bounds memory);
            ``None`` picks a size suited to the device.
        fused: on CPU, run the per-face, per-row and per-pixel work as compiled
            kernels (:mod:`augane.render.fused`; the same result, faster), as do
            interpolations and unpackings of the fragments and their backward passes.
    Returns:
        :class:`Fragments`; barycentrics are differentiable with respect to
        ``vertices[..., :2]`` (and depth with respect to ``vertices``).
    """
    check_mesh(vertices, faces)
    height, width = normalise_image_size(image_size)
    faces = faces.long()
    batch, num_vertices = vertices.shape[:2]
    num_faces = faces.shape[0]
    device = vertices.device
    if vertices.numel() and not all(math.isfinite(v) for v in torch.aminmax(vertices.detach())):
        raise ValueError("vertices contain NaN or infinite values")
    pixel_xy = normalised_to_pixels(vertices[..., :2], width, height).reshape(-1, 2)
    offsets = torch.arange(batch, device=device) * num_vertices
    corner_ids = (faces.T.contiguous()[:, None, :] + offsets[None, :, None]).reshape(3, batch * num_faces)
    chunk = max(1, chunk_elements or _default_chunk_elements(device))
    with torch.no_grad():
        flat = pixel_xy.detach()
        depth = vertices[..., 2].detach().reshape(-1)
        visible = _visibility_keys(flat, depth, corner_ids, batch, num_faces, height, width, cull_backfaces, chunk,
                                   fused)
        pixels = (visible.keys < _KEY_LIMIT).nonzero().squeeze(1)
        winners, packed_faces, packed_corners = _WINNERS(
            visible.keys, pixels, visible.face_ids, visible.face_corners, visible.face_bits, fused=fused, device=device
        )
    packed_bary = _Barycentrics.apply(
        pixel_xy, visible.coefficients, winners, packed_corners, pixels, (batch, height, width), fused
    ).T
    return Fragments(
        image_size=(height, width),
        batch_size=batch,
        faces=faces,
        num_vertices=num_vertices,
        pixels=pixels,
        packed_faces=packed_faces,
        packed_corners=packed_corners,
        packed_bary=packed_bary,
        screen_vertices=vertices,
        fused=fused,
    )


def _winners(
    keys: Tensor, pixels: Tensor, face_ids: Tensor, face_corners: Tensor, face_bits: int
) -> tuple[Tensor, Tensor, Tensor]:
    """The visible face of each covered pixel, from its key (whose low bits are the face's column).

    Args:
        keys: (B*H*W,) float64 keys (:func:`_visibility_keys`); ``pixels``: (N,) the covered ones.
        face_ids: (n,) and ``face_corners`` (3, n): the face tables.
    Returns:
        ``winners`` (N,) column in the face tables, ``packed_faces`` (N,) batch-global face index
        and ``packed_corners`` (3, N) batch-global vertex indices of its corners.
    """
    winners = keys.index_select(0, pixels).long().bitwise_and((1 << face_bits) - 1)
    return winners, face_ids.index_select(0, winners), face_corners.index_select(1, winners)


def _winners_eager(
    keys: Tensor, pixels: Tensor, face_ids: Tensor, face_corners: Tensor, face_bits: int
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`_winners` as eager PyTorch runs it fastest (1-D gathers written in place)."""
    winners = keys.index_select(0, pixels).long().bitwise_and_((1 << face_bits) - 1)
    corners = winners.new_empty((3, winners.shape[0]))
    for k in range(3):
        torch.index_select(face_corners[k], 0, winners, out=corners[k])
    return winners, face_ids.index_select(0, winners), corners


_WINNERS = FusedKernel(_winners, eager=_winners_eager)


def _pixel_centres(pixels: Tensor, batch: int, height: int, width: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates (column, row) of flat pixel indices into (B, H, W), in pixel-index
    coordinates (the centre of pixel ``(i, j)`` is ``(j, i)``).

    Float division of ``index + 0.5`` keeps the quotient at least ``0.5 / width`` away from
    integers, so ``floor`` is exact (and much faster than integer division): in float32 while
    ``B*H*W <= 2**21`` (rounding stays below half that margin), else in float64.
    """
    work = torch.float32 if batch * height * width <= (1 << 21) else torch.float64
    index = pixels.to(work) + 0.5
    row_all = torch.floor(index * (1.0 / width))
    row = row_all - torch.floor((row_all + 0.5) * (1.0 / height)) * height
    return (index - 0.5).sub_(row_all * width).to(dtype), row.to(dtype)


def _select(condition: Tensor, if_true: Tensor, if_false: Tensor) -> Tensor:
    """``torch.where`` for finite floats, exact, as arithmetic (much faster than ``where`` on CPU)."""
    chosen = condition.to(if_true.dtype)
    return if_true * chosen + if_false * (1.0 - chosen)


def _sort_pair(xa: Tensor, ya: Tensor, xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Order two points by y (ties keep their order)."""
    swap = yb < ya
    return _select(swap, xb, xa), torch.minimum(ya, yb), _select(swap, xa, xb), torch.maximum(ya, yb)


def _min3(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    return torch.minimum(torch.minimum(a, b), c)


def _max3(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    return torch.maximum(torch.maximum(a, b), c)


class _Visibility(NamedTuple):
    """What :func:`_visibility_keys` finds (see there)."""

    keys: Tensor
    face_ids: Tensor
    face_corners: Tensor
    face_bits: int
    coefficients: Tensor


_ORIENTATION_ERROR = 8.0 * 2.0**-24
"""Relative bound (of ``|p| + |q|``) on the float32 rounding error of ``p - q``, products of differences."""


def _visibility_keys(
    xy: Tensor,
    z: Tensor,
    corner_ids: Tensor,
    batch: int,
    num_faces: int,
    height: int,
    width: int,
    cull_backfaces: bool,
    chunk_elements: int,
    fused: bool,
) -> _Visibility:
    """Nearest-face key per pixel (no gradients).

    Coordinates inside are pixel-index coordinates, shifted by half a pixel
    so that pixel ``c`` has its centre at ``c``: a row span ``[left, right)``
    covers the columns ``ceil(left) <= c < ceil(right)``, and a face covers
    the rows ``ceil(y_top) <= r < ceil(y_bottom)``.

    Args:
        xy: (B*V, 2) pixel coordinates of the vertices.
        z: (B*V,) normalised depths of the vertices.
        corner_ids: (3, B*F) batch-global vertex index of each face's corners.
    Returns:
        keys: (B*H*W,) float64, ``+inf`` where no face covers the pixel
            centre, else the integer ``depth_level * 2**face_bits + u`` (below
            2**53, so exact) of the nearest face, column ``u`` of the face
            tables (ties: the lower index);
        face_ids: (n,) int64 batch-global indices (increasing) of the faces
            that can cover a pixel (non-degenerate, front-facing when culling);
        face_corners: (3, n) their batch-global vertex indices;
        face_bits: bits of ``u``;
        coefficients: (6, n) ``g1x, g1y, g2x, g2y, x0, y0`` (see :class:`_Barycentrics`).
    """
    device = xy.device
    total_faces = batch * num_faces
    keys = torch.full((batch * height * width,), math.inf, dtype=torch.float64, device=device)
    # Keys hold a column of the face tables, below 2**face_bits, above a depth level.
    face_bits = max(1, total_faces.bit_length())
    z64 = z.double()
    frame = _DepthFrame(z64, face_bits)
    images_per_group = _images_per_group(device, num_faces)
    tables = []
    columns = 0
    for first_image in range(0, batch, images_per_group):
        faces = slice(first_image * num_faces, min(batch, first_image + images_per_group) * num_faces)
        table = _group_keys(
            keys, xy, z64, corner_ids[:, faces], faces.start, columns, frame, num_faces, height, width,
            cull_backfaces, chunk_elements, fused,
        )
        columns += table[0].numel()
        tables.append(table)
    if len(tables) == 1:
        face_ids, face_corners, coefficients = tables[0]
    elif tables:
        face_ids, face_corners, coefficients = (torch.cat(parts, dim=-1) for parts in zip(*tables))
    else:
        face_ids = torch.zeros(0, dtype=torch.int64, device=device)
        face_corners, coefficients = face_ids.view(3, 0), xy.new_zeros((6, 0))
    return _Visibility(keys, face_ids, face_corners, face_bits, coefficients)


def _images_per_group(device: torch.device, num_faces: int) -> int:
    """Images whose faces are rasterised together (whole images, up to about 2**18 faces on CPU and
    2**21 on GPUs): bounds the per-face working memory. Larger groups are faster (fewer, larger
    operations), even on CPU where smaller ones would fit the caches better."""
    group_faces = 1 << 18 if device.type == "cpu" else 1 << 21
    return max(1, group_faces // max(1, num_faces))


class _DepthFrame:
    """Quantisation of the batch's depth range into integer levels (float64 keys stay exact).

    ``level = z * scale + offset`` maps the range onto ``[4, levels + 4]``; keys are
    ``floor(level) * 2**face_bits + column`` with levels clamped to ``[0, max_level]``.
    """

    def __init__(self, z64: Tensor, face_bits: int):
        self.levels = float(1 << min(32, 51 - face_bits))
        if z64.numel():
            z_low, z_high = torch.aminmax(z64)
        else:
            z_low = z_high = z64.new_zeros(())
        self.scale = self.levels / torch.clamp(z_high - z_low, min=1e-30)
        self.offset = 4.0 - z_low * self.scale
        self.max_level = self.levels + 8.0
        self.key_scale = float(1 << face_bits)


def _group_keys(
    keys: Tensor,
    xy: Tensor,
    z64: Tensor,
    corner_ids: Tensor,
    first_face: int,
    first_column: int,
    frame: _DepthFrame,
    num_faces: int,
    height: int,
    width: int,
    cull_backfaces: bool,
    chunk_elements: int,
    fused: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Rasterise the faces ``first_face ..`` (whole images) into ``keys``.

    Args:
        corner_ids: (3, f) batch-global vertex indices of the group's faces.
        first_column: column of the group's first usable face in the face tables.
    Returns:
        The group's face tables: ``face_ids`` (n,), ``face_corners`` (3, n), ``coefficients`` (6, n).
    """
    device, dtype = xy.device, xy.dtype
    group_faces = corner_ids.shape[1]
    # Orientation of every face: twice the signed area p - q, in the working dtype, with the faces
    # whose sign rounding could flip recomputed exactly (float64 products of float32 differences).
    xs, ys = xy[:, 0] - 0.5, xy[:, 1] - 0.5
    flat_ids = corner_ids.reshape(-1)
    cx = xs.index_select(0, flat_ids).view(3, group_faces)
    cy = ys.index_select(0, flat_ids).view(3, group_faces)
    p = (cx[1] - cx[0]) * (cy[2] - cy[0])
    q = (cy[1] - cy[0]) * (cx[2] - cx[0])
    twice_area = p - q
    if dtype != torch.float64:
        unsure = (twice_area.abs() <= (p.abs() + q.abs()) * _ORIENTATION_ERROR).nonzero().squeeze(1)
        if unsure.numel():
            ux, uy = cx.index_select(1, unsure).double(), cy.index_select(1, unsure).double()
            exact = (ux[1] - ux[0]) * (uy[2] - uy[0]) - (uy[1] - uy[0]) * (ux[2] - ux[0])
            # Keep the exact sign even where the value underflows the working dtype.
            tiny = torch.finfo(dtype).tiny
            twice_area[unsure] = (exact.abs().clamp(min=tiny) * exact.sign()).to(dtype)
    # Image y points down: a face whose model normal faces the viewer winds clockwise on screen.
    usable = twice_area < 0 if cull_backfaces else twice_area != 0
    local_ids = usable.nonzero().squeeze(1)
    drawable = local_ids.numel() > 0  # an empty group is neither compiled for nor drawn
    face_ids, face_corners, coefficients, edges, planes = _FACE_TABLES(
        cx, cy, twice_area, local_ids, corner_ids, z64, frame.scale, frame.offset, first_face, first_column,
        num_faces, height, width, fused=fused and drawable, device=device,
    )
    if drawable:
        _scatter_trapezoids(keys, edges, planes, width, frame, chunk_elements, fused)
    return face_ids, face_corners, coefficients


def _face_tables(
    cx: Tensor,
    cy: Tensor,
    twice_area: Tensor,
    local_ids: Tensor,
    corner_ids: Tensor,
    z64: Tensor,
    depth_scale: Tensor,
    depth_offset: Tensor,
    first_face: int,
    first_column: int,
    num_faces: int,
    height: int,
    width: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The tables of the usable faces ``local_ids`` of a group, and of their trapezoids (two per face).

    Args:
        cx, cy: (3, f) corner coordinates of the group's faces (pixel-index coordinates).
        twice_area: (f,) their signed doubled areas.
        local_ids: (n,) int64 the usable faces, in the group.
        corner_ids: (3, f) their batch-global vertex indices.
        z64: (B*V,) float64 vertex depths; ``depth_scale``, ``depth_offset``: the
            quantisation (:class:`_DepthFrame`), 0-dim float64.
        first_face: batch-global index of the group's first face.
        first_column: column of the group's first usable face in the face tables.
    Returns:
        ``face_ids`` (n,), ``face_corners`` (3, n), ``coefficients`` (6, n) (:func:`_barycentric_coefficients`),
        and the tables of the faces' upper trapezoids (columns ``0 .. n-1``) and lower ones
        (``n .. 2n-1``) that :func:`_scatter_trapezoids` takes: ``edges`` (8, 2n) in the working
        dtype and ``planes`` (5, 2n) float64.
    """
    dtype = cx.dtype
    face_ids = local_ids + first_face
    face_corners = torch.stack([corner_ids[k].index_select(0, local_ids) for k in range(3)])
    xa, xb, xc = (cx[k].index_select(0, local_ids) for k in range(3))
    ya, yb, yc = (cy[k].index_select(0, local_ids) for k in range(3))
    e1x, e1y, e2x, e2y = xb - xa, yb - ya, xc - xa, yc - ya
    inverse_area = 1.0 / twice_area.index_select(0, local_ids)
    coefficients = _barycentric_coefficients(xa, ya, e1x, e1y, e2x, e2y, inverse_area)

    # Depth in quantised levels, a plane over the image:
    # level(col, row) = origin + step_x * col + step_y * row (evaluated in float64).
    za, zb, zc = (z64.index_select(0, face_corners[k]) * depth_scale + depth_offset for k in range(3))
    dz1, dz2 = (zb - za).to(dtype), (zc - za).to(dtype)
    step_x = ((dz1 * e2y - dz2 * e1y) * inverse_area).double()
    step_y = ((dz2 * e1x - dz1 * e2x) * inverse_area).double()
    origin = za - step_x * xa.double() - step_y * ya.double()
    image_base = torch.div(face_ids, num_faces, rounding_mode="floor").double() * float(height * width)
    column = torch.arange(first_column, first_column + local_ids.shape[0], device=cx.device, dtype=torch.float64)

    # Corners sorted by y. The face is drawn as two trapezoids: rows above the middle corner between
    # the long edge (top to bottom corner) and the upper short edge, rows from the middle corner on
    # between the long edge and the lower short edge.
    x0, y0, x1, y1 = _sort_pair(xa, ya, xb, yb)
    x1, y1, x2, y2 = _sort_pair(x1, y1, xc, yc)
    x0, y0, x1, y1 = _sort_pair(x0, y0, x1, y1)
    long_edge = _edge(x0, y0, x2, y2)
    top, middle, bottom = (torch.ceil(y).clamp(0, height) for y in (y0, y1, y2))
    # Upper and lower trapezoids side by side, (2, n): each row of the tables is one (2n,) row.
    start, stop = torch.stack([top, middle]), torch.stack([middle, bottom])
    short_edge = _edge(torch.stack([x0, x1]), torch.stack([y0, y1]), torch.stack([x1, x2]), torch.stack([y1, y2]))
    start64 = start.double()
    both = start.shape
    edges = torch.stack([stop - start, start, *(part.expand(both) for part in long_edge), *short_edge]).view(8, -1)
    planes = torch.stack([origin + step_y * start64, image_base + start64 * width, step_x.expand(both),
                          step_y.expand(both), column.expand(both)]).view(5, -1)
    return face_ids, face_corners, coefficients, edges, planes


_FACE_TABLES = FusedKernel(_face_tables)


def _barycentric_coefficients(
    xa: Tensor, ya: Tensor, e1x: Tensor, e1y: Tensor, e2x: Tensor, e2y: Tensor, inverse_area: Tensor
) -> Tensor:
    """(6, n) ``g1x, g1y, g2x, g2y, xa, ya`` of n faces with corners a, a + e1, a + e2 and
    ``inverse_area = 1 / (e1 x e2)``: b1 = g1 . (p - a), b2 = g2 . (p - a), b0 = 1 - b1 - b2."""
    minus_inverse = -inverse_area
    return torch.stack([e2y * inverse_area, e2x * minus_inverse, e1y * minus_inverse, e1x * inverse_area, xa, ya])


def _first_pass_rows(device: torch.device, fused: bool) -> int:
    """Rows of every trapezoid in the first pass. FLAME-sized meshes at 224 px have 0-2 per
    trapezoid: one on CPU in eager runs (padded rows cost memory traffic), two with the fused
    kernels (there a padded row costs less than keeping the trapezoids with a second row), eight
    on GPUs (padding is cheap there; the kernel launches and host synchronisations of each
    further pass are not)."""
    if device.type != "cpu":
        return 8
    return 2 if fused else 1


def _edge(xa: Tensor, ya: Tensor, xb: Tensor, yb: Tensor) -> list[Tensor]:
    """An edge from its upper endpoint (xa, ya) to (xb, yb): ``[xa, ya, slope]``.

    Horizontal edges (which never bound a row) get slope 0 so that everything stays finite.
    """
    rise = yb - ya
    return [xa, ya, (xb - xa) / (rise + (rise == 0).to(rise.dtype))]


def _scatter_trapezoids(
    keys: Tensor, edges: Tensor, planes: Tensor, width: int, frame: _DepthFrame, chunk_elements: int, fused: bool
) -> None:
    """Write the keys of ``n`` trapezoids, rows in passes.

    The first pass takes the first rows of every trapezoid (:func:`_first_pass_rows`), the
    later ones further rows of the trapezoids that have them (doubling the rows per pass), so
    that the work follows the trapezoids' heights without sorting.

    Args:
        edges: (8, n) in the working dtype: ``rows`` (the trapezoid's row count), ``row_start``
            (its first row), then its long edge and its short edge (three rows each, :func:`_edge`).
        planes: (5, n) float64: the depth level at column 0 of the first row, the flat pixel
            index of that row's column 0, the depth-level steps per column and per row, and the
            face's key bits (its column in the face tables).
    """
    first_row, pass_rows = 0, _first_pass_rows(keys.device, fused)
    while True:
        _scatter_rows(keys, edges, planes, first_row, pass_rows, width, frame, chunk_elements, fused)
        first_row += pass_rows
        pass_rows = first_row
        remaining = (edges[0] > first_row).nonzero().squeeze(1)
        if remaining.numel() == 0:
            return
        edges, planes = _SELECT_TRAPEZOIDS(edges, planes, remaining, fused=fused, device=keys.device)


def _select_trapezoids(edges: Tensor, planes: Tensor, chosen: Tensor) -> tuple[Tensor, Tensor]:
    """The columns ``chosen`` (m,) of the trapezoid tables ``edges`` (8, n) and ``planes`` (5, n)."""
    return edges[:, chosen], planes[:, chosen]


def _select_trapezoids_eager(edges: Tensor, planes: Tensor, chosen: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`_select_trapezoids` as eager PyTorch runs it fastest (1-D gathers written in place)."""
    tables = edges.new_empty((edges.shape[0], chosen.shape[0])), planes.new_empty((planes.shape[0], chosen.shape[0]))
    for source, table in zip((edges, planes), tables):
        for k in range(source.shape[0]):
            torch.index_select(source[k], 0, chosen, out=table[k])
    return tables


_SELECT_TRAPEZOIDS = FusedKernel(_select_trapezoids, eager=_select_trapezoids_eager)


def _scatter_rows(
    keys: Tensor,
    edges: Tensor,
    planes: Tensor,
    first_row: int,
    rows: int,
    width: int,
    frame: _DepthFrame,
    chunk_elements: int,
    fused: bool,
) -> None:
    """Write the nearest-face keys of rows ``first_row .. first_row + rows - 1`` of ``n`` trapezoids.

    Row stage, (rows, n): each row's covered span ``[first, first + length)``
    between the two edges' crossings (half-open in x and in y). Each edge's
    crossing is computed from its upper endpoint with the same float
    operations in whichever face evaluates it, so two faces sharing an edge
    see bit-identical crossings: a pixel centre on a shared edge or vertex
    belongs to exactly one of them (the top-left rule in y-down coordinates),
    with no cracks and no double hits. Candidate stage: the spans are laid end
    to end, every covered pixel once; one ``scatter_reduce`` (``amin``) per
    chunk keeps the smallest key per pixel. Eager runs write per-row tables
    (:func:`_row_tables`) and gather them per candidate (:func:`_candidate_keys`);
    fused runs do the same arithmetic per candidate (:func:`_plane_candidate_keys`).

    Args:
        keys: (B*H*W,) float64 key buffer, updated in place.
        edges, planes: the trapezoids' tables (:func:`_scatter_trapezoids`).
        frame: the depth quantisation (levels clamped to ``[0, frame.max_level]``).
    """
    row_count, row_start, long_xa, long_ya, long_slope, short_xa, short_ya, short_slope = edges
    level_start, pixel_start, step_x, step_y, face_key = planes
    device = row_start.device

    first, length = _ROW_SPANS(row_count, row_start, long_xa, long_ya, long_slope, short_xa, short_ya, short_slope,
                               first_row, rows, width, fused=fused, device=device)
    ends = torch.cumsum(length, 0)
    total = int(ends[-1])
    if total == 0:
        return
    starts = ends - length
    if not fused:
        level_m0, pixel_m0, row_step, row_key = _row_tables(first, starts, level_start, pixel_start, step_x, step_y,
                                                            face_key, first_row, rows, width)
    for begin_row, end_row in _chunk_bounds(ends, total, chunk_elements):
        begin = 0 if begin_row == 0 else int(starts[begin_row])
        end = total if end_row == ends.numel() else int(ends[end_row - 1])
        if end <= begin:
            continue
        row_starts = starts[begin_row:end_row] - begin
        marks = torch.zeros(end - begin + 1, dtype=torch.int64, device=device)
        marks.scatter_add_(0, row_starts, torch.ones_like(row_starts))
        row_of = torch.cumsum(marks[:-1], 0).add_(begin_row - 1)
        if fused:
            index, key = _PLANE_CANDIDATE_KEYS(row_of, begin, first, starts, planes, first_row, width, frame.max_level,
                                               frame.key_scale, fused=True, device=device)
        else:
            index, key = _candidate_keys(row_of, begin, pixel_m0, level_m0, row_step, row_key, frame.max_level,
                                         frame.key_scale)
        keys.scatter_reduce_(0, index, key, reduce="amin")


def _row_spans(
    row_count: Tensor,
    row_start: Tensor,
    long_xa: Tensor,
    long_ya: Tensor,
    long_slope: Tensor,
    short_xa: Tensor,
    short_ya: Tensor,
    short_slope: Tensor,
    first_row: int,
    rows: int,
    width: int,
) -> tuple[Tensor, Tensor]:
    """Row stage, (rows, n): the covered columns ``[first, first + length)`` of rows ``first_row ..
    first_row + rows - 1`` of n trapezoids (length 0 past a trapezoid's last row).

    Returns:
        ``first`` (rows, n) in the working dtype and ``length`` (rows * n,) int64.
    """
    offset = torch.arange(first_row, first_row + rows, device=row_start.device, dtype=row_start.dtype)[:, None]
    row = row_start + offset
    long_x = (row - long_ya) * long_slope + long_xa
    short_x = (row - short_ya) * short_slope + short_xa
    first = torch.minimum(long_x, short_x).ceil().clamp(0.0, float(width))
    length = (torch.maximum(long_x, short_x).ceil().clamp(max=float(width)) - first).clamp(min=0.0)
    return first, (length * (offset < row_count)).long().view(-1)


def _row_tables(
    first: Tensor,
    starts: Tensor,
    level_start: Tensor,
    pixel_start: Tensor,
    step_x: Tensor,
    step_y: Tensor,
    face_key: Tensor,
    first_row: int,
    rows: int,
    width: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per row (rows * n,), with m the candidate's index in the pass: level = level_m0 + step_x * m and
    pixel = pixel_m0 + m (the row's values at its first pixel, moved back to m = 0).

    Args:
        first: (rows, n) first covered column of each row; ``starts``: (rows * n,) int64 index in the
            pass of each row's first candidate.
    Returns:
        ``level_m0``, ``pixel_m0``, ``row_step`` (the depth-level step) and ``row_key`` (the face's key
        bits), each (rows * n,) float64.
    """
    offset = torch.arange(first_row, first_row + rows, device=first.device, dtype=torch.float64)[:, None]
    shift = first.double() - starts.view(first.shape)
    level_m0 = (step_x * shift + (level_start + step_y * offset)).view(-1)
    pixel_m0 = (shift + (pixel_start + offset * width)).view(-1)
    return level_m0, pixel_m0, step_x.expand(rows, -1).reshape(-1), face_key.expand(rows, -1).reshape(-1)


def _candidate_keys(
    row_of: Tensor,
    begin: int,
    pixel_m0: Tensor,
    level_m0: Tensor,
    row_step: Tensor,
    row_key: Tensor,
    max_level: float,
    key_scale: float,
) -> tuple[Tensor, Tensor]:
    """Pixel and key of the candidates ``begin, begin + 1, ..`` of a pass.

    Args:
        row_of: (M,) int64 the row (in the pass) of each candidate.
        pixel_m0, level_m0, row_step, row_key: per row of the pass (:func:`_row_tables`).
        max_level: the highest depth level; ``key_scale``: ``2**face_bits``.
    Returns:
        ``index`` (M,) int64 flat pixel index and ``key`` (M,) float64.
    """
    m = torch.arange(begin, begin + row_of.shape[0], device=row_of.device, dtype=torch.float64)
    index = (pixel_m0.index_select(0, row_of) + m).long()
    key = (row_step.index_select(0, row_of) * m).add_(level_m0.index_select(0, row_of)).floor_()
    return index, key.clamp_(0.0, max_level).mul_(key_scale).add_(row_key.index_select(0, row_of))


def _plane_candidate_keys(
    row_of: Tensor,
    begin: int,
    first: Tensor,
    starts: Tensor,
    planes: Tensor,
    first_row: int,
    width: int,
    max_level: float,
    key_scale: float,
) -> tuple[Tensor, Tensor]:
    """:func:`_row_tables` and :func:`_candidate_keys` in one pass over the candidates (the compiled route).

    Each candidate takes what it needs of its row (``first``, ``starts``) and of its trapezoid
    (``planes``) and does its row's arithmetic itself, in the same order, so the keys are the
    same bits; compiled, nothing per row is written out.

    Args:
        row_of: (M,) int64 the row (in the pass) of each candidate; row ``r`` is row
            ``first_row + r // n`` of trapezoid ``r % n``.
        first: (rows, n) and ``starts`` (rows * n,): as for :func:`_row_tables`.
        planes: (5, n) float64 the trapezoids' planes (:func:`_scatter_trapezoids`).
    Returns:
        ``index`` (M,) int64 flat pixel index and ``key`` (M,) float64.
    """
    level_start, pixel_start, step_x, step_y, face_key = planes
    trapezoids = level_start.shape[0]
    trapezoid = row_of % trapezoids
    offset = (row_of // trapezoids + first_row).double()
    shift = first.reshape(-1)[row_of].double() - starts[row_of]
    row_step = step_x[trapezoid]
    level_m0 = row_step * shift + (level_start[trapezoid] + step_y[trapezoid] * offset)
    pixel_m0 = shift + (pixel_start[trapezoid] + offset * width)
    m = torch.arange(begin, begin + row_of.shape[0], device=row_of.device, dtype=torch.float64)
    key = (row_step * m + level_m0).floor().clamp(0.0, max_level) * key_scale + face_key[trapezoid]
    return (pixel_m0 + m).long(), key


_PLANE_CANDIDATE_KEYS = FusedKernel(_plane_candidate_keys)
_ROW_SPANS = FusedKernel(_row_spans)


def _chunk_bounds(ends: Tensor, total: int, chunk_elements: int) -> list[tuple[int, int]]:
    """Ranges of rows ``[begin, end)`` with about ``chunk_elements`` candidates each (at least one row).

    Args:
        ends: (R,) cumulative candidate counts of the rows.
        total: ``ends[-1]``.
    """
    rows = ends.numel()
    if total <= chunk_elements:
        return [(0, rows)]
    targets = torch.arange(chunk_elements, total, chunk_elements, device=ends.device)
    cuts = sorted({0, rows, *torch.searchsorted(ends, targets, right=True).tolist()})
    return list(zip(cuts[:-1], cuts[1:]))


def _pixel_barycentrics(
    coefficients: Tensor, pixel_faces: Tensor, pixels: Tensor, batch: int, height: int, width: int
) -> tuple[Tensor, Tensor]:
    """Barycentrics of the covered pixel centres in their visible faces.

    Args:
        coefficients: (6, n) per face ``g1x, g1y, g2x, g2y, x0, y0`` (:func:`_barycentric_coefficients`,
            pixel-index coordinates: the centre of pixel ``(i, j)`` is ``(j, i)``).
        pixel_faces: (N,) the face (column of ``coefficients``) of each pixel.
        pixels: (N,) flat index into (B, H, W) of each pixel.
    Returns:
        ``gradients`` (4, N): ``g1x, g1y, g2x, g2y`` of each pixel's face, and ``bary`` (3, N).
    """
    centre_x, centre_y = _pixel_centres(pixels, batch, height, width, coefficients.dtype)
    per_pixel = coefficients.index_select(1, pixel_faces)
    g1x, g1y, g2x, g2y, x0, y0 = per_pixel
    dx = centre_x - x0
    dy = centre_y - y0
    b1 = g1x * dx + g1y * dy
    b2 = g2x * dx + g2y * dy
    return per_pixel[:4], torch.stack([(1.0 - b1) - b2, b1, b2])


def _pixel_barycentrics_eager(
    coefficients: Tensor, pixel_faces: Tensor, pixels: Tensor, batch: int, height: int, width: int
) -> tuple[Tensor, Tensor]:
    """:func:`_pixel_barycentrics` as eager PyTorch runs it fastest (1-D gathers, results written in place)."""
    centre_x, centre_y = _pixel_centres(pixels, batch, height, width, coefficients.dtype)
    gradients = coefficients.new_empty((4, pixel_faces.shape[0]))
    for k in range(4):
        torch.index_select(coefficients[k], 0, pixel_faces, out=gradients[k])
    g1x, g1y, g2x, g2y = gradients
    dx = centre_x.sub_(coefficients[4].index_select(0, pixel_faces))
    dy = centre_y.sub_(coefficients[5].index_select(0, pixel_faces))
    bary = gradients.new_empty((3, pixel_faces.shape[0]))
    torch.mul(g1x, dx, out=bary[1]).add_(g1y * dy)  # not addcmul_, which fuses multiply-adds
    torch.mul(g2x, dx, out=bary[2]).add_(g2y * dy)
    torch.sub(1.0 - bary[1], bary[2], out=bary[0])
    return gradients, bary


_PIXEL_BARYCENTRICS = FusedKernel(_pixel_barycentrics, eager=_pixel_barycentrics_eager)


class _Barycentrics(torch.autograd.Function):
    """Screen-space barycentric coordinates of pixel centres in given faces, with an analytic backward.

    For a fixed point p, moving corner j by d changes the barycentrics as
    moving p by ``-b_j d`` would, so ``db_k / dv_j = -b_j * grad_p(b_k)``.
    """

    @staticmethod
    def forward(
        ctx,
        pixel_xy: Tensor,
        coefficients: Tensor,
        pixel_faces: Tensor,
        packed_corners: Tensor,
        pixels: Tensor,
        image_shape: tuple[int, int, int],
        fused: bool,
    ) -> Tensor:
        """Barycentrics (3, N) of N pixel centres.

        Args:
            pixel_xy: (B*V, 2) vertex coordinates the faces were taken from
                (only routes the gradient: the geometry is in ``coefficients``).
            coefficients: (6, n) per face: ``g1x, g1y, g2x, g2y``, the
                gradients of b1 and b2 with respect to the point (b0 = 1 - b1 - b2),
                and ``x0, y0``, its first corner (:func:`_barycentric_coefficients`,
                pixel-index coordinates).
            pixel_faces: (N,) the face (column of ``coefficients``) of each pixel.
            packed_corners: (3, N) rows of ``pixel_xy`` of each pixel's face corners.
            pixels: (N,) flat index into ``image_shape`` (B, H, W) of each pixel.
            fused: compute as a compiled kernel on CPU (:mod:`augane.render.fused`).
        """
        gradients, bary = _PIXEL_BARYCENTRICS(coefficients, pixel_faces, pixels, *image_shape, fused=fused,
                                              device=pixels.device)
        ctx.save_for_backward(gradients, bary, packed_corners)
        ctx.num_points = pixel_xy.shape[0]
        ctx.fused = fused
        return bary

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_bary: Tensor):
        gradients, bary, packed_corners = ctx.saved_tensors
        products = _BARYCENTRIC_GRADIENTS(grad_bary.contiguous(), gradients, bary, fused=ctx.fused,
                                          device=grad_bary.device)
        grad = grad_bary.new_zeros((2, ctx.num_points))
        # One scatter-add along the vertices for both axes and all three corners (the axes run in parallel).
        grad.scatter_add_(1, packed_corners.reshape(1, -1).expand(2, -1), products.view(2, -1))
        return grad.T, None, None, None, None, None, None


def _barycentric_gradients(grad_bary: Tensor, gradients: Tensor, bary: Tensor) -> Tensor:
    """The per-pixel terms of :class:`_Barycentrics`' backward pass.

    Args:
        grad_bary: (3, N) gradient of the barycentrics; ``gradients``: (4, N) ``g1x, g1y, g2x, g2y``;
            ``bary``: (3, N).
    Returns:
        (2, 3, N): what corner k of each pixel's face receives along x and y, ``b_k`` times minus
        the gradient with respect to the point (plain products and sums, no FMA, eager or compiled).
    """
    weight1 = grad_bary[0] - grad_bary[1]
    weight2 = grad_bary[0] - grad_bary[2]
    point = weight1 * gradients[:2] + weight2 * gradients[2:]
    return bary[None] * point[:, None]


_BARYCENTRIC_GRADIENTS = FusedKernel(_barycentric_gradients)
