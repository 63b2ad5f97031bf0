"""Loading FLAME-format files: the real files' quirks (chumpy, sparse, torch tensors) and bad files."""

from __future__ import annotations

import io
import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch

from augane.errors import AssetError
from augane.flame.io import (
    FlameModelData,
    load_flame_model,
    load_landmark_embedding,
    load_mediapipe_embedding,
    write_flame_model,
    write_landmark_embedding,
    write_mediapipe_embedding,
)

from .random_model import NUM_FACES, NUM_VERTICES


@pytest.fixture
def fake_chumpy(monkeypatch):
    """A module ``chumpy.ch`` with a class ``Ch`` that pickles like chumpy's arrays (state dict with ``x``).

    Instances reduce through ``copyreg._reconstructor``, as Python 2 pickles do;
    the module exists only while the test writes its pickle.
    """
    package = types.ModuleType("chumpy")
    module = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = np.asarray(x)
            self._dirty_vars = set()

        def __reduce__(self):
            import copyreg

            return copyreg._reconstructor, (Ch, object, None), dict(self.__dict__)

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    module.Ch = Ch
    package.ch = module
    monkeypatch.setitem(sys.modules, "chumpy", package)
    monkeypatch.setitem(sys.modules, "chumpy.ch", module)
    return Ch


def _globals_of(data: bytes) -> set[str]:
    """Globals a (test-written, trusted) pickle names, recorded while unpickling it normally."""
    names: set[str] = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            names.add(f"{module}.{name}")
            return super().find_class(module, name)

    Recorder(io.BytesIO(data), encoding="latin1").load()
    return names


@pytest.mark.filterwarnings("ignore:Please import `csc_matrix`:DeprecationWarning")
def test_flame2020_style_pickle_with_chumpy_and_sparse_loads(tmp_path, model, fake_chumpy):
    content = model.to_dict()
    content["v_template"] = fake_chumpy(model.v_template)
    content["shapedirs"] = fake_chumpy(model.shapedirs)
    content["weights"] = fake_chumpy(model.weights)
    content["J_regressor"] = scipy.sparse.csc_matrix(model.j_regressor)
    content["bs_style"] = "lbs"
    data = pickle.dumps(content, protocol=2)
    # FLAME 2020 was written by Python 2 with scipy's old module name.
    data = data.replace(b"scipy.sparse._csc\ncsc_matrix", b"scipy.sparse.csc\ncsc_matrix")
    assert {"chumpy.ch.Ch", "copy_reg._reconstructor", "scipy.sparse.csc.csc_matrix"} <= _globals_of(data)
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(data)

    loaded = load_flame_model(path)
    np.testing.assert_array_equal(loaded.v_template, model.v_template)
    np.testing.assert_array_equal(loaded.shapedirs, model.shapedirs)
    np.testing.assert_array_equal(loaded.weights, model.weights)
    np.testing.assert_allclose(loaded.j_regressor, model.j_regressor)
    np.testing.assert_array_equal(loaded.faces, model.faces)
    assert loaded.parents == (-1, 0, 1, 1, 1)
    assert loaded.num_shape_components == 300 and loaded.num_expression_components == 100
    assert loaded.extras["bs_style"] == "lbs"


def test_flame2023_style_plain_numpy_keeps_extra_keys(tmp_path, model):
    content = model.to_dict()
    content.update(J=np.zeros((5, 3)), bs_style="lbs", bs_type="lrotmin")
    path = tmp_path / "flame2023_Open.pkl"
    path.write_bytes(pickle.dumps(content, protocol=4))
    loaded = load_flame_model(path)
    assert loaded.extras["bs_type"] == "lrotmin"
    assert loaded.extras["J"].shape == (5, 3)
    np.testing.assert_array_equal(loaded.posedirs, model.posedirs)


