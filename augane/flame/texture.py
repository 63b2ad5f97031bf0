"""The UV albedo space driven by DECA's ``tex`` parameters, and the UV layout that maps it onto the mesh.

Albedo spaces (DECA's ``FLAMETex``):

* ``FLAME_texture.npz``: ``mean`` (512, 512, 3) and ``tex_dir`` (512, 512, 3,
  200), in 0-255 units; DECA divides both by 255.
* ``FLAME_albedo_from_BFM.npz``: ``MU`` (786432 values) and ``PC`` (786432,
  199), already in [0, 1].

DECA reshapes the mean to one row and the basis to (H * W * 3, K), evaluates
``mean + basis @ tex`` with the first ``n_tex`` (50) components, reshapes to a
(H, W, 3) image and swaps the channels ``[2, 1, 0]`` (the files store BGR),
for both layouts alike; :class:`AlbedoLayer` returns the same RGB texture. DECA
then resizes 512 -> 256 with nearest-neighbour sampling; here the resolution is
left to the caller (``resolution``).

The UV layout comes from an OBJ template (DECA's ``head_template.obj``: 5023
``v``, 5118 ``vt``, 9976 ``f`` with per-corner ``v/vt`` indices). UVs follow
the OBJ convention: ``u`` right, ``v`` up, both in [0, 1], so texel row
``(1 - v) * H`` (DECA samples with ``grid = (2u - 1, 1 - 2v)``). Renderers
must use the template's own ``faces`` with its ``uv_faces`` (as DECA does).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augane.errors import AssetError
from augane.io.atomic import write_bytes_atomic, write_text_atomic

FLAME_TEXTURE_LAYOUT = "FLAME_texture"
BFM_ALBEDO_LAYOUT = "FLAME_albedo_from_BFM"
_LAYOUT_KEYS = {FLAME_TEXTURE_LAYOUT: ("mean", "tex_dir"), BFM_ALBEDO_LAYOUT: ("MU", "PC")}


@dataclass(frozen=True)
class AlbedoSpace:
    """A linear UV albedo space, RGB.

    Attributes:
        mean: (H, W, 3) float32 mean albedo, RGB in [0, 1] (row 0 = top, v = 1).
        basis: (H, W, 3, K) float32 change per unit coefficient, RGB.
        layout: :data:`FLAME_TEXTURE_LAYOUT` or :data:`BFM_ALBEDO_LAYOUT`.
        source: the file it came from.
    """

    mean: np.ndarray
    basis: np.ndarray
    layout: str
    source: str = "<memory>"

    @property
    def num_components(self) -> int:
        return int(self.basis.shape[-1])

    @property
    def resolution(self) -> tuple[int, int]:
        """(H, W) of the texture."""
        return int(self.mean.shape[0]), int(self.mean.shape[1])


def _square_side(source: str, key: str, values: int) -> int:
    side = math.isqrt(values // 3)
    if values % 3 or side * side * 3 != values:
        raise AssetError(f"{source}: '{key}' has {values} values, not a square RGB texture (H * W * 3 with H == W)")
    return side


def load_albedo_space(path: str | Path, max_components: int | None = None) -> AlbedoSpace:
    """Load ``FLAME_texture.npz`` or ``FLAME_albedo_from_BFM.npz`` (layout told by its keys) as RGB in [0, 1].

    Args:
        path: the ``.npz`` file.
        max_components: keep at most this many basis components (saves memory:
            DECA uses 50 of FLAME's 200).
    Raises:
        AssetError: missing file, unknown keys, or shapes that do not form a
            square RGB texture and its basis.
    """
    source = str(path)
    if not Path(path).is_file():
        raise AssetError(f"albedo model {source} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            layout = next((name for name, keys in _LAYOUT_KEYS.items() if set(keys) <= set(archive.files)), None)
            if layout is None:
                raise AssetError(
                    f"{source}: albedo model has keys {sorted(archive.files)}; expected 'mean' and 'tex_dir' "
                    "(FLAME_texture.npz) or 'MU' and 'PC' (FLAME_albedo_from_BFM.npz)"
                )
            mean_key, basis_key = _LAYOUT_KEYS[layout]
            mean = np.asarray(archive[mean_key])
            basis = np.asarray(archive[basis_key])
    except AssetError:
        raise
    except (ValueError, OSError, EOFError) as err:
        raise AssetError(f"{source}: not a readable .npz of plain arrays: {err}") from None
    side = _square_side(source, mean_key, mean.size)
    if basis.size % mean.size:
        raise AssetError(f"{source}: '{basis_key}' has {basis.size} values, not a multiple of the {mean.size} texels")
    basis = basis.reshape(mean.size, -1)
    if max_components is not None:
        basis = basis[:, :max_components]
    scale = 1.0 / 255.0 if layout == FLAME_TEXTURE_LAYOUT else 1.0
    bgr_mean = mean.reshape(side, side, 3).astype(np.float32) * scale
    bgr_basis = basis.reshape(side, side, 3, basis.shape[1]).astype(np.float32) * scale
    if not (np.all(np.isfinite(bgr_mean)) and np.all(np.isfinite(bgr_basis))):
        raise AssetError(f"{source}: albedo model holds non-finite values")
    return AlbedoSpace(
        mean=np.ascontiguousarray(bgr_mean[:, :, ::-1]),
        basis=np.ascontiguousarray(bgr_basis[:, :, ::-1]),
        layout=layout,
        source=source,
    )


def write_albedo_space(path: str | Path, mean: np.ndarray, basis: np.ndarray) -> None:
    """Write an RGB albedo space in the ``FLAME_texture.npz`` layout (BGR, 0-255 units, compressed).

    Args:
        mean: (H, W, 3) RGB in [0, 1].
        basis: (H, W, 3, K) RGB per unit coefficient.
    """
    if mean.ndim != 3 or mean.shape[2] != 3 or basis.shape[:3] != mean.shape:
        raise ValueError(f"mean must be (H, W, 3) and basis (H, W, 3, K), got {mean.shape} and {basis.shape}")
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        mean=(mean[:, :, ::-1] * 255.0).astype(np.float32),
        tex_dir=(basis[:, :, ::-1] * 255.0).astype(np.float32),
    )
    write_bytes_atomic(path, buffer.getvalue())


class AlbedoLayer(nn.Module):
    """UV albedo from DECA's ``tex`` parameters: ``mean + basis @ tex``.

    Args:
        space: the albedo space.
        n_tex: coefficients taken by :meth:`forward` (DECA: 50). A space with
            fewer components uses the first ones and ignores the rest (their
            basis is zero).
        resolution: output side in texels, or None for the file's own; resized
            with ``interpolation`` (DECA: 256, ``"nearest"``).
        interpolation: ``torch.nn.functional.interpolate`` mode.
        dtype: buffer dtype.
    """

    def __init__(
        self,
        space: AlbedoSpace,
        n_tex: int = 50,
        resolution: int | None = None,
        interpolation: str = "nearest",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.n_tex = n_tex
        self.used = min(n_tex, space.num_components)
        self.height, self.width = space.resolution
        self.resolution = resolution
        self.interpolation = interpolation
        self.register_buffer("mean", torch.tensor(space.mean.reshape(-1), dtype=dtype))
        basis = space.basis.reshape(-1, space.num_components)[:, : self.used]
        self.register_buffer("basis", torch.tensor(basis, dtype=dtype))

    def forward(self, tex: Tensor) -> Tensor:
        """(B, n_tex) coefficients -> (B, 3, H, W) RGB albedo texture (not clamped)."""
        if tex.ndim != 2 or tex.shape[1] != self.n_tex:
            raise ValueError(f"tex must have shape (B, {self.n_tex}), got {tuple(tex.shape)}")
        flat = self.mean + tex[:, : self.used] @ self.basis.T
        texture = flat.view(tex.shape[0], self.height, self.width, 3).permute(0, 3, 1, 2)
        if self.resolution is not None and (self.resolution, self.resolution) != (self.height, self.width):
            texture = F.interpolate(texture, size=(self.resolution, self.resolution), mode=self.interpolation)
        return texture


@dataclass(frozen=True)
class HeadTemplate:
    """A template mesh with a UV layout (per-corner UV indices, so UV seams need no duplicated vertices).

    Attributes:
        vertices: (V, 3) float64 template positions.
        faces: (F, 3) int64 triangles (the faces to render with ``uv_faces``).
        uvs: (T, 2) float64 UV coordinates, OBJ convention (v up), in [0, 1].
        uv_faces: (F, 3) int64 indices into ``uvs`` for each corner of ``faces``.
        source: the file it came from.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    uv_faces: np.ndarray
    source: str = "<memory>"

    def check_mesh(self, num_vertices: int, num_faces: int) -> None:
        """Raise :class:`AssetError` unless the template has the model's vertex and triangle counts."""
        if self.vertices.shape[0] != num_vertices or self.faces.shape[0] != num_faces:
            raise AssetError(
                f"{self.source}: head template has {self.vertices.shape[0]} vertices and {self.faces.shape[0]} "
                f"triangles, the face model {num_vertices} and {num_faces}; it belongs to another mesh"
            )


def _obj_index(token: str, count: int, source: str, line_number: int) -> int:
    """0-based index from a 1-based (or negative, relative) OBJ index."""
    value = int(token)
    index = value - 1 if value > 0 else count + value
    if value == 0 or not 0 <= index < count:
        raise AssetError(f"{source}: line {line_number} refers to element {value} of {count}")
    return index


def load_head_template(
    path: str | Path, num_vertices: int | None = None, num_faces: int | None = None
) -> HeadTemplate:
    """Read the ``v``, ``vt`` and ``f v/vt`` lines of an OBJ template.

    Written by hand: trimesh (the pinned mesh library) re-indexes vertices to
    one UV each, which would break the correspondence with the model's vertices.

    Args:
        path: the OBJ file.
        num_vertices, num_faces: the face model's counts; checked when given.
    Raises:
        AssetError: missing file, a face that is not a triangle or lacks UV
            indices, an index out of range, or counts that differ from the model.
    """
    source = str(path)
    if not Path(path).is_file():
        raise AssetError(f"head template {source} does not exist")
    vertices: list[list[float]] = []
    uvs: list[list[float]] = []
    corners: list[tuple[str, int]] = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line_number, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts:
                continue
            try:
                if parts[0] == "v":
                    vertices.append([float(value) for value in parts[1:4]])
                elif parts[0] == "vt":
                    uvs.append([float(value) for value in parts[1:3]])
                elif parts[0] == "f":
                    if len(parts) != 4:
                        raise AssetError(f"{source}: line {line_number} is a face with {len(parts) - 1} corners, "
                                         "expected triangles")
                    corners.extend((token, line_number) for token in parts[1:])
            except ValueError:
                raise AssetError(f"{source}: line {line_number} is not a valid OBJ '{parts[0]}' line") from None
    if not vertices or not corners:
        raise AssetError(f"{source}: no vertices or faces found; expected an OBJ mesh")
    if not uvs:
        raise AssetError(f"{source}: no 'vt' lines; the head template must carry UV coordinates")
    face_indices, uv_indices = [], []
    for token, line_number in corners:
        fields = token.split("/")
        if len(fields) < 2 or not fields[1]:
            raise AssetError(f"{source}: line {line_number} has a face corner '{token}' without a UV index (v/vt)")
        face_indices.append(_obj_index(fields[0], len(vertices), source, line_number))
        uv_indices.append(_obj_index(fields[1], len(uvs), source, line_number))
    template = HeadTemplate(
        vertices=np.asarray(vertices, dtype=np.float64),
        faces=np.asarray(face_indices, dtype=np.int64).reshape(-1, 3),
        uvs=np.asarray(uvs, dtype=np.float64),
        uv_faces=np.asarray(uv_indices, dtype=np.int64).reshape(-1, 3),
        source=source,
    )
    if num_vertices is not None and num_faces is not None:
        template.check_mesh(num_vertices, num_faces)
    return template


def write_head_template(path: str | Path, template: HeadTemplate, header: str = "") -> None:
    """Write ``template`` as an OBJ with ``v``, ``vt`` and ``f v/vt`` lines (atomically).

    Args:
        path: the OBJ file.
        template: the mesh and its UV layout.
        header: optional comment lines written first.
    """
    lines = [f"# {text}" for text in header.splitlines()]
    lines += [f"v {x:.8f} {y:.8f} {z:.8f}" for x, y, z in template.vertices]
    lines += [f"vt {u:.8f} {v:.8f}" for u, v in template.uvs]
    for corners, uv_corners in zip(template.faces + 1, template.uv_faces + 1):
        lines.append("f " + " ".join(f"{a}/{b}" for a, b in zip(corners, uv_corners)))
    write_text_atomic(path, "\n".join(lines) + "\n")
