"""Rendering the demo world: the demo face model through the project's renderer, composited over backgrounds.

:class:`WorldRenderer` decodes :class:`~augane.demo.world_params.FaceParameters`
with :class:`~augane.flame.layer.FlameLayer` (loaded from the model files as
any FLAME model is), textures the mesh with the albedo space
(:class:`~augane.flame.texture.AlbedoLayer`) through the head template's UV
layout, lights it with DECA's SH shading (:class:`~augane.render.MeshRenderer`)
and composites it over a background. Edges are anti-aliased by rendering
``supersample`` times larger and area-averaging the face and its coverage
before compositing, so the background is never resampled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from augane.demo.world_params import FaceParameters
from augane.flame.camera import normalised_to_pixels, project
from augane.flame.layer import FlameLayer, FlameOutput
from augane.flame.texture import AlbedoLayer, load_albedo_space, load_head_template
from augane.render import MeshRenderer, RenderSettings, UVLayout

#: Files of the face model the renderer reads, by role (as in ``resources:``).
FACE_MODEL_ROLES: tuple[str, ...] = ("face_model", "landmark_embedding", "mediapipe_embedding", "head_template",
                                     "albedo_model")


@dataclass
class RenderedFaces:
    """Renders of B faces.

    Attributes:
        images: (B, H, W, 3) float32 RGB in [0, 1], composited over the backgrounds.
        landmarks: (B, 105, 2) float64 the 105 landmarks in image pixels.
        coverage: (B, H, W) float32 share of each pixel covered by the face.
    """

    images: np.ndarray
    landmarks: np.ndarray
    coverage: np.ndarray


class WorldRenderer:
    """Decode and render faces of a FLAME-format model with UV albedo (the demo face model).

    Args:
        files: paths by role (:data:`FACE_MODEL_ROLES`), e.g. the ``resources:`` section.
        image_size: side of the output images, pixels.
        supersample: internal rendering factor for anti-aliasing (1 = none).
    """

    def __init__(self, files: Mapping[str, str | Path], image_size: int = 256, supersample: int = 2) -> None:
        missing = [role for role in FACE_MODEL_ROLES if not files.get(role)]
        if missing:
            from augane.errors import ConfigError

            raise ConfigError(f"the demo world needs resources {missing} (the demo face model's files)")
        self.layer = FlameLayer.from_files(files["face_model"], files["landmark_embedding"], files["mediapipe_embedding"])
        faces = int(self.layer.faces.shape[0])
        template = load_head_template(files["head_template"], self.layer.num_vertices, faces)
        self.albedo = AlbedoLayer(load_albedo_space(files["albedo_model"]), n_tex=50)
        layout = UVLayout.from_arrays(template.uvs, template.uv_faces, len(template.faces))
        self.image_size = int(image_size)
        self.supersample = max(1, int(supersample))
        settings = RenderSettings(image_size=self.image_size * self.supersample)
        self.renderer = MeshRenderer(torch.as_tensor(template.faces), settings, uv_layout=layout)

    @property
    def active_shape_components(self) -> int:
        """Identity components with a non-zero direction (the first ones; 20 for the demo model)."""
        norms = self.layer.shapedirs[:, :, : self.layer.n_shape].reshape(-1, self.layer.n_shape).norm(dim=0)
        nonzero = torch.nonzero(norms > 0)
        return int(nonzero.max()) + 1 if len(nonzero) else 0

    @property
    def active_tex_components(self) -> int:
        """Albedo components the space holds (10 for the demo model)."""
        return int(self.albedo.used)

    def decode(self, params: FaceParameters) -> FlameOutput:
        """The model's output for a batch of parameters (float32)."""
        def tensor(value: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(value), dtype=torch.float32)

        return self.layer(tensor(params.shape), tensor(params.exp), tensor(params.pose))

    @torch.no_grad()
    def render(self, params: FaceParameters, backgrounds: np.ndarray) -> RenderedFaces:
        """Render B faces over (B, H, W, 3) float backgrounds in [0, 1] (H = W = ``image_size``)."""
        batch, size = len(params), self.image_size
        if backgrounds.shape != (batch, size, size, 3):
            raise ValueError(f"backgrounds must be ({batch}, {size}, {size}, 3), got {backgrounds.shape}")
        output = self.decode(params)
        cam = torch.as_tensor(params.cam, dtype=torch.float32)
        texture = self.albedo(torch.as_tensor(params.tex, dtype=torch.float32)).clamp(0.0, 1.0)
        light = torch.as_tensor(params.light, dtype=torch.float32)
        rendered = self.renderer(output.vertices, cam, texture, light)
        face = rendered.image * rendered.mask
        coverage = rendered.mask
        if self.supersample > 1:
            face = F.avg_pool2d(face, self.supersample)
            coverage = F.avg_pool2d(coverage, self.supersample)
        behind = torch.as_tensor(backgrounds, dtype=torch.float32).permute(0, 3, 1, 2)
        images = (face + (1.0 - coverage) * behind).clamp(0.0, 1.0)
        points = normalised_to_pixels(project(output.landmarks105, cam)[..., :2], size)
        return RenderedFaces(
            images=images.permute(0, 2, 3, 1).numpy(),
            landmarks=points.numpy().astype(np.float64),
            coverage=coverage[:, 0].numpy(),
        )


def to_uint8(images: np.ndarray, rngs: list[np.random.Generator] | None = None, noise: float = 0.0) -> np.ndarray:
    """(B, H, W, 3) float images in [0, 1] -> uint8, with optional Gaussian sensor noise (std in [0, 1] units)
    drawn from each image's own generator."""
    values = np.asarray(images, dtype=np.float32)
    if noise > 0 and rngs is not None:
        values = values + np.stack([rng.normal(0.0, noise, values.shape[1:]) for rng in rngs]).astype(np.float32)
    return (np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
