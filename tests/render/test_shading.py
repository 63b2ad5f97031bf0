"""SH lighting with DECA's constants, vertex normals, and the grey shape lights, against analytic values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh

from augane.render import MeshRenderer, RenderSettings
from augane.render.shading import (
    SH_CONSTANTS,
    SHAPE_ALBEDO,
    sh_basis,
    sh_shading,
    shape_shading,
    vertex_normals,
)


def test_sh_constants_are_decas() -> None:
    pi = math.pi
    expected = [
        1 / math.sqrt(4 * pi),
        *[(2 * pi / 3) * math.sqrt(3 / (4 * pi))] * 3,
        *[(pi / 4) * 3 * math.sqrt(5 / (12 * pi))] * 3,
        (pi / 4) * (3 / 2) * math.sqrt(5 / (12 * pi)),
        (pi / 4) * (1 / 2) * math.sqrt(5 / (4 * pi)),
    ]
    np.testing.assert_allclose(SH_CONSTANTS, expected, rtol=1e-12)


def test_sh_basis_layout() -> None:
    normal = torch.tensor([0.36, 0.48, 0.8], dtype=torch.float64)
    x, y, z = normal.tolist()
    raw = [1.0, x, y, z, x * y, x * z, y * z, x * x - y * y, 3 * z * z - 1]
    torch.testing.assert_close(sh_basis(normal), torch.tensor(raw, dtype=torch.float64) * torch.tensor(SH_CONSTANTS, dtype=torch.float64))


def test_vertex_normals_of_a_sphere_point_outwards_and_are_unit() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=3)
    vertices = torch.tensor(sphere.vertices, dtype=torch.float64)[None]
    normals = vertex_normals(vertices, torch.tensor(sphere.faces))
    torch.testing.assert_close(normals.norm(dim=-1), torch.ones(1, vertices.shape[1], dtype=torch.float64))
    assert float((normals * vertices).sum(-1).min()) > 0.999
    flat = vertex_normals(torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5]]]), torch.tensor([[0, 1, 2]]))
    torch.testing.assert_close(flat[0, :3], torch.tensor([[0.0, 0, 1]] * 3))
    assert float(flat[0, 3].abs().sum()) == 0.0  # unused vertex


def sphere_render(settings: RenderSettings, light=None, subdivisions: int = 4, radius: float = 0.1, scale: float = 8.0):
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    vertices = torch.tensor(sphere.vertices, dtype=torch.float32)[None] * radius
    renderer = MeshRenderer(torch.tensor(sphere.faces), settings)
    out = renderer(vertices, torch.tensor([[scale, 0.0, 0.0]]), light=light)
    return out, radius * scale


def analytic_normals(size: int, projected_radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit model-space normals of a centred sphere at each pixel centre, and the inside mask."""
    centres = (torch.arange(size, dtype=torch.float64) + 0.5) * 2 / size - 1
    y_n, x_n = torch.meshgrid(centres, centres, indexing="ij")
    x, y = x_n / projected_radius, -y_n / projected_radius  # the camera flips y
    inside = x * x + y * y < 0.85**2
    z = torch.sqrt((1 - x * x - y * y).clamp(min=0))
    return torch.stack([x, y, z], -1), inside


def test_sphere_under_sh_light_matches_analytic_irradiance() -> None:
    light = torch.tensor(
        [[0.9, 0.8, 0.7], [0.2, -0.1, 0.0], [0.3, 0.3, 0.1], [0.5, 0.4, 0.6], [0.05, 0.0, 0.1],
         [-0.1, 0.05, 0.0], [0.08, 0.1, -0.05], [0.1, -0.05, 0.02], [-0.12, 0.0, 0.06]]
    )[None]
    out, projected_radius = sphere_render(RenderSettings(image_size=64, clamp=False), light=light)
    normals, inside = analytic_normals(64, projected_radius)
    expected = sh_shading(normals[None], light.double())[0]  # (H, W, 3)
    rendered = out.shading_images[0].permute(1, 2, 0).double()
    assert bool(out.mask[0, 0][inside].all())
    error = (rendered - expected)[inside].abs()
    assert float(error.max()) < 0.01, float(error.max())
    # The image is albedo x shading (DECA's grey albedo when none is given).
    torch.testing.assert_close(out.image[0].permute(1, 2, 0)[inside], (rendered[inside] * SHAPE_ALBEDO).float(), atol=1e-5, rtol=0)


def test_constant_light_gives_constant_shading_and_no_light_draws_unlit() -> None:
    light = torch.zeros(1, 9, 3)
    light[0, 0] = torch.tensor([1.0, 2.0, 3.0])
    out, _ = sphere_render(RenderSettings(image_size=32), light=light, subdivisions=2)
    covered = out.mask[0, 0] > 0
    expected = torch.tensor([1.0, 2.0, 3.0]) * SH_CONSTANTS[0]
    torch.testing.assert_close(out.shading_images[0].permute(1, 2, 0)[covered], expected.expand(int(covered.sum()), 3))
    unlit, _ = sphere_render(RenderSettings(image_size=32), light=None, subdivisions=2)
    torch.testing.assert_close(unlit.image[0].permute(1, 2, 0)[covered], torch.full((int(covered.sum()), 3), SHAPE_ALBEDO))


def test_shape_mode_uses_decas_grey_lights() -> None:
    frontal = shape_shading(torch.tensor([0.0, 0.0, 1.0]))
    directions = torch.tensor([[-1.0, 1, 1], [1, 1, 1], [-1, -1, 1], [1, -1, 1], [0, 0, 1]])
    cosines = (directions / directions.norm(dim=1, keepdim=True))[:, 2]
    torch.testing.assert_close(frontal, (cosines.mean() * 1.7).expand(3))
    out, _ = sphere_render(RenderSettings(image_size=33, shading="shape"), subdivisions=3)
    centre = out.image[0, :, 16, 16]
    torch.testing.assert_close(centre, (frontal * SHAPE_ALBEDO).clamp(max=1.0), atol=5e-3, rtol=0)


def test_shape_mode_hides_pixels_whose_normal_points_away() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=2)
    inside_out = torch.tensor(sphere.faces[:, ::-1].copy())
    renderer = MeshRenderer(inside_out, RenderSettings(image_size=24, shading="shape", background_color=(0.0, 1.0, 0.0)))
    vertices = torch.tensor(sphere.vertices, dtype=torch.float32)[None] * 0.1
    out = renderer(vertices, torch.tensor([[8.0, 0.0, 0.0]]))
    assert out.fragments.mask[0, 12, 12]
    assert float(out.mask[0, 0, 12, 12]) == 0.0
    torch.testing.assert_close(out.image[0, :, 12, 12], torch.tensor([0.0, 1.0, 0.0]))


@pytest.mark.parametrize("bad", [torch.zeros(1, 9), torch.zeros(2, 9, 3), torch.zeros(1, 3, 9)])
def test_bad_light_shapes_raise(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="light must be \\(B, 9, 3\\)"):
        sphere_render(RenderSettings(image_size=8), light=bad, subdivisions=1)
