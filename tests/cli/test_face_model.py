"""`augane face-model export`: a configured FLAME-format model written as a mesh file."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from augane.cli.main import main
from augane.flame.io import FLAME_PARENTS, FlameModelData, write_flame_model
from augane.flame.texture import HeadTemplate, write_albedo_space, write_head_template


def _small_model(num_vertices: int = 30, num_faces: int = 40) -> FlameModelData:
    rng = np.random.default_rng(4)
    weights = np.zeros((num_vertices, 5))
    weights[:, 1] = 1.0
    return FlameModelData(
        v_template=rng.normal(scale=0.05, size=(num_vertices, 3)),
        faces=np.stack([rng.choice(num_vertices, 3, replace=False) for _ in range(num_faces)]),
        shapedirs=rng.normal(scale=1e-3, size=(num_vertices, 3, 400)),
        posedirs=np.zeros((num_vertices, 3, 36)),
        j_regressor=np.full((5, num_vertices), 1.0 / num_vertices),
        parents=FLAME_PARENTS,
        weights=weights,
    )


@pytest.fixture
def configured(tmp_path):
    model = _small_model()
    write_flame_model(tmp_path / "face_model.pkl", model)
    config = tmp_path / "config.yaml"
    config.write_text(
        "resources:\n"
        f"  face_model: {tmp_path / 'face_model.pkl'}\n"
        "  head_template: null\n"
        "  albedo_model: null\n"
    )
    return model, config


def test_export_writes_the_decoded_mesh(tmp_path, configured):
    model, config = configured
    out = tmp_path / "mesh.obj"
    assert main(["face-model", "export", "--config", str(config), "--out", str(out)]) == 0
    mesh = trimesh.load(out, process=False)
    np.testing.assert_allclose(mesh.vertices, model.v_template, atol=1e-7)
    np.testing.assert_array_equal(mesh.faces, model.faces)


def test_export_applies_aus_and_colours(tmp_path, configured):
    model, config = configured
    side = 8
    uvs = np.random.default_rng(0).random((model.num_vertices, 2))
    write_head_template(tmp_path / "head_template.obj",
                        HeadTemplate(vertices=model.v_template, faces=model.faces, uvs=uvs, uv_faces=model.faces))
    mean = np.zeros((side, side, 3))
    mean[..., 0] = 1.0  # a red albedo
    write_albedo_space(tmp_path / "albedo.npz", mean, np.zeros((side, side, 3, 2)))
    out = tmp_path / "mesh.ply"
    code = main(["face-model", "export", "--config", str(config), "--out", str(out), "--aus", "AU12=5",
                 "--set", f"resources.head_template={tmp_path / 'head_template.obj'}",
                 "--set", f"resources.albedo_model={tmp_path / 'albedo.npz'}"])
    assert code == 0
    mesh = trimesh.load(out, process=False)
    assert not np.allclose(mesh.vertices, model.v_template)  # the AU12 component moved it
    np.testing.assert_array_equal(mesh.visual.vertex_colors[:, :3], np.tile([255, 0, 0], (model.num_vertices, 1)))


def test_bad_aus_are_reported(tmp_path, configured):
    _, config = configured
    assert main(["face-model", "export", "--config", str(config), "--out", str(tmp_path / "m.ply"),
                 "--aus", "12:4"]) == 1
    assert main(["face-model", "export", "--config", str(config), "--out", str(tmp_path / "m.ply"),
                 "--aus", "14=2"]) == 1
    assert not (tmp_path / "m.ply").exists()
