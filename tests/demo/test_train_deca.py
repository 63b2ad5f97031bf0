"""The stand-in DECA encoder: crop-frame supervision, the standardised loss, and a short training run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from augane.cli.main import main
from augane.demo.detector_data import load_crops
from augane.demo.train_deca import Standardiser, deca_targets, load_face_layer, projected_landmarks
from augane.errors import DataError
from augane.features.networks import load_deca_from_config
from augane.nets.checkpoint import UNTRAINED_MARKER, read_checkpoint
from augane.nets.deca import DECA_NUM_PARAMS
from augane.nets.release_format import PROVENANCE_ENTRY
from tests.demo.conftest import detector_config


def test_targets_put_the_true_face_on_the_crop_landmarks(tiny_cache, face_model_dir, tiny_world, monkeypatch):
    """The true parameters with the crop-frame camera project onto the true landmarks mapped into the crop,
    and those lie on MediaPipe's landmarks of the crop."""
    monkeypatch.chdir(tiny_cache)
    config = detector_config(face_model_dir, tiny_world)
    crops = load_crops("demo_train")
    targets = deca_targets(crops)
    assert targets.params.shape == (len(crops), DECA_NUM_PARAMS)
    layer = load_face_layer(config["resources"])
    projected = projected_landmarks(layer, torch.from_numpy(targets.params)).numpy()
    np.testing.assert_allclose(projected, targets.landmarks, atol=1e-4)
    from augane.io.shards import open_store

    store = open_store(tiny_cache / "results" / "cache" / "demo_train" / "shard-0000" / "preprocess.zarr")
    mediapipe = np.asarray(store["landmarks_ndc"][:])  # shard 0 holds the first crops of the index
    eyes_nose = list(range(20, 65))  # MediaPipe's mesh and the model agree best away from the moving mouth and brows
    assert np.abs(mediapipe[:, eyes_nose] - targets.landmarks[: len(mediapipe), eyes_nose]).mean() < 0.04


def test_standardised_loss_weighs_groups_by_their_varying_entries():
    rng = np.random.default_rng(0)
    params = np.zeros((50, DECA_NUM_PARAMS), np.float32)
    params[:, :20] = rng.normal(0.0, 2.0, (50, 20))  # 20 varying shape entries
    params[:, 150:165] = rng.normal(0.0, 0.5, (50, 15))  # 15 varying exp entries
    standardiser = Standardiser.fit(params)
    assert int(standardiser.varying.sum()) == 35
    target = torch.from_numpy(params)
    assert float(standardiser.loss(target, target)) == 0.0
    shifted = target.clone()
    shifted[:, 150:165] += torch.from_numpy(params[:, 150:165].std(axis=0))  # one standard deviation everywhere
    assert float(standardiser.loss(shifted, target)) == pytest.approx(1.0, rel=1e-4)


def test_short_training_run_writes_a_loadable_checkpoint_and_scores(tiny_cache, face_model_dir, tiny_world, monkeypatch):
    monkeypatch.chdir(tiny_cache)
    config = detector_config(face_model_dir, tiny_world)
    (tiny_cache / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["demo", "train-deca", "--config", "config.yaml", "--out", "detectors/deca_model.tar",
                 "--score", "detectors/deca_score.json", "--max-steps", "2"]) == 0
    record = json.loads((tiny_cache / "detectors" / "deca_score.json").read_text())
    assert record["training"]["steps"] == 2 and "stand-in trained on the synthetic demo world" in record["provenance"]
    heldout = record["heldout"]
    assert set(heldout["parameters"]) == {"shape", "tex", "exp", "pose", "cam", "light"}
    assert heldout["parameters"]["shape"]["entries"] == 20 and heldout["parameters"]["exp"]["entries"] > 0
    for key in ("landmark_error_px", "landmark_nme_interocular", "expression_vertex_error_mm"):
        assert np.isfinite(heldout[key]) and heldout[key] > 0
    content = read_checkpoint(tiny_cache / "detectors" / "deca_model.tar")
    assert set(content) == {"E_flame", PROVENANCE_ENTRY} and UNTRAINED_MARKER not in content
    encoder = load_deca_from_config(config["resources"])
    assert encoder.backbone == "resnet18" and not encoder.checkpoint_info.untrained
    with torch.inference_mode():
        out = encoder(torch.zeros(1, 3, 64, 64))
    assert out.params.shape == (1, DECA_NUM_PARAMS) and out.feature.shape == (1, 512)


def test_missing_preprocessing_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="run the preprocess stage for dataset 'demo_train'"):
        load_crops("demo_train")
