"""``augane render`` and the preview helpers: mesh files, FLAME-format files, framing, errors."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from augane.cli.main import main
from augane.errors import AssetError
from augane.io.images import read_image
from augane.render import RenderSettings
from augane.render.preview import fit_camera, load_mesh, render_preview, rotation


def test_obj_with_vertex_colours_renders_lit_and_framed(tmp_path) -> None:
    sphere = trimesh.creation.icosphere(subdivisions=2)
    sphere.vertices = sphere.vertices * [0.05, 0.08, 0.05] + [1.0, 2.0, 0.0]
    sphere.visual.vertex_colors = np.tile([255, 0, 0, 255], (len(sphere.vertices), 1))
    path = tmp_path / "ball.ply"
    sphere.export(path)
    out = tmp_path / "ball.png"
    assert main(["render", str(path), "--out", str(out), "--size", "64", "--background", "0,0,1"]) == 0
    image = read_image(out)
    assert image.shape == (64, 64, 3)
    assert tuple(image[0, 0]) == (0, 0, 255)  # background
    centre = image[32, 32].astype(int)
    assert centre[0] > 100 and centre[1] == 0 and centre[2] == 0  # lit red
    covered = (image != [0, 0, 255]).any(-1)
    rows = np.flatnonzero(covered.any(1))
    assert rows[0] <= 4 and rows[-1] >= 59  # fitted to ~90 % of the height, centred


def test_flame_format_model_template_renders_in_shape_mode(tmp_path) -> None:
    from augane.flame.io import FLAME_PARENTS, FlameModelData, write_flame_model

    sphere = trimesh.creation.icosphere(subdivisions=2)
    count = len(sphere.vertices)
    model = FlameModelData(
        v_template=np.asarray(sphere.vertices) * 0.1,
        faces=np.asarray(sphere.faces, dtype=np.int64),
        shapedirs=np.zeros((count, 3, 400)),
        posedirs=np.zeros((count, 3, 36)),
        j_regressor=np.full((5, count), 1.0 / count),
        parents=FLAME_PARENTS,
        weights=np.tile([1.0, 0, 0, 0, 0], (count, 1)),
    )
    path = tmp_path / "model.pkl"
    write_flame_model(path, model)
    out = tmp_path / "shape.png"
    assert main(["render", str(path), "--out", str(out), "--size", "48", "--shading", "shape"]) == 0
    image = read_image(out)
    grey = image[24, 24].astype(int)
    assert grey[0] == grey[1] == grey[2] and 150 < grey[0] < 230  # DECA's grey under its shape lights
    assert tuple(image[0, 0]) == (0, 0, 0)


def test_framing_and_pose_helpers() -> None:
    vertices = np.array([[0.0, 0.0, 0.0], [2.0, 1.0, 0.0], [1.0, 4.0, 1.0]], dtype=np.float32)
    cam = fit_camera(vertices, fill=1.0)
    np.testing.assert_allclose(cam, [0.5, -1.0, -2.0])
    assert fit_camera(vertices, scale=3.0)[0] == 3.0
    np.testing.assert_allclose(rotation(90, 0) @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(rotation(0, 90) @ [0, 1, 0], [0, 0, 1], atol=1e-12)


def test_missing_and_malformed_meshes_raise_asset_errors(tmp_path) -> None:
    with pytest.raises(AssetError, match="does not exist"):
        load_mesh(tmp_path / "none.obj")
    broken = tmp_path / "broken.obj"
    broken.write_text("v 0 0 0\nv 1 0 0\n")
    with pytest.raises(AssetError, match="triangle mesh"):
        load_mesh(broken)
    assert main(["render", str(tmp_path / "none.obj"), "--out", str(tmp_path / "x.png")]) == 1


def test_render_preview_is_deterministic_uint8() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=1)
    mesh = load_mesh_from(sphere)
    first = render_preview(mesh, RenderSettings(image_size=(24, 32), shading="shape"), yaw=30, pitch=-10)
    second = render_preview(mesh, RenderSettings(image_size=(24, 32), shading="shape"), yaw=30, pitch=-10)
    assert first.dtype == np.uint8 and first.shape == (24, 32, 3)
    assert np.array_equal(first, second) and first.max() > 0


def load_mesh_from(mesh: trimesh.Trimesh):
    from augane.render.preview import PreviewMesh

    return PreviewMesh(np.asarray(mesh.vertices, dtype=np.float32), np.asarray(mesh.faces, dtype=np.int64))
