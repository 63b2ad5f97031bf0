"""UV textures: DECA's v-up convention, bilinear sampling at known UVs, gradients into the texture."""

from __future__ import annotations

import pytest
import torch

from augane.render import MeshRenderer, RenderSettings, UVLayout
from augane.render.texture import sample_texture_packed

# A square filling the image: model (x, y) = (x_n, -y_n) with cam (1, 0, 0); UVs in OBJ convention (v up).
QUAD_VERTICES = torch.tensor([[[-1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, -1.0, 0.0], [-1.0, -1.0, 0.0]]])
QUAD_FACES = torch.tensor([[0, 1, 2], [0, 2, 3]])
QUAD_UVS = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])


def quad_renderer(size: int) -> MeshRenderer:
    layout = UVLayout.from_arrays(QUAD_UVS, QUAD_FACES, num_faces=2)
    return MeshRenderer(QUAD_FACES, RenderSettings(image_size=size, shading="albedo"), uv_layout=layout)


def test_checkerboard_texture_is_reproduced_texel_for_texel() -> None:
    rows, cols = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    checker = ((rows + cols) % 2).float()
    texture = torch.stack([checker, 1 - checker, rows / 7.0])[None]  # channel 2 marks the rows
    out = quad_renderer(8)(QUAD_VERTICES, torch.tensor([[1.0, 0.0, 0.0]]), albedo=texture)
    assert bool(out.mask.all())
    torch.testing.assert_close(out.image, texture, atol=1e-5, rtol=0)
    # Texture row 0 is the top of the image: v = 1 (OBJ / DECA convention).
    assert float(out.image[0, 2, 0].mean()) == pytest.approx(0.0, abs=1e-5)


def test_bilinear_sampling_between_texel_centres_and_zero_padding_outside() -> None:
    texture = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])  # (1, 1, 2, 2): top row 0, 1; bottom row 2, 3
    uv = torch.tensor([[0.25, 0.75], [0.75, 0.25], [0.5, 0.5], [0.5, 0.75], [0.0, 0.75], [-0.5, 0.5]])
    values = sample_texture_packed(texture, uv, torch.zeros(6, dtype=torch.int64))[:, 0]
    # texel centres at u, v in {0.25, 0.75}; (0, 0.75) lies half a texel left of texel 0: half of it, half zero padding.
    torch.testing.assert_close(values, torch.tensor([0.0, 3.0, 1.5, 0.5, 0.0, 0.0]))


def test_texture_gradients_are_the_bilinear_weights() -> None:
    # Each pixel centre samples one texel centre exactly (weight 1); with a map of twice the resolution
    # each pixel centre falls between 2x2 texels (weight 1/4 each, every texel used once).
    texture = torch.rand(2, 3, 8, 8, requires_grad=True)
    vertices = QUAD_VERTICES.repeat(2, 1, 1)
    out = quad_renderer(8)(vertices, torch.tensor([[1.0, 0.0, 0.0]] * 2), albedo=texture)
    out.image[0].sum().backward()
    torch.testing.assert_close(texture.grad[0], torch.ones(3, 8, 8))
    assert float(texture.grad[1].abs().sum()) == 0.0
    big = torch.rand(1, 3, 16, 16, requires_grad=True)
    out = quad_renderer(8)(QUAD_VERTICES, torch.tensor([[1.0, 0.0, 0.0]]), albedo=big)
    out.image.sum().backward()
    torch.testing.assert_close(big.grad, torch.full((1, 3, 16, 16), 0.25))


def test_texture_needs_a_uv_layout_and_the_right_shape() -> None:
    renderer = MeshRenderer(QUAD_FACES, RenderSettings(image_size=8))
    with pytest.raises(ValueError, match="UV layout"):
        renderer(QUAD_VERTICES, torch.tensor([[1.0, 0.0, 0.0]]), albedo=torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="3 channels"):
        quad_renderer(8)(QUAD_VERTICES, torch.tensor([[1.0, 0.0, 0.0]]), albedo=torch.rand(1, 4, 4, 4))
    with pytest.raises(ValueError, match="uv_faces must be \\(2, 3\\)"):
        UVLayout.from_arrays(QUAD_UVS, QUAD_FACES[:1], num_faces=2)
    with pytest.raises(ValueError, match="index UVs 0..4 but there are 4"):
        UVLayout.from_arrays(QUAD_UVS, torch.tensor([[0, 1, 4], [0, 2, 3]]), num_faces=2)
