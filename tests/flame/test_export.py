"""OBJ / PLY export round trips through trimesh, with and without per-vertex colours."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from augane.flame.export import write_mesh


@pytest.fixture
def mesh():
    rng = np.random.default_rng(0)
    vertices = rng.normal(scale=0.05, size=(40, 3))
    faces = np.stack([rng.choice(40, 3, replace=False) for _ in range(60)])
    colors = rng.random((40, 3))
    return vertices, faces, colors


@pytest.mark.parametrize("suffix", [".obj", ".ply"])
def test_round_trip_keeps_vertices_faces_and_colours(tmp_path, mesh, suffix):
    vertices, faces, colors = mesh
    path = tmp_path / f"mesh{suffix}"
    write_mesh(path, torch.tensor(vertices), torch.tensor(faces), colors)
    loaded = trimesh.load(path, process=False)
    np.testing.assert_allclose(loaded.vertices, vertices, atol=1e-7)
    np.testing.assert_array_equal(loaded.faces, faces)
    expected = np.round(colors * 255).astype(np.uint8)
    np.testing.assert_array_equal(loaded.visual.vertex_colors[:, :3], expected)


@pytest.mark.parametrize("suffix", [".obj", ".ply"])
def test_round_trip_without_colours(tmp_path, mesh, suffix):
    vertices, faces, _ = mesh
    path = tmp_path / f"plain{suffix}"
    write_mesh(path, vertices, faces)
    loaded = trimesh.load(path, process=False)
    np.testing.assert_allclose(loaded.vertices, vertices, atol=1e-7)
    np.testing.assert_array_equal(loaded.faces, faces)


def test_bad_inputs(tmp_path, mesh):
    vertices, faces, colors = mesh
    with pytest.raises(ValueError, match="mesh formats are .obj, .ply"):
        write_mesh(tmp_path / "mesh.stl", vertices, faces)
    with pytest.raises(ValueError, match="39 vertex colours for 40 vertices"):
        write_mesh(tmp_path / "mesh.ply", vertices, faces, colors[:-1])
    assert not list(tmp_path.iterdir())
