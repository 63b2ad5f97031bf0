"""Albedo spaces in both of DECA's layouts, the albedo layer, and the head-template UV layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augane.errors import AssetError
from augane.flame.texture import (
    BFM_ALBEDO_LAYOUT,
    FLAME_TEXTURE_LAYOUT,
    AlbedoLayer,
    HeadTemplate,
    load_albedo_space,
    load_head_template,
    write_albedo_space,
    write_head_template,
)

SIDE, COMPONENTS = 8, 6


@pytest.fixture
def rgb_space():
    rng = np.random.default_rng(0)
    return rng.random((SIDE, SIDE, 3)), rng.normal(scale=0.1, size=(SIDE, SIDE, 3, COMPONENTS))


def _deca_flametex(mean_flat, basis_flat, tex, side):
    """DECA's FLAMETex evaluation, written out: mean + basis @ tex, reshape, channels [2, 1, 0]."""
    texture = mean_flat.reshape(1, -1) + (basis_flat[None] * tex[:, None, :]).sum(-1)
    texture = texture.reshape(tex.shape[0], side, side, 3).transpose(0, 3, 1, 2)
    return texture[:, [2, 1, 0]]


def test_flame_texture_layout_matches_deca(tmp_path, rgb_space):
    mean, basis = rgb_space
    path = tmp_path / "FLAME_texture.npz"
    # A file in FLAME's layout: BGR, 0-255 units.
    np.savez(path, mean=mean[:, :, ::-1] * 255.0, tex_dir=basis[:, :, ::-1] * 255.0)
    space = load_albedo_space(path)
    assert space.layout == FLAME_TEXTURE_LAYOUT and space.resolution == (SIDE, SIDE)
    np.testing.assert_allclose(space.mean, mean, atol=1e-6)
    tex = np.random.default_rng(1).normal(size=(2, 4))
    layer = AlbedoLayer(space, n_tex=4, dtype=torch.float64)
    expected = _deca_flametex(mean[:, :, ::-1].reshape(-1), basis[:, :, ::-1].reshape(-1, COMPONENTS)[:, :4],
                              tex, SIDE)
    np.testing.assert_allclose(layer(torch.tensor(tex)).numpy(), expected, atol=1e-5)


def test_bfm_layout_flat_arrays(tmp_path, rgb_space):
    mean, basis = rgb_space
    path = tmp_path / "FLAME_albedo_from_BFM.npz"
    np.savez(path, MU=mean[:, :, ::-1].reshape(1, -1), PC=basis[:, :, ::-1].reshape(-1, COMPONENTS), specMU=np.zeros(3))
    space = load_albedo_space(path, max_components=5)
    assert space.layout == BFM_ALBEDO_LAYOUT and space.num_components == 5
    np.testing.assert_allclose(space.basis, basis[..., :5], atol=1e-6)


def test_fewer_components_than_n_tex_ignore_the_rest(tmp_path, rgb_space):
    mean, basis = rgb_space
    path = tmp_path / "albedo_model.npz"
    write_albedo_space(path, mean, basis)
    layer = AlbedoLayer(load_albedo_space(path), n_tex=50, resolution=4)
    tex = torch.zeros(3, 50)
    tex[:, COMPONENTS:] = 100.0  # beyond the space: no effect
    tex[1, 0] = 1.0
    out = layer(tex)
    assert out.shape == (3, 3, 4, 4)
    torch.testing.assert_close(out[0], out[2])
    full = AlbedoLayer(load_albedo_space(path), n_tex=COMPONENTS)(tex[:, :COMPONENTS])
    torch.testing.assert_close(full[1] - full[0], torch.tensor(basis[..., 0], dtype=torch.float32).permute(2, 0, 1),
                               atol=1e-5, rtol=0)


def test_bad_albedo_files(tmp_path):
    wrong_keys = tmp_path / "wrong.npz"
    np.savez(wrong_keys, albedo=np.zeros((4, 4, 3)))
    with pytest.raises(AssetError, match=r"wrong\.npz: albedo model has keys \['albedo'\]"):
        load_albedo_space(wrong_keys)
    not_square = tmp_path / "not_square.npz"
    np.savez(not_square, MU=np.zeros(30), PC=np.zeros((30, 2)))
    with pytest.raises(AssetError, match="not a square RGB texture"):
        load_albedo_space(not_square)
    with pytest.raises(AssetError, match="does not exist"):
        load_albedo_space(tmp_path / "absent.npz")


@pytest.fixture
def template():
    """Two triangles sharing an edge, with a UV seam: 4 vertices, 5 UVs."""
    return HeadTemplate(
        vertices=np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.5]], dtype=float),
        faces=np.array([[0, 1, 2], [1, 3, 2]]),
        uvs=np.array([[0, 0], [0.5, 0], [0, 0.5], [0.6, 0.1], [0.9, 0.9]]),
        uv_faces=np.array([[0, 1, 2], [3, 4, 2]]),
    )


def test_head_template_round_trip(tmp_path, template):
    path = tmp_path / "head_template.obj"
    write_head_template(path, template, header="test template")
    loaded = load_head_template(path, num_vertices=4, num_faces=2)
    np.testing.assert_allclose(loaded.vertices, template.vertices)
    np.testing.assert_array_equal(loaded.faces, template.faces)
    np.testing.assert_allclose(loaded.uvs, template.uvs)
    np.testing.assert_array_equal(loaded.uv_faces, template.uv_faces)


def test_head_template_reads_deca_style_lines(tmp_path):
    path = tmp_path / "deca_like.obj"
    path.write_text(
        "# Blender OBJ\nmtllib template.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0.1 0.2\nvt 0.3 0.4\nvt 0.5 0.6\n"
        "usemtl material_1\ns off\nf 3/1 2/2 1/3\nf -1/-1 -2/-2 -3/-3\n"
    )
    loaded = load_head_template(path)
    np.testing.assert_array_equal(loaded.faces, [[2, 1, 0], [2, 1, 0]])
    np.testing.assert_array_equal(loaded.uv_faces, [[0, 1, 2], [2, 1, 0]])


def test_bad_head_templates(tmp_path, template):
    path = tmp_path / "head_template.obj"
    write_head_template(path, template)
    with pytest.raises(AssetError, match="has 4 vertices and 2 triangles, the face model 5023 and 9976"):
        load_head_template(path, num_vertices=5023, num_faces=9976)
    no_uv = tmp_path / "no_uv.obj"
    no_uv.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1 2 3\n")
    with pytest.raises(AssetError, match=r"no_uv\.obj: line 5 has a face corner '1' without a UV index"):
        load_head_template(no_uv)
    quad = tmp_path / "quad.obj"
    quad.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nvt 0 0\nf 1/1 2/1 4/1 3/1\n")
    with pytest.raises(AssetError, match="face with 4 corners, expected triangles"):
        load_head_template(quad)
    out_of_range = tmp_path / "range.obj"
    out_of_range.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/2 3/1\n")
    with pytest.raises(AssetError, match="line 5 refers to element 2 of 1"):
        load_head_template(out_of_range)
