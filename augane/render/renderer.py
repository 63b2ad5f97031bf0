"""The mesh renderer: camera projection, rasteriser and DECA's shading, composited over a background.

:class:`MeshRenderer` renders (B, V, 3) model-space vertices seen through
DECA's camera (``cam = (s, tx, ty)``, projected by
:func:`augane.flame.camera.project`, the one definition in AUGANE) into
(B, 3, H, W) images in [0, 1], the way DECA's ``SRenderY`` does:

* ``shading="sh"``: albedo (per vertex, or a UV texture through the mesh's UV
  layout) times the 9-coefficient SH shading of the interpolated model-space
  normals; without a light the albedo is drawn unlit (as DECA);
* ``shading="albedo"``: the albedo alone;
* ``shading="shape"``: DECA's grey shape render (``render_shape``).

The face is composited over ``background`` (a (B, 3, H, W) image) through the
hard coverage mask (as DECA, the mask carries no gradient); images are
differentiable with respect to vertices, camera, albedo, light and background.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import Tensor, nn

from augane.errors import ConfigError
from augane.flame.camera import project
from augane.render.interpolation import interpolate_channels
from augane.render.rasterizer import Fragments, check_mesh, normalise_image_size, rasterize
from augane.render.shading import (
    SHAPE_ALBEDO,
    SHAPE_MIN_NORMAL_Z,
    check_light,
    sh_shading_channels,
    shape_shading_channels,
    vertex_normals,
)
from augane.render.texture import UVLayout, check_texture, sample_texture_packed

SHADING_MODES = ("sh", "albedo", "shape")
BACKENDS = ("augane", "pytorch3d")


@dataclass
class RenderSettings:
    """How :class:`MeshRenderer` draws.

    Attributes:
        image_size: ``H`` (square) or ``(H, W)`` pixels.
        shading: one of :data:`SHADING_MODES`.
        background_color: RGB in [0, 1] used where no background image is given.
        cull_backfaces: skip faces whose normal points away from the camera
            (DECA draws both sides; off by default).
        clamp: clip the shaded colours to [0, 1] before compositing.
        backend: ``"augane"`` (the plain-PyTorch rasteriser) or ``"pytorch3d"``
            (its ``rasterize_meshes``, where installed).
        chunk_elements: candidate pixels the rasteriser handles per step
            (None: suited to the device).
        fused_kernels: on CPU, run the rasteriser's per-face, per-row and
            per-pixel arithmetic, the interpolation and the per-pixel terms of
            the backward passes as compiled kernels (:mod:`augane.render.fused`).
    """

    image_size: int | tuple[int, int] = 224
    shading: str = "sh"
    background_color: tuple[float, float, float] = (0.0, 0.0, 0.0)
    cull_backfaces: bool = False
    clamp: bool = True
    backend: str = "augane"
    chunk_elements: int | None = None
    fused_kernels: bool = False

    def __post_init__(self) -> None:
        height, width = normalise_image_size(self.image_size)
        self.image_size = (height, width)
        if self.shading not in SHADING_MODES:
            raise ConfigError(f"render shading {self.shading!r} is not one of {', '.join(SHADING_MODES)}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"render backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if len(self.background_color) != 3:
            raise ConfigError(f"render background_color must be 3 numbers (RGB), got {self.background_color!r}")
        self.background_color = tuple(float(c) for c in self.background_color)

    @classmethod
    def from_config(cls, section: dict[str, Any], **overrides: Any) -> RenderSettings:
        """Settings from the config's ``render`` section (see ``augane/config/schema.yaml``)."""
        values = {
            "shading": section.get("shading", "sh"),
            "background_color": tuple(section.get("background_color", (0.0, 0.0, 0.0))),
            "cull_backfaces": bool(section.get("cull_backfaces", False)),
            "clamp": bool(section.get("clamp", True)),
            "backend": section.get("backend", "augane"),
            "fused_kernels": bool(section.get("fused_kernels", False)),
        }
        if "image_size" in section:
            values["image_size"] = section["image_size"]
        values.update(overrides)
        return cls(**values)


