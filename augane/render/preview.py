"""Still renders of a single mesh for inspection (``augane render``): loading, framing, posing, drawing.

Meshes come from FLAME-format model files (the template, through
:mod:`augane.flame`) or any triangle mesh trimesh reads (OBJ, PLY, ...; vertex
order and vertex colours kept). The camera is DECA's weak perspective,
fitted so the mesh fills a fraction of the image unless a scale is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from augane.errors import AssetError
from augane.render.renderer import MeshRenderer, RenderSettings
from augane.render.shading import default_light
from augane.render.texture import UVLayout

FLAME_SUFFIXES = {".pkl"}


@dataclass
class PreviewMesh:
    """A mesh to render.

    Attributes:
        vertices: (V, 3) float32 model-space positions (y up, facing +z).
        faces: (F, 3) int64.
        colours: (V, 3) float32 RGB in [0, 1], or None.
        texture: (3, Ht, Wt) float32 UV albedo, or None.
        uv_layout: the mesh's UV layout when ``texture`` is given.
        source: where it came from.
    """

    vertices: np.ndarray
    faces: np.ndarray
    colours: np.ndarray | None = None
    texture: np.ndarray | None = None
    uv_layout: UVLayout | None = None
    source: str = "<memory>"


def load_mesh(path: str | Path) -> PreviewMesh:
    """Read a FLAME-format model's template (``.pkl``) or a triangle mesh file.

    Raises:
        AssetError: missing or unreadable file, or not a non-empty triangle mesh.
    """
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"mesh file {path} does not exist")
    if path.suffix.lower() in FLAME_SUFFIXES:
        from augane.flame.io import load_flame_model

        model = load_flame_model(path)
        return PreviewMesh(model.v_template.astype(np.float32), model.faces.astype(np.int64), source=str(path))
    import trimesh

    try:
        mesh = trimesh.load(path, process=False, force="mesh")
    except Exception as err:  # trimesh raises many types for malformed files
        raise AssetError(f"{path}: cannot be read as a mesh ({err})") from None
    faces = np.asarray(getattr(mesh, "faces", np.zeros((0, 3))), dtype=np.int64)
    vertices = np.asarray(getattr(mesh, "vertices", np.zeros((0, 3))), dtype=np.float32)
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0 or len(vertices) == 0:
        raise AssetError(f"{path}: expected a triangle mesh with vertices and faces, found {len(vertices)} vertices "
                         f"and {len(faces)} faces")
    colours = None
    visual = getattr(mesh, "visual", None)
    if visual is not None and getattr(visual, "kind", None) == "vertex":
        colours = np.asarray(visual.vertex_colors, dtype=np.float32)[:, :3] / 255.0
    return PreviewMesh(vertices, faces, colours=colours, source=str(path))


def rotation(yaw_degrees: float, pitch_degrees: float) -> np.ndarray:
    """(3, 3) rotation: yaw about the model's y axis (up), then pitch about its x axis."""
    yaw, pitch = math.radians(yaw_degrees), math.radians(pitch_degrees)
    about_y = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    about_x = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
    return about_x @ about_y


def fit_camera(vertices: np.ndarray, scale: float | None = None, fill: float = 0.9) -> np.ndarray:
    """DECA camera ``(s, tx, ty)`` centring the mesh's x/y box; ``s`` fills ``fill`` of the image unless given."""
    low, high = vertices[:, :2].min(0), vertices[:, :2].max(0)
    centre = (low + high) / 2
    if scale is None:
        extent = float((high - low).max())
        if extent <= 0:
            raise AssetError("the mesh has no extent in x and y; nothing to frame")
        scale = 2.0 * fill / extent
    return np.array([scale, -centre[0], -centre[1]], dtype=np.float32)


def render_preview(
    mesh: PreviewMesh,
    settings: RenderSettings,
    yaw: float = 0.0,
    pitch: float = 0.0,
    scale: float | None = None,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Render ``mesh`` posed by ``yaw``/``pitch`` (degrees) with a frontal SH light: (H, W, 3) uint8 RGB."""
    centre = (mesh.vertices.min(0) + mesh.vertices.max(0)) / 2
    posed = (mesh.vertices - centre) @ rotation(yaw, pitch).T.astype(np.float32) + centre
    cam = fit_camera(posed, scale)
    renderer = MeshRenderer(torch.from_numpy(mesh.faces), settings, uv_layout=mesh.uv_layout).to(device)
    vertices = torch.from_numpy(posed.astype(np.float32))[None].to(device)
    albedo: Tensor | None = None
    if mesh.texture is not None and mesh.uv_layout is not None:
        albedo = torch.from_numpy(mesh.texture)[None].to(device)
    elif mesh.colours is not None:
        albedo = torch.from_numpy(mesh.colours)[None].to(device)
    with torch.no_grad():
        cam_tensor = torch.from_numpy(cam)[None].to(device)
        out = renderer(vertices, cam_tensor, albedo=albedo, light=default_light(1, device=device))
    image = out.image[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy()
    return np.round(image * 255).astype(np.uint8)
