"""The stand-in AU detector: targets, class weights, OpenGraphAU's loss, and a short training run end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from augane.aus import OPENGRAPHAU_MAIN_AUS
from augane.cli.main import main
from augane.demo.detector_data import load_crops
from augane.demo.train_au_detector import class_weights, output_targets, score_detections, weighted_asymmetric_loss
from augane.features.networks import load_au_detector_from_config
from augane.nets.checkpoint import UNTRAINED_MARKER, read_checkpoint
from augane.nets.mefarg import AU_DETECTOR_VARIANTS
from augane.nets.release_format import PROVENANCE_ENTRY
from tests.demo.conftest import detector_config

OUTPUTS = AU_DETECTOR_VARIANTS["opengraphau"].outputs


def _labels(**columns):
    from augane.demo.face_model import DEMO_AUS

    table = pd.DataFrame({f"AU{au}": [0, 0, 0] for au in DEMO_AUS})
    for name, values in columns.items():
        table[name] = values
    return table


def test_targets_follow_labels_sub_aus_and_absent_aus():
    labels = _labels(AU12=[0, 1, 3], AU4=[2, -1, 5])
    targets, mask = output_targets(labels, OUTPUTS, threshold=2)
    column = {output: position for position, output in enumerate(OUTPUTS)}
    np.testing.assert_array_equal(targets[:, column[12]], [0, 0, 1])
    np.testing.assert_array_equal(targets[:, column["L12"]], targets[:, column[12]])
    np.testing.assert_array_equal(targets[:, column["R4"]], [1, 0, 1])
    np.testing.assert_array_equal(mask[:, column[4]], [True, False, True])  # -1 = not annotated
    for absent in (14, 24, "L14"):
        assert targets[:, column[absent]].sum() == 0 and mask[:, column[absent]].all()
    with pytest.raises(Exception, match="AU12"):
        output_targets(labels.drop(columns="AU12"), OUTPUTS, 2)


def test_class_weights_are_inverse_rates_with_mean_one():
    targets = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]], np.float32)
    weights = class_weights(targets, np.ones_like(targets, bool))
    np.testing.assert_allclose(weights[:2] / weights[:2].sum() * 2, weights[:2])
    assert weights[1] / weights[0] == pytest.approx(3.0) and weights[2] == 1.0


def test_loss_is_opengraphau_weighted_asymmetric_loss():
    prob = torch.tensor([[0.9, 0.2], [0.4, 0.7]], requires_grad=True)
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mask = torch.tensor([[True, True], [True, False]])
    weight = torch.tensor([2.0, 0.5])
    loss = weighted_asymmetric_loss(prob, target, mask, weight)
    expected = -(2.0 * np.log(0.9) + 0.5 * 0.2 * np.log(0.8) + 2.0 * 0.4 * np.log(0.6)) / 3
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    loss.backward()
    # the p that weights the negative term carries no gradient: d/dp [-p_sg log(1 - p)] = p / (1 - p)
    assert float(prob.grad[0, 1]) == pytest.approx(0.5 * 0.2 / 0.8 / 3, rel=1e-5)
    assert float(prob.grad[1, 1]) == 0.0


def test_scores_count_f1_per_au():
    labels = _labels(AU12=[3, 0, 2], AU1=[0, 0, 0])
    scores = np.zeros((3, len(OUTPUTS)), np.float32)
    scores[[0, 1], OUTPUTS.index(12)] = 0.9
    result = score_detections(scores, labels, OUTPUTS, threshold=2, aus=(12, 1))
    assert result["per_au"]["AU12"] == {"f1": 0.5, "precision": 0.5, "recall": 0.5, "positives": 2, "predicted": 2}
    assert result["per_au"]["AU1"]["f1"] == 0.0 and result["macro_f1"] == 0.25
    assert result["absent_aus_false_positive_rate"] == 0.0


def test_short_training_run_writes_a_loadable_checkpoint_and_scores(tiny_cache, face_model_dir, tiny_world, monkeypatch):
    monkeypatch.chdir(tiny_cache)
    config = detector_config(face_model_dir, tiny_world)
    (tiny_cache / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["demo", "train-au-detector", "--config", "config.yaml", "--out", "detectors/au_detector.pth",
                 "--score", "detectors/au_detector_score.json", "--max-steps", "2"]) == 0
    record = json.loads((tiny_cache / "detectors" / "au_detector_score.json").read_text())
    assert record["training"]["steps"] == 2 and "stand-in trained on the synthetic demo world" in record["provenance"]
    assert record["samples"]["train"] == len(load_crops("demo_train"))
    assert record["detection"]["demo_train"]["rate"] == 1.0
    assert set(record["heldout"]["per_au"]) >= {"AU1", "AU12", "AU26"} and 0 <= record["heldout"]["macro_f1"] <= 1
    content = read_checkpoint(tiny_cache / "detectors" / "au_detector.pth")
    assert set(content) == {"epoch", "state_dict", PROVENANCE_ENTRY} and UNTRAINED_MARKER not in content
    detector = load_au_detector_from_config(config["resources"])
    assert detector.au_names[: len(OPENGRAPHAU_MAIN_AUS)] == OPENGRAPHAU_MAIN_AUS
    assert detector.backbone_depth == "resnet18" and not detector.checkpoint_info.untrained
    assert detector.checkpoint_info.sha256 == record["sha256"]
    with torch.inference_mode():
        prob = detector(torch.zeros(2, 3, 64, 64)).prob
    assert prob.shape == (2, 41) and torch.isfinite(prob).all()