def test_written_model_round_trips(tmp_path, model):
    write_flame_model(tmp_path / "face_model.pkl", model)
    loaded = load_flame_model(tmp_path / "face_model.pkl")
    for name in ("v_template", "faces", "shapedirs", "posedirs", "j_regressor", "weights"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert _globals_of((tmp_path / "face_model.pkl").read_bytes()) <= {
        "numpy.core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype", "numpy.core.multiarray.scalar",
    }


@pytest.mark.parametrize("key", ["v_template", "f", "shapedirs", "posedirs", "J_regressor", "kintree_table",
                                 "weights"])
def test_missing_key_is_named(tmp_path, model, key):
    content = model.to_dict()
    del content[key]
    path = tmp_path / "broken.pkl"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(AssetError, match=rf"broken\.pkl.*lacks key\(s\) '{key}'"):
        load_flame_model(path)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("posedirs", np.zeros((NUM_VERTICES, 3, 35)), r"'posedirs' has shape \(64, 3, 35\), expected \(64, 3, 36\)"),
        ("shapedirs", np.zeros((NUM_VERTICES - 1, 3, 400)), r"'shapedirs' has shape"),
        ("shapedirs", np.zeros((NUM_VERTICES, 3, 100)), r"'shapedirs' has 100 columns"),
        ("J_regressor", np.zeros((4, NUM_VERTICES)), r"'J_regressor' has shape \(4, 64\), expected \(5, 64\)"),
        ("weights", np.zeros((NUM_VERTICES, 3)), r"'weights' has shape"),
        ("f", np.full((NUM_FACES, 3), NUM_VERTICES), r"'f' indexes vertices"),
        ("kintree_table", np.array([[-1, 0, 1, 4, 1], [0, 1, 2, 3, 4]]), r"do not form a tree"),
        ("v_template", np.array(["a", "b"]), r"'v_template' is a 1-d array of <U1"),
    ],
)
def test_mismatched_key_is_named(tmp_path, model, key, value, message):
    content = model.to_dict()
    content[key] = value
    path = tmp_path / "mismatch.pkl"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(AssetError, match=message):
        load_flame_model(path)


def test_not_a_pickle_truncated_and_missing_files(tmp_path, model):
    text = tmp_path / "notes.pkl"
    text.write_text("this is not a FLAME model\n")
    with pytest.raises(AssetError, match=r"notes\.pkl: not a readable pickle"):
        load_flame_model(text)
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(pickle.dumps(model.to_dict())[:5000])
    with pytest.raises(AssetError, match=r"truncated\.pkl: not a readable pickle"):
        load_flame_model(truncated)
    listing = tmp_path / "list.pkl"
    listing.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(AssetError, match="expected a pickled dict"):
        load_flame_model(listing)
    with pytest.raises(AssetError, match="does not exist"):
        load_flame_model(tmp_path / "absent.pkl")


class _RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_forbidden_global_is_refused_and_never_run(tmp_path, model):
    marker = tmp_path / "was_run"
    content = model.to_dict()
    content["payload"] = _RunsCommand(f"touch {marker}")
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(AssetError, match=r"evil\.pkl: refused to unpickle the global '(posix|os|nt)\.system'"):
        load_flame_model(path)
    assert not marker.exists()


def test_landmark_embedding_written_like_deca_release(tmp_path, landmark_embedding):
    path = tmp_path / "landmark_embedding.npy"
    write_landmark_embedding(path, landmark_embedding)
    header = io.BytesIO(path.read_bytes())
    version = np.lib.format.read_magic(header)
    np.lib.format._read_array_header(header, version)
    assert _globals_of(header.read()) == {
        "numpy.core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype", "torch._utils._rebuild_tensor_v2",
        "torch.storage._load_from_bytes", "collections.OrderedDict",
    }
    # What DECA's loader sees (a trusted, test-written file):
    raw = np.load(path, allow_pickle=True, encoding="latin1")[()]
    assert isinstance(raw["dynamic_lmk_faces_idx"], torch.Tensor) and raw["dynamic_lmk_faces_idx"].dtype == torch.int64
    assert raw["dynamic_lmk_bary_coords"].dtype == torch.float32
    assert raw["static_lmk_faces_idx"].dtype == np.int64 and raw["static_lmk_bary_coords"].dtype == np.float64
    assert raw["full_lmk_faces_idx"].shape == (1, 68) and raw["full_lmk_bary_coords"].dtype == np.float32

    loaded = load_landmark_embedding(path, num_faces=NUM_FACES)
    np.testing.assert_array_equal(loaded.dynamic_faces, landmark_embedding.dynamic_faces)
    np.testing.assert_allclose(loaded.dynamic_bary, landmark_embedding.dynamic_bary, atol=1e-7)
    np.testing.assert_array_equal(loaded.full_faces, landmark_embedding.full_faces)
    np.testing.assert_array_equal(loaded.static_bary, landmark_embedding.static_bary)


def test_landmark_embedding_for_another_mesh_is_refused(tmp_path, landmark_embedding):
    path = tmp_path / "landmark_embedding.npy"
    write_landmark_embedding(path, landmark_embedding)
    with pytest.raises(AssetError, match=r"indexes triangles .* has 50 triangles; the embedding belongs to another"):
        load_landmark_embedding(path, num_faces=50)


