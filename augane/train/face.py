"""The face model side of training: FLAME-format decoder, UV albedo and renderer, built from ``resources:``.

:class:`FaceDecoder` turns DECA-layout parameters into the 105 landmarks,
the mesh and a render of it composited over the input crop:

* geometry: :class:`augane.flame.layer.FlameLayer` (``resources.face_model``
  and ``resources.mediapipe_embedding``), with DECA's shape and the
  predicted expression and pose;
* texture: DECA's ``tex`` through the UV albedo space
  (``resources.albedo_model``) on the head template's UV layout
  (``resources.head_template``). Without either file the face is drawn
  with DECA's uniform grey albedo; the template's own faces are rendered
  when it is given (as DECA does);
* light: DECA's 9 x 3 SH coefficients; renderer settings from ``render:``.

The albedo depends only on DECA's cached ``tex`` (never trained), so it is
computed without gradient.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from augane.errors import AssetError
from augane.flame.layer import FlameLayer, FlameOutput
from augane.flame.texture import AlbedoLayer, load_albedo_space, load_head_template
from augane.render.renderer import MeshRenderer, RenderOutput, RenderSettings
from augane.render.texture import UVLayout

log = logging.getLogger(__name__)


def _existing(resources: Mapping[str, Any], key: str, required: bool) -> Path | None:
    value = resources.get(key)
    if not value:
        if required:
            raise AssetError(f"resources.{key} is not set; training needs it")
        return None
    path = Path(value)
    if not path.is_file():
        raise AssetError(f"resources.{key}: {path} does not exist (build the demo face model with "
                         "`snakemake demo_face_model`, or point it at the licensed file)")
    return path


class FaceDecoder(nn.Module):
    """FLAME-format geometry, UV albedo and renderer for one crop size.

    Args:
        flame: the decoder, with a MediaPipe (105-point) embedding.
        renderer: renders ``flame``'s mesh (or the head template's faces over the same vertices).
        albedo: UV albedo from DECA's tex, or None for DECA's grey.
    """

    def __init__(self, flame: FlameLayer, renderer: MeshRenderer, albedo: AlbedoLayer | None = None) -> None:
        super().__init__()
        if not flame.has_landmarks105:
            raise AssetError("the face model needs the 105-point MediaPipe embedding (resources.mediapipe_embedding)")
        self.flame = flame
        self.renderer = renderer
        self.albedo = albedo
        directions = flame.shapedirs[:, :, flame.n_shape:]
        self.register_buffer("expression_in_use", directions.abs().amax(dim=(0, 1)) > 0, persistent=False)

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        image_size: int,
        *,
        shape_dim: int = 100,
        expression_dim: int = 50,
        tex_dim: int = 50,
    ) -> FaceDecoder:
        """Build from a validated config's ``resources:`` and ``render:`` sections.

        Args:
            config: the validated config.
            image_size: S, side of the cached crops (renders are composited over them).
            shape_dim, expression_dim, tex_dim: sizes of DECA's ``shape``, ``exp`` and
                ``tex`` in the cache's parameter layout.
        Raises:
            AssetError: a configured file is missing or does not fit the face model.
        """
        resources = config["resources"]
        model_path = _existing(resources, "face_model", required=True)
        embedding_path = _existing(resources, "mediapipe_embedding", required=True)
        flame = FlameLayer.from_files(model_path, None, embedding_path, n_shape=shape_dim, n_exp=expression_dim)
        template_path = _existing(resources, "head_template", required=False)
        albedo_path = _existing(resources, "albedo_model", required=False)
        faces, uv_layout, albedo = flame.faces, None, None
        if template_path is not None:
            template = load_head_template(template_path, flame.num_vertices, int(flame.faces.shape[0]))
            faces = torch.as_tensor(template.faces)
            uv_layout = UVLayout.from_arrays(template.uvs, template.uv_faces, len(template.faces))
            if albedo_path is not None:
                space = load_albedo_space(albedo_path, max_components=tex_dim)
                albedo = AlbedoLayer(space, n_tex=tex_dim)
        elif albedo_path is not None:
            log.warning("resources.albedo_model is set but resources.head_template is not: without a UV layout the "
                        "face is rendered with DECA's uniform grey albedo")
        settings = RenderSettings.from_config(config.get("render", {}), image_size=image_size)
        return cls(flame, MeshRenderer(faces, settings, uv_layout=uv_layout), albedo)

    @property
    def expression_components(self) -> int:
        """Expression coefficients that move the mesh (the model's non-zero expression blend shapes)."""
        return int(self.expression_in_use.sum())

    @property
    def image_size(self) -> tuple[int, int]:
        return self.renderer.settings.image_size

    def decode(self, shape: Tensor, expression: Tensor, pose: Tensor) -> FlameOutput:
        """(B, n_shape), (B, n_exp), (B, 6) -> :class:`FlameOutput` (vertices, landmarks105) in metres."""
        dtype = self.flame.v_template.dtype
        return self.flame(shape.to(dtype), expression.to(dtype), pose.to(dtype))

    def texture(self, tex: Tensor) -> Tensor | None:
        """(B, n_tex) DECA albedo coefficients -> (B, 3, H, W) UV albedo (no gradient), or None without albedo model."""
        if self.albedo is None:
            return None
        with torch.no_grad():
            return self.albedo(tex.to(self.albedo.mean.dtype))

    def render(self, vertices: Tensor, cam: Tensor, tex: Tensor, light: Tensor, background: Tensor) -> RenderOutput:
        """Render (B, V, 3) vertices seen through ``cam`` (B, 3), lit by ``light`` (B, 9, 3), over ``background``
        (B, 3, S, S) in [0, 1]; the returned image is (B, 3, S, S)."""
        return self.renderer(vertices, cam, albedo=self.texture(tex), light=light, background=background)
