"""Optional rasterisation through pytorch3d's ``rasterize_meshes``, where pytorch3d is installed.

Selected with ``RenderSettings(backend="pytorch3d")`` (config ``render.backend``).
It returns the same :class:`~augane.render.rasterizer.Fragments` as AUGANE's own
rasteriser, so shading and compositing are shared. Conversions, as DECA's
``Pytorch3dRasterizer``: pytorch3d's NDC has +X left and +Y up, so x and y are
negated; for non-square images pytorch3d's longer side spans ``[-s, s]`` with
``s = long / short``, so that axis is also scaled. Depth is shifted to be
positive (DECA adds 10) without changing its order.
"""

from __future__ import annotations

import importlib

import torch
from torch import Tensor

from augane.errors import ConfigError
from augane.render.rasterizer import Fragments, check_mesh, normalise_image_size


def pytorch3d_available() -> bool:
    """True when pytorch3d's rasteriser can be imported."""
    try:
        importlib.import_module("pytorch3d.renderer.mesh")
        importlib.import_module("pytorch3d.structures")
    except ImportError:
        return False
    return True


def require_pytorch3d() -> None:
    """Raise :class:`ConfigError` saying how to proceed when pytorch3d cannot be imported."""
    if not pytorch3d_available():
        raise ConfigError(
            "render.backend is 'pytorch3d' but pytorch3d cannot be imported in this environment; "
            "install pytorch3d or use the default backend 'augane'"
        )


def rasterize_pytorch3d(vertices: Tensor, faces: Tensor, image_size: int | tuple[int, int]) -> Fragments:
    """Rasterise with pytorch3d (blur radius 0, one face per pixel, no perspective correction).

    Args:
        vertices: (B, V, 3) normalised image coordinates (:func:`augane.flame.camera.project`).
        faces: (F, 3) int64.
        image_size: ``H`` or ``(H, W)``.
    Returns:
        :class:`Fragments` with pytorch3d's (differentiable) barycentrics.
    """
    require_pytorch3d()
    from pytorch3d.renderer.mesh import rasterize_meshes
    from pytorch3d.structures import Meshes

    check_mesh(vertices, faces)
    height, width = normalise_image_size(image_size)
    batch, num_vertices = vertices.shape[:2]
    short = min(height, width)
    scale = torch.tensor([-width / short, -height / short], dtype=vertices.dtype, device=vertices.device)
    depth = vertices[..., 2:] - vertices[..., 2:].detach().amin(dim=1, keepdim=True) + 1.0
    ndc = torch.cat([vertices[..., :2] * scale, depth], dim=-1)
    meshes = Meshes(verts=list(ndc.float()), faces=[faces.long()] * batch)
    pix_to_face, _, bary_coords, _ = rasterize_meshes(
        meshes,
        image_size=(height, width),
        blur_radius=0.0,
        faces_per_pixel=1,
        bin_size=None,
        max_faces_per_bin=None,
        perspective_correct=False,
    )
    face_map = pix_to_face[..., 0].reshape(-1)
    pixels = (face_map >= 0).nonzero().squeeze(1)
    packed_faces = face_map.index_select(0, pixels).long()
    packed_bary = bary_coords[..., 0, :].reshape(-1, 3).index_select(0, pixels).to(vertices.dtype)
    num_faces = faces.shape[0]
    packed_batch = torch.div(packed_faces, num_faces, rounding_mode="floor")
    face_in_mesh = packed_faces - packed_batch * num_faces
    packed_corners = (faces.long().index_select(0, face_in_mesh) + (packed_batch * num_vertices)[:, None]).T
    return Fragments(
        image_size=(height, width),
        batch_size=batch,
        faces=faces.long(),
        num_vertices=num_vertices,
        pixels=pixels,
        packed_faces=packed_faces,
        packed_corners=packed_corners.contiguous(),
        packed_bary=packed_bary,
        screen_vertices=vertices,
    )