def test_landmark_embedding_bad_contents(tmp_path, landmark_embedding):
    plain = tmp_path / "plain.npy"
    np.save(plain, np.zeros(3))
    with pytest.raises(AssetError, match="expected a pickled dict"):
        load_landmark_embedding(plain)
    content = {"static_lmk_faces_idx": landmark_embedding.static_faces}
    partial = tmp_path / "partial.npy"
    np.save(partial, np.array(content, dtype=object), allow_pickle=True)
    with pytest.raises(AssetError, match=r"partial\.npy: landmark embedding lacks key\(s\) 'static_lmk_bary_coords'"):
        load_landmark_embedding(partial)
    bad = tmp_path / "bad_bary.npy"
    broken = dict(
        static_lmk_faces_idx=landmark_embedding.static_faces,
        static_lmk_bary_coords=landmark_embedding.static_bary * 2.0,
        dynamic_lmk_faces_idx=torch.from_numpy(landmark_embedding.dynamic_faces),
        dynamic_lmk_bary_coords=torch.from_numpy(landmark_embedding.dynamic_bary),
        full_lmk_faces_idx=landmark_embedding.full_faces[None],
        full_lmk_bary_coords=landmark_embedding.full_bary[None],
    )
    np.save(bad, np.array(broken, dtype=object), allow_pickle=True)
    with pytest.raises(AssetError, match="'static_lmk_bary_coords' barycentric coordinates do not sum to 1"):
        load_landmark_embedding(bad)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_malicious_tensor_storage_is_refused(tmp_path, landmark_embedding):
    """A storage blob is unpickled by torch.load(weights_only=True), which refuses arbitrary globals."""
    marker = tmp_path / "was_run"

    class EvilStorage:
        def __reduce__(self):
            return torch.storage._load_from_bytes, (pickle.dumps(_RunsCommand(f"touch {marker}")),)

    path = tmp_path / "landmark_embedding.npy"
    content = {"static_lmk_faces_idx": EvilStorage()}
    np.save(path, np.array(content, dtype=object), allow_pickle=True)
    with pytest.raises(AssetError, match=r"landmark_embedding\.npy: not a readable pickle"):
        load_landmark_embedding(path)
    assert not marker.exists()


def test_mediapipe_embedding_round_trip_and_errors(tmp_path, mediapipe_embedding):
    path = tmp_path / "mediapipe_landmark_embedding.npz"
    write_mediapipe_embedding(path, mediapipe_embedding)
    with np.load(path) as archive:
        assert archive["lmk_face_idx"].dtype == np.uint32 and archive["landmark_indices"].dtype == np.int64
    loaded = load_mediapipe_embedding(path, num_faces=NUM_FACES)
    np.testing.assert_array_equal(loaded.faces, mediapipe_embedding.faces)
    with pytest.raises(AssetError, match="belongs to another mesh"):
        load_mediapipe_embedding(path, num_faces=10)

    reordered = tmp_path / "reordered.npz"
    np.savez(reordered, lmk_face_idx=mediapipe_embedding.faces, lmk_b_coords=mediapipe_embedding.bary,
             landmark_indices=mediapipe_embedding.landmark_indices[::-1])
    with pytest.raises(AssetError, match=r"'landmark_indices' differ .* at position 0: 415 instead of 276"):
        load_mediapipe_embedding(reordered)
    missing = tmp_path / "missing.npz"
    np.savez(missing, lmk_face_idx=mediapipe_embedding.faces)
    with pytest.raises(AssetError, match=r"lacks key\(s\) 'lmk_b_coords', 'landmark_indices'"):
        load_mediapipe_embedding(missing)
    wrong_count = tmp_path / "wrong_count.npz"
    np.savez(wrong_count, lmk_face_idx=mediapipe_embedding.faces[:100], lmk_b_coords=mediapipe_embedding.bary[:100],
             landmark_indices=mediapipe_embedding.landmark_indices[:100])
    with pytest.raises(AssetError, match=r"'lmk_face_idx' has shape \(100,\), expected \(105,\)"):
        load_mediapipe_embedding(wrong_count)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, lmk_face_idx=np.array([{"a": 1}], dtype=object), lmk_b_coords=mediapipe_embedding.bary,
             landmark_indices=mediapipe_embedding.landmark_indices)
    with pytest.raises(AssetError, match="not a readable .npz of plain arrays"):
        load_mediapipe_embedding(pickled)


def test_model_data_split_rule(model):
    assert isinstance(model, FlameModelData)
    np.testing.assert_array_equal(model.expression_directions(3), model.shapedirs[:, :, 300:303])
    np.testing.assert_array_equal(model.shape_directions(2), model.shapedirs[:, :, :2])
