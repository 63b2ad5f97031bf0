"""Validation metrics against hand-computed values, ground-truth errors on the tiny face model, combining totals."""

from __future__ import annotations

import pytest
import torch

from augane.landmarks import MEDIAPIPE_105, MP_LEFT_EYE_OUTER, MP_RIGHT_EYE_OUTER
from augane.train.face import FaceDecoder
from augane.train.metrics import MetricTotals, au_consistency, ground_truth_errors, landmark_nme

RIGHT, LEFT = MEDIAPIPE_105.index(MP_RIGHT_EYE_OUTER), MEDIAPIPE_105.index(MP_LEFT_EYE_OUTER)


def test_landmark_nme_by_hand():
    target = torch.zeros(2, 105, 2)
    target[:, RIGHT, 0], target[:, LEFT, 0] = -0.25, 0.25  # outer eye corners 0.5 apart
    predicted = target.clone()
    predicted[0, :, 1] += 0.05  # every point 0.05 off: NME 0.1
    predicted[1, 7] += torch.tensor([0.3, 0.4])  # one point 0.5 off: mean 0.5 / 105, NME twice that
    torch.testing.assert_close(landmark_nme(predicted, target), torch.tensor([0.1, 1.0 / 105]))


def test_au_consistency_by_hand():
    inputs = torch.tensor([[0.9, 0.1, 0.6, 0.2]])
    renders = torch.tensor([[0.7, 0.2, 0.4, 0.2]])
    result = au_consistency(inputs, renders, threshold=0.5)
    torch.testing.assert_close(result["au_prob_error"], torch.tensor([0.125]))
    torch.testing.assert_close(result["au_agreement"], torch.tensor([0.75]))  # AU 3 flips at the threshold


def test_ground_truth_errors_measure_expression_only(world):
    config, _ = world
    face = FaceDecoder.from_config(config, 32)
    generator = torch.Generator().manual_seed(0)
    true_exp = torch.zeros(3, 50)
    true_exp[:, :12] = torch.randn(3, 12, generator=generator)
    true_pose = torch.zeros(3, 6)
    true_pose[:, 3] = 0.1
    batch = {"gt_exp": true_exp[:, :20], "gt_pose": true_pose,  # ground truth with fewer coefficients
             "deca_params": {"shape": torch.randn(3, 100, generator=generator) * 0.5}}
    global_turn = true_pose.clone()
    global_turn[:, :3] = 0.3  # a global rotation and camera are not expression errors
    exact = ground_truth_errors(face, {"exp": true_exp, "pose": global_turn}, batch)
    torch.testing.assert_close(exact["expression_error"], torch.zeros(3))
    torch.testing.assert_close(exact["vertex_error_mm"], torch.zeros(3), atol=1e-4, rtol=0)
    off = true_exp.clone()
    off[:, 0] += 1.0
    errors = ground_truth_errors(face, {"exp": off, "pose": true_pose}, batch)
    torch.testing.assert_close(errors["expression_error"], torch.ones(3))
    # One unit of a tiny-world blend shape moves vertices by up to 10 mm.
    assert (errors["vertex_error_mm"] > 0.1).all() and (errors["vertex_error_mm"] < 10).all()
    assert ground_truth_errors(face, {"exp": off, "pose": true_pose}, {"deca_params": {}}) == {}
    unused = true_exp.clone()
    unused[:, 40] += 5.0  # the tiny model's blend shapes 12-49 are zero: no effect, not an error
    assert face.expression_components == 12
    errors = ground_truth_errors(face, {"exp": unused, "pose": true_pose}, batch)
    torch.testing.assert_close(errors["expression_error"], torch.zeros(3))
    torch.testing.assert_close(errors["vertex_error_mm"], torch.zeros(3), atol=1e-4, rtol=0)


def test_totals_combine_batches_as_one_mean():
    totals = MetricTotals()
    totals.add_means({"loss": torch.tensor(2.0)}, 3)
    totals.add_means({"loss": torch.tensor(4.0)}, 1)
    totals.add_samples({"nme": torch.tensor([1.0, 2.0, 9.0])}, 2)  # the third value is a stand-in
    totals.add_means({"loss": torch.tensor(100.0)}, 0)
    names = totals.names()
    assert MetricTotals.means(names, totals.as_tensor(names)) == pytest.approx({"loss": 2.5, "nme": 1.5})
    assert MetricTotals.means(["x"], torch.zeros(2, 1)) == {}