@dataclass
class RenderOutput:
    """What :meth:`MeshRenderer.forward` returns.

    Attributes:
        image: (B, 3, H, W) the render composited over the background.
        mask: (B, 1, H, W) float, 1 where the face is drawn.
        fragments: the rasteriser's :class:`~augane.render.rasterizer.Fragments`.
        screen_vertices: (B, V, 3) projected vertices (normalised image coordinates).
        vertex_normals: (B, V, 3) model-space unit vertex normals.
        packed_normals, packed_albedo, packed_shading: (N, 3) interpolated
            normals (not renormalised), albedo and shading at the covered pixels.
    """

    image: Tensor
    mask: Tensor
    fragments: Fragments
    screen_vertices: Tensor
    vertex_normals: Tensor
    packed_normals: Tensor
    packed_albedo: Tensor
    packed_shading: Tensor

    @cached_property
    def normal_images(self) -> Tensor:
        """(B, 3, H, W) interpolated model-space normals, 0 on background (DECA's ``normal_images``)."""
        return self.fragments.unpack_image(self.packed_normals)

    @cached_property
    def albedo_images(self) -> Tensor:
        """(B, 3, H, W) albedo, 0 on background."""
        return self.fragments.unpack_image(self.packed_albedo)

    @cached_property
    def shading_images(self) -> Tensor:
        """(B, 3, H, W) shading, 0 on background."""
        return self.fragments.unpack_image(self.packed_shading)


