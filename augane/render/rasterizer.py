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
Visibility is decided without gradients:

1. Per face: its clipped screen box, an exact orientation test (float64:
   products of float32 differences are exact there; zero-area faces are
   skipped, back faces too when culling), its corners sorted by y, its
   three edges and its depth plane.
2. Faces are grouped by the size class of their box (tight classes on CPU,
   square powers of two on GPUs, where padding is cheap and kernel launches
   are not) and processed group by group in chunks of bounded size, tensors
   laid out with the face axis last.
3. Row stage, per face and box row: the covered pixel columns
   ``[first, first + length)`` of the row (classic scanline, half-open in x
   and in y). Each edge's crossing is computed from its upper endpoint with
   the same float operations in whichever face evaluates it, so two faces
   sharing an edge see bit-identical crossings: a pixel centre on a shared
   edge or vertex belongs to exactly one of them (the top-left rule in y-down
   coordinates), with no cracks and no double hits.
4. Candidate stage, per face, row and column: a key packs a quantised depth
   above the batch-global face index (an integer held exactly in a float64;
   candidates past the row's span get ``+2**62``); one ``scatter_reduce``
   (``amin``) per chunk keeps the nearest face per pixel (ties: lower index).

The work is proportional to the faces' screen boxes, never to faces x pixels.
The barycentrics of each pixel's winning face are then recomputed with an
analytic backward pass (the same quantity pytorch3d differentiates), so
images are differentiable with respect to vertex positions wherever the
visible face does not change.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from augane.flame.camera import normalised_to_pixels

_KEY_OUTSIDE = float(1 << 62)
"""Added to the key of a candidate that is not covered by its face."""

_KEY_LIMIT = float(1 << 61)
"""Keys below this value are covered pixels (real keys are below 2**52; outside ones above 2**62 - 2**52)."""

_MAX_CLASS_LOG2 = 15
"""Screen boxes up to 2**15 pixels on a side (larger images are refused)."""


def _default_chunk_elements(device: torch.device) -> int:
    """Candidate pixels processed per step: cache-sized on CPU, large on GPUs."""
    return 1 << 16 if device.type == "cpu" else 1 << 22


def normalise_image_size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """``image_size`` as ``(height, width)``; an int means a square image."""
    if isinstance(image_size, int):
        height = width = image_size
    else:
        if len(image_size) != 2:
            raise ValueError(f"image_size must be an int or (height, width), got {image_size!r}")
        height, width = (int(v) for v in image_size)
    if not (1 <= height <= (1 << _MAX_CLASS_LOG2) and 1 <= width <= (1 << _MAX_CLASS_LOG2)):
        raise ValueError(f"image size must be between 1 and {1 << _MAX_CLASS_LOG2} pixels, got {height}x{width}")
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
        out = values.new_full((self.batch_size * height * width, values.shape[-1]), background)
        out.index_copy_(0, self.pixels, values)
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
            canvas = values.new_full(shape, float(background))
        area = height * width
        first = self.pixels + self.packed_batch * (channels - 1) * area
        index = (first[None, :] + torch.arange(channels, device=first.device)[:, None] * area).reshape(-1)
        return canvas.reshape(-1).index_put((index,), values.T.reshape(-1)).view(shape)

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


def rasterize(
    vertices: Tensor,
    faces: Tensor,
    image_size: int | tuple[int, int],
    cull_backfaces: bool = False,
    chunk_elements: int | None = None,
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
    if not bool(torch.isfinite(vertices).all()):
        raise ValueError("vertices contain NaN or infinite values")
    pixel_xy = normalised_to_pixels(vertices[..., :2], width, height).reshape(-1, 2)
    offsets = torch.arange(batch, device=device) * num_vertices
    corner_ids = (faces.T[:, None, :] + offsets[None, :, None]).reshape(3, batch * num_faces)
    chunk = chunk_elements or _default_chunk_elements(device)
    with torch.no_grad():
        flat = pixel_xy.detach()
        flat_x, flat_y = flat[:, 0].contiguous(), flat[:, 1].contiguous()
        flat_z = vertices[..., 2].detach().reshape(-1)
        corner_x = [flat_x.index_select(0, corner_ids[k]) for k in range(3)]
        corner_y = [flat_y.index_select(0, corner_ids[k]) for k in range(3)]
        corner_z = [flat_z.index_select(0, corner_ids[k]).double() for k in range(3)]
        keys, face_bits = _visibility_keys(
            corner_x, corner_y, corner_z, batch, num_faces, height, width, cull_backfaces, chunk
        )
        pixels = (keys < _KEY_LIMIT).nonzero().squeeze(1)
        packed_faces = keys.index_select(0, pixels).long() & ((1 << face_bits) - 1)
        packed_corners = corner_ids.new_empty((3, pixels.numel()))
        for k in range(3):
            torch.index_select(corner_ids[k], 0, packed_faces, out=packed_corners[k])
        centre_x, centre_y = _pixel_centres(pixels, height, width, flat.dtype)
    packed_bary = _Barycentrics.apply(
        pixel_xy, corner_x, corner_y, packed_faces, packed_corners, centre_x, centre_y
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
    )


def _pixel_centres(pixels: Tensor, height: int, width: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates (x, y) of flat pixel indices into (B, H, W).

    Float64 division of ``index + 0.5`` keeps the quotient half a step away
    from integers, so ``floor`` is exact (and much faster than int64 division).
    """
    index = pixels.double() + 0.5
    row_all = torch.floor(index * (1.0 / width))
    row = row_all - torch.floor((row_all + 0.5) * (1.0 / height)) * height
    return (index - row_all * width).to(dtype), (row + 0.5).to(dtype)


def _select(condition: Tensor, if_true: Tensor, if_false: Tensor) -> Tensor:
    """``torch.where`` for finite floats, exact, as arithmetic (much faster than ``where`` on CPU)."""
    chosen = condition.to(if_true.dtype)
    return if_true * chosen + if_false * (1.0 - chosen)


def _sort_pair(xa: Tensor, ya: Tensor, xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Order two points by y (ties keep their order)."""
    swap = yb < ya
    return _select(swap, xb, xa), torch.minimum(ya, yb), _select(swap, xa, xb), torch.maximum(ya, yb)


_BOX_SIZES_CPU = sorted(
    {1, 2, 3} | {m << k for m in (2, 3) for k in range(1, _MAX_CLASS_LOG2) if m << k <= 1 << _MAX_CLASS_LOG2}
)
"""Box sides on CPU: 1, 2, 3, 4, 6, 8, 12, ... (at most 1.5x padding per side, many groups)."""

_BOX_SIZES_GPU = [1 << k for k in range(_MAX_CLASS_LOG2 + 1)]
"""Box sides on GPUs: powers of two, square boxes (padding is cheap there, kernel launches are not)."""


@functools.lru_cache(maxsize=8)
def _box_sizes(device: torch.device) -> tuple[list[int], Tensor, bool]:
    """Box side classes for ``device``, a lookup table extent (0..2**15) -> smallest class >= extent,
    and whether boxes are square (one class for both sides)."""
    sizes = _BOX_SIZES_CPU if device.type == "cpu" else _BOX_SIZES_GPU
    extents = torch.arange((1 << _MAX_CLASS_LOG2) + 1)
    table = torch.bucketize(extents, torch.tensor(sizes))
    return sizes, table.to(device), device.type != "cpu"


def _visibility_keys(
    corner_x: list[Tensor],
    corner_y: list[Tensor],
    corner_z: list[Tensor],
    batch: int,
    num_faces: int,
    height: int,
    width: int,
    cull_backfaces: bool,
    chunk_elements: int,
) -> tuple[Tensor, int]:
    """Nearest-face key per pixel (no gradients).

    Pixel index conventions inside: a pixel column ``c`` is covered by a row
    span ``[left, right)`` (continuous x) when ``ceil(left - 0.5) <= c <
    ceil(right - 0.5)``; the ``- 0.5`` is folded into the per-face constants.

    Args:
        corner_x, corner_y: three (B*F,) pixel coordinates of each face's corners.
        corner_z: three (B*F,) float64 normalised depths of the corners.
    Returns:
        ``(keys, face_bits)``: (B*H*W,) float64 keys, ``>= _KEY_LIMIT`` where
        no face covers the pixel centre, else the integer
        ``depth_level * 2**face_bits + b*F + f`` (below 2**53, so exact).
    """
    device = corner_x[0].device
    total_faces = batch * num_faces
    # The pad takes the candidates of spans that end at the last pixel (first <= width, box <= 1.5 width + 1).
    keys = torch.full((batch * height * width + 3 * width + 2,), math.inf, dtype=torch.float64, device=device)
    if total_faces == 0:
        return keys[: batch * height * width], 1
    face_bits = max(1, math.ceil(math.log2(total_faces + 1)))

    # Screen boxes in pixel-index coordinates (shifted by half a pixel: pixel c covers [c, c + 1)).
    xs = [x - 0.5 for x in corner_x]
    ys = [y - 0.5 for y in corner_y]
    row_start = torch.ceil(torch.minimum(torch.minimum(ys[0], ys[1]), ys[2])).clamp_(0, height)
    row_stop = torch.ceil(torch.maximum(torch.maximum(ys[0], ys[1]), ys[2])).clamp_(0, height)
    col_start = torch.ceil(torch.minimum(torch.minimum(xs[0], xs[1]), xs[2])).clamp_(0, width)
    col_stop = torch.ceil(torch.maximum(torch.maximum(xs[0], xs[1]), xs[2])).clamp_(0, width)
    rows = row_stop - row_start
    cols = col_stop - col_start

    # Exact orientation in float64 (products of float32 differences are exact there).
    xa, xb, xc = (x.double() for x in corner_x)
    ya, yb, yc = (y.double() for y in corner_y)
    twice_area = (xb - xa) * (yc - ya) - (yb - ya) * (xc - xa)
    usable = (twice_area != 0) & (rows > 0) & (cols > 0)
    if cull_backfaces:
        # Image y points down: a face whose model normal faces the viewer winds clockwise on screen.
        usable &= twice_area < 0

    # Group the usable faces by the size class of their clipped screen box, keeping the faces'
    # own order inside a group (mesh order is spatially coherent: the scatter is faster).
    sizes, size_class, square = _box_sizes(device)
    num_sizes = len(sizes)
    if square:
        side = size_class.index_select(0, torch.maximum(rows, cols).long())
        group = side * num_sizes + side
    else:
        group = size_class.index_select(0, rows.long()) * num_sizes + size_class.index_select(0, cols.long())
    group = group * usable + (~usable) * (num_sizes * num_sizes)
    counts = torch.bincount(group, minlength=num_sizes * num_sizes + 1)[:-1].tolist()
    order = torch.sort(group, stable=True).indices[: sum(counts)]

    # Per usable face, in group order: corners sorted by y, box, depth plane.
    def take(values: Tensor) -> Tensor:
        return values.index_select(0, order)

    xs, ys = [take(x) for x in xs], [take(y) for y in ys]
    x0, y0, x1, y1 = _sort_pair(xs[0], ys[0], xs[1], ys[1])
    x1, y1, x2, y2 = _sort_pair(x1, y1, xs[2], ys[2])
    x0, y0, x1, y1 = _sort_pair(x0, y0, x1, y1)
    row_start, col_start, last_row = take(row_start), take(col_start), take(row_stop) - 1.0

    # Depth in quantised levels of the batch's depth range: the level at the box's first pixel
    # centre plus per-pixel steps along x and y.
    z_low = min(float(z.min()) for z in corner_z)
    z_high = max(float(z.max()) for z in corner_z)
    levels = float(1 << min(32, 42 - face_bits))
    scale = levels / max(z_high - z_low, 1e-30)
    za, zb, zc = (take(z).sub_(z_low).mul_(scale).add_(4.0) for z in corner_z)
    pa, pb, pc = ((x.double(), y.double()) for x, y in zip(xs, ys))
    e1x, e1y, e2x, e2y = pb[0] - pa[0], pb[1] - pa[1], pc[0] - pa[0], pc[1] - pa[1]
    inverse_area = 1.0 / take(twice_area)
    dz1, dz2 = zb - za, zc - za
    step_x = (dz1 * e2y - dz2 * e1y) * inverse_area
    step_y = (dz2 * e1x - dz1 * e2x) * inverse_area
    origin = za + step_x * (col_start.double() - pa[0]) + step_y * (row_start.double() - pa[1])
    base = (torch.div(order, num_faces, rounding_mode="floor") * height + row_start.long()) * width
    # One matrix per dtype, so that a chunk is three slices rather than one per quantity.
    geometry = torch.stack(
        [y1, row_start, col_start, last_row] + _edge(x0, y0, x2, y2) + _edge(x0, y0, x1, y1) + _edge(x1, y1, x2, y2)
    )[:, None]
    depth = torch.stack([origin, step_x, step_y, order.double()])[:, None]
    base = base[None]

    start = 0
    for group_id, count in enumerate(counts):
        if count == 0:
            continue
        box_rows = sizes[group_id // num_sizes]
        box_cols = sizes[group_id % num_sizes]
        step = max(1, chunk_elements // (box_rows * box_cols))
        for first in range(start, start + count, step):
            last = min(start + count, first + step)
            _scatter_group(
                keys,
                geometry[:, :, first:last].unbind(0),
                depth[:, :, first:last].unbind(0),
                base[:, first:last],
                box_rows,
                box_cols,
                width,
                face_bits,
                levels + 64.0,
            )
        start += count
    return keys[: batch * height * width], face_bits


def _edge(xa: Tensor, ya: Tensor, xb: Tensor, yb: Tensor) -> list[Tensor]:
    """An edge from its upper endpoint (xa, ya) to (xb, yb): ``[xa, ya, slope, x_low, x_high]``.

    Horizontal edges (which never bound a row) get slope 0 so that everything stays finite.
    """
    rise = yb - ya
    slope = (xb - xa) / (rise + (rise == 0).to(rise.dtype))
    return [xa, ya, slope, torch.minimum(xa, xb), torch.maximum(xa, xb)]


def _edge_x(row: Tensor, xa: Tensor, ya: Tensor, slope: Tensor, x_low: Tensor, x_high: Tensor) -> Tensor:
    """x where an edge (see :func:`_edge`) crosses row ``row``, clamped to the edge's x extent.

    Always evaluated from the edge's upper endpoint with the same operations,
    so every face sharing the edge gets the same bits.
    """
    return torch.clamp(xa + (row - ya) * slope, x_low, x_high)


def _scatter_group(
    keys: Tensor,
    geometry: tuple[Tensor, ...],
    depth: tuple[Tensor, ...],
    base: Tensor,
    box_rows: int,
    box_cols: int,
    width: int,
    face_bits: int,
    max_level: float,
) -> None:
    """Write the nearest-face keys of ``n`` faces whose boxes fit ``box_rows x box_cols``.

    Each box row becomes the face's covered span ``[first, stop)`` of that
    row, and candidate ``j`` of the row is pixel ``first + j`` (a candidate
    is real while ``j < stop - first``). Tensors keep the face axis last, so
    every broadcast runs over long contiguous rows. Box rows past the face's
    own rows repeat its last row (harmless duplicates for a minimum).

    Args:
        keys: (B*H*W + pad,) float64 key buffer, updated in place; the pad
            (at least ``box_cols``) absorbs candidates past the last pixel.
        geometry: (1, n) tensors: ``y1`` (the middle corner's y, pixel-index
            coordinates), ``row_start, col_start, last_row``, then the long
            edge (top to bottom corner), the upper and the lower short edge,
            five tensors each (:func:`_edge`).
        depth: (1, n) float64 ``origin, step_x, step_y`` (depth levels at the
            box's first pixel, per column, per row) and the face id.
        base: (1, n) int64 flat index of the pixel ``(row_start, 0)``.
        max_level: depth levels of covered pixels lie in ``[0, max_level]``.
    """
    device, dtype = base.device, geometry[0].dtype
    row_offsets = torch.arange(box_rows, device=device, dtype=dtype)[:, None]
    col_offsets = torch.arange(box_cols, device=device, dtype=torch.float64)[:, None]
    scale = float(1 << face_bits)
    key, index = _candidate_keys(geometry, depth, base, row_offsets, col_offsets, width, scale, max_level)
    keys.scatter_reduce_(0, index, key, reduce="amin")


def _candidate_keys(
    geometry: tuple[Tensor, ...],
    depth: tuple[Tensor, ...],
    base: Tensor,
    row_offsets: Tensor,
    col_offsets: Tensor,
    width: int,
    scale: float,
    max_level: float,
) -> tuple[Tensor, Tensor]:
    """Flat keys and pixel indices of the candidates of a group (see :func:`_scatter_group`).

    Args:
        row_offsets: (box_rows, 1) ``0..box_rows - 1`` in the geometry's dtype.
        col_offsets: (box_cols, 1) ``0..box_cols - 1`` as float64.
    Returns:
        ``(key, index)``: (box_rows * box_cols * n,) float64 keys and int64 pixel indices.
    """
    y1, row_start, col_start, last_row = geometry[:4]
    long_edge, upper_edge, lower_edge = geometry[4:9], geometry[9:14], geometry[14:19]
    origin, step_x, step_y, face_id = depth
    dtype = y1.dtype

    # Row stage (box_rows, n): the covered columns [first, first + length) of each row, clipped to the image.
    row = torch.minimum(row_start + row_offsets, last_row)
    long_x = _edge_x(row, *long_edge)
    short_x = _select(row < y1, _edge_x(row, *upper_edge), _edge_x(row, *lower_edge))
    first = torch.ceil(torch.minimum(long_x, short_x)).clamp(0.0, float(width))
    length = torch.ceil(torch.maximum(long_x, short_x)).clamp(max=float(width)) - first
    row_offset = row - row_start
    level = origin + step_y * row_offset.double() + step_x * (first - col_start).double()
    key_row = torch.floor(level).clamp(0.0, max_level) * scale + face_id
    pixel_row = base + row_offset.long() * width + first.long()

    # Column stage (box_cols, n): depth steps along the span.
    key_col = torch.floor(step_x * col_offsets).clamp(-max_level, max_level) * scale

    # Candidate stage (box_rows, box_cols, n).
    beyond = col_offsets.to(dtype)[None] >= length[:, None]
    key = key_row[:, None] + key_col[None]
    key.add_(beyond, alpha=_KEY_OUTSIDE)
    index = pixel_row[:, None] + col_offsets.long()[None]
    return key.reshape(-1), index.reshape(-1)


class _Barycentrics(torch.autograd.Function):
    """Screen-space barycentric coordinates of pixel centres in given faces, with an analytic backward.

    For a fixed point p, moving corner j by d changes the barycentrics as
    moving p by ``-b_j d`` would, so ``db_k / dv_j = -b_j * grad_p(b_k)``.
    """

    @staticmethod
    def forward(
        ctx,
        pixel_xy: Tensor,
        corner_x: list[Tensor],
        corner_y: list[Tensor],
        packed_faces: Tensor,
        packed_corners: Tensor,
        centre_x: Tensor,
        centre_y: Tensor,
    ) -> Tensor:
        """pixel_xy (B*V, 2); corners three (B*F,); packed (N,), (3, N); centres (N,) -> bary (3, N)."""
        xa, xb, xc = (x.double() for x in corner_x)
        ya, yb, yc = (y.double() for y in corner_y)
        e1x, e1y, e2x, e2y = xb - xa, yb - ya, xc - xa, yc - ya
        twice_area = e1x * e2y - e1y * e2x
        inverse = 1.0 / (twice_area + (twice_area == 0).double())
        # Gradients of b1 and b2 with respect to the point (b0 = 1 - b1 - b2).
        grads = [e2y * inverse, -e2x * inverse, -e1y * inverse, e1x * inverse]
        g1x, g1y, g2x, g2y = (g.to(pixel_xy.dtype).index_select(0, packed_faces) for g in grads)
        dx = centre_x - corner_x[0].index_select(0, packed_faces)
        dy = centre_y - corner_y[0].index_select(0, packed_faces)
        b1 = g1x * dx + g1y * dy
        b2 = g2x * dx + g2y * dy
        bary = b1.new_empty((3, b1.shape[0]))
        torch.sub(1.0 - b1, b2, out=bary[0])
        bary[1] = b1
        bary[2] = b2
        ctx.save_for_backward(g1x, g1y, g2x, g2y, bary, packed_corners)
        ctx.num_points = pixel_xy.shape[0]
        return bary

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_bary: Tensor):
        g1x, g1y, g2x, g2y, bary, packed_corners = ctx.saved_tensors
        weight1 = grad_bary[1] - grad_bary[0]
        weight2 = grad_bary[2] - grad_bary[0]
        point_x = weight1 * g1x + weight2 * g2x
        point_y = weight1 * g1y + weight2 * g2y
        grad_x = point_x.new_zeros(ctx.num_points)
        grad_y = point_x.new_zeros(ctx.num_points)
        for k in range(3):
            grad_x.index_add_(0, packed_corners[k], -bary[k] * point_x)
            grad_y.index_add_(0, packed_corners[k], -bary[k] * point_y)
        return torch.stack([grad_x, grad_y], dim=1), None, None, None, None, None, None
