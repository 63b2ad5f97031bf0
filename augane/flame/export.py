"""Mesh export (OBJ, PLY) with trimesh, optionally with per-vertex colours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import trimesh

from augane.io.atomic import write_bytes_atomic

MESH_FORMATS = (".obj", ".ply")


def _as_numpy(array: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def vertex_colors_to_uint8(colors: np.ndarray | torch.Tensor) -> np.ndarray:
    """(V, 3 or 4) colours, floats in [0, 1] or uint8, to uint8 RGBA (opaque when no alpha is given)."""
    colors = _as_numpy(colors)
    if colors.ndim != 2 or colors.shape[1] not in (3, 4):
        raise ValueError(f"vertex colours must be (V, 3) or (V, 4), got {colors.shape}")
    if colors.dtype != np.uint8:
        colors = np.round(np.clip(colors, 0.0, 1.0) * 255.0).astype(np.uint8)
    if colors.shape[1] == 3:
        colors = np.concatenate([colors, np.full((colors.shape[0], 1), 255, np.uint8)], axis=1)
    return colors


def write_mesh(
    path: str | Path,
    vertices: np.ndarray | torch.Tensor,
    faces: np.ndarray | torch.Tensor,
    colors: np.ndarray | torch.Tensor | None = None,
) -> None:
    """Write one mesh as OBJ or PLY (chosen by the suffix), atomically, vertex order kept.

    Args:
        path: ``.obj`` or ``.ply`` file.
        vertices: (V, 3) positions (model units: metres).
        faces: (F, 3) vertex indices.
        colors: optional (V, 3 or 4) per-vertex colours, floats in [0, 1] or uint8.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_FORMATS:
        raise ValueError(f"cannot write {path}: mesh formats are {', '.join(MESH_FORMATS)}")
    vertices = _as_numpy(vertices).astype(np.float64)
    faces = _as_numpy(faces).astype(np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"vertices must be (V, 3) and faces (F, 3), got {vertices.shape} and {faces.shape}")
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False, validate=False)
    if colors is not None:
        rgba = vertex_colors_to_uint8(colors)
        if rgba.shape[0] != vertices.shape[0]:
            raise ValueError(f"{rgba.shape[0]} vertex colours for {vertices.shape[0]} vertices")
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=rgba)
    if suffix == ".obj":
        data = trimesh.exchange.obj.export_obj(mesh, include_color=colors is not None, include_texture=False,
                                               digits=8).encode("utf-8")
    else:
        data = trimesh.exchange.ply.export_ply(mesh, encoding="binary", vertex_normal=False)
    write_bytes_atomic(path, data)