class MeshRenderer(nn.Module):
    """Rasteriser + DECA shader for one mesh topology (faces and optional UV layout as buffers).

    Args:
        faces: (F, 3) int64 triangles shared by every batch.
        settings: :class:`RenderSettings` (defaults when None).
        uv_layout: per-corner UVs (needed to draw texture albedos).
    """

    def __init__(self, faces: Tensor, settings: RenderSettings | None = None, uv_layout: UVLayout | None = None):
        super().__init__()
        self.settings = settings or RenderSettings()
        faces = torch.as_tensor(faces, dtype=torch.int64)
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3), got {tuple(faces.shape)}")
        self.register_buffer("faces", faces, persistent=False)
        if uv_layout is not None:
            if uv_layout.uv_faces.shape != faces.shape:
                raise ValueError(
                    f"uv_faces {tuple(uv_layout.uv_faces.shape)} do not match the mesh's faces {tuple(faces.shape)}"
                )
            self.register_buffer("face_uvs", uv_layout.face_uvs(), persistent=False)
        else:
            self.face_uvs = None
        if self.settings.backend == "pytorch3d":
            from augane.render.pytorch3d_backend import require_pytorch3d

            require_pytorch3d()
            if self.settings.cull_backfaces:
                raise ConfigError("render.cull_backfaces is only supported by the 'augane' backend")

    def rasterize(self, vertices: Tensor, cam: Tensor) -> Fragments:
        """Project model-space vertices (B, V, 3) with ``cam`` (B, 3) and rasterise them."""
        check_mesh(vertices, self.faces)
        screen = project(vertices, cam.to(vertices.dtype))
        if self.settings.backend == "pytorch3d":
            from augane.render.pytorch3d_backend import rasterize_pytorch3d

            return rasterize_pytorch3d(screen, self.faces, self.settings.image_size)
        return rasterize(
            screen,
            self.faces,
            self.settings.image_size,
            cull_backfaces=self.settings.cull_backfaces,
            chunk_elements=self.settings.chunk_elements,
            fused=self.settings.fused_kernels,
        )

    def forward(
        self,
        vertices: Tensor,
        cam: Tensor,
        albedo: Tensor | None = None,
        light: Tensor | None = None,
        background: Tensor | None = None,
    ) -> RenderOutput:
        """Render a batch.

        Args:
            vertices: (B, V, 3) model-space vertices (FLAME: metres, y up, facing +z).
            cam: (B, 3) DECA camera ``(s, tx, ty)``.
            albedo: (B, V, 3) per-vertex RGB, or (B, 3, Ht, Wt) UV texture (needs
                the renderer's UV layout); None: DECA's grey 180/255.
            light: (B, 9, 3) SH coefficients (``shading="sh"``); None draws unlit.
            background: (B, 3, H, W) image behind the face; None: ``background_color``.
        Returns:
            :class:`RenderOutput`.
        """
        batch = vertices.shape[0]
        if cam.shape != (batch, 3):
            raise ValueError(f"cam must be (B, 3) = (s, tx, ty) with B = {batch}, got {tuple(cam.shape)}")
        fragments = self.rasterize(vertices, cam)
        normals = vertex_normals(vertices, self.faces)
        mode = self.settings.shading
        # Packed values are kept channels first, (C, N), for speed.
        packed_normals = interpolate_channels(fragments, normals)
        if mode == "shape":
            packed_albedo = packed_normals.new_full(packed_normals.shape, SHAPE_ALBEDO)
            packed_shading = shape_shading_channels(packed_normals.detach())
        else:
            packed_albedo = self._albedo(fragments, albedo, packed_normals)
            if mode == "sh" and light is not None:
                check_light(light, batch)
                counts = torch.bincount(fragments.packed_batch, minlength=batch).tolist()
                packed_shading = sh_shading_channels(packed_normals, light.to(packed_normals.dtype), counts)
            else:
                packed_shading = torch.ones_like(packed_albedo)
        colour = packed_albedo * packed_shading
        if self.settings.clamp:
            colour = colour.clamp(0.0, 1.0)

        canvas = self._background(background, fragments, colour)
        if mode == "shape":
            keep = (packed_normals[2].detach() > SHAPE_MIN_NORMAL_Z).to(colour.dtype)[None]
            colour = colour * keep + fragments.gather_image(canvas).T * (1.0 - keep)
            mask = fragments.unpack_image(keep.T)
        else:
            mask = fragments.mask[:, None].to(colour.dtype)
        image = fragments.unpack_image(colour.T, canvas)
        return RenderOutput(
            image=image,
            mask=mask,
            fragments=fragments,
            screen_vertices=fragments.screen_vertices,
            vertex_normals=normals,
            packed_normals=packed_normals.T,
            packed_albedo=packed_albedo.T,
            packed_shading=packed_shading.T,
        )

    def _albedo(self, fragments: Fragments, albedo: Tensor | None, packed_normals: Tensor) -> Tensor:
        """(3, N) albedo at the covered pixels."""
        if albedo is None:
            return packed_normals.new_full(packed_normals.shape, SHAPE_ALBEDO)
        batch, num_vertices = fragments.batch_size, fragments.num_vertices
        if albedo.ndim == 3:
            if albedo.shape != (batch, num_vertices, 3):
                raise ValueError(f"per-vertex albedo must be ({batch}, {num_vertices}, 3), got {tuple(albedo.shape)}")
            return interpolate_channels(fragments, albedo.to(packed_normals.dtype))
        if albedo.ndim == 4:
            check_texture(albedo, batch)
            if albedo.shape[1] != 3:
                raise ValueError(f"texture albedo must have 3 channels (RGB), got {albedo.shape[1]}")
            if self.face_uvs is None:
                raise ValueError("a texture albedo needs the renderer's UV layout (MeshRenderer(..., uv_layout=...))")
            uv = interpolate_channels(fragments, self.face_uvs.to(packed_normals.dtype)).T
            return sample_texture_packed(albedo.to(packed_normals.dtype), uv, fragments.packed_batch).T
        raise ValueError(f"albedo must be (B, V, 3) per vertex or (B, 3, Ht, Wt) texture, got {tuple(albedo.shape)}")

    def _background(self, background: Tensor | None, fragments: Fragments, colour: Tensor) -> Tensor:
        """(B, 3, H, W) image behind the face."""
        height, width = fragments.image_size
        shape = (fragments.batch_size, 3, height, width)
        if background is None:
            color = torch.tensor(self.settings.background_color, dtype=colour.dtype, device=colour.device)
            return color.view(1, 3, 1, 1).expand(shape)
        if background.shape != shape:
            raise ValueError(f"background must be {shape}, got {tuple(background.shape)}")
        return background.to(colour.dtype)
