"""Differentiable rendering in plain PyTorch: rasteriser, attribute interpolation, SH shading, compositing.

Written by hand because pytorch3d and nvdiffrast cannot be installed here
(an optional pytorch3d backend is used where it can). Conventions are DECA's
(see :mod:`augane.render.renderer` and :mod:`augane.render.shading`); the
camera is :func:`augane.flame.camera.project`.
"""

from augane.render.interpolation import interpolate, interpolate_packed
from augane.render.rasterizer import Fragments, rasterize
from augane.render.renderer import BACKENDS, SHADING_MODES, MeshRenderer, RenderOutput, RenderSettings
from augane.render.shading import SH_CONSTANTS, default_light, sh_basis, sh_shading, shape_shading, vertex_normals
from augane.render.texture import UVLayout, sample_texture_packed

__all__ = [
    "BACKENDS",
    "SHADING_MODES",
    "SH_CONSTANTS",
    "Fragments",
    "MeshRenderer",
    "RenderOutput",
    "RenderSettings",
    "UVLayout",
    "default_light",
    "interpolate",
    "interpolate_packed",
    "rasterize",
    "sample_texture_packed",
    "sh_basis",
    "sh_shading",
    "shape_shading",
    "vertex_normals",
]
