"""L_auLmk (eq. 5): Table 1 regions, AU activations, dropped AUs, hand-computed values."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from augane.aus import MEGRAPHAU_BP4D_AUS, MEGRAPHAU_DISFA_AUS, OPENGRAPHAU_MAIN_AUS, OPENGRAPHAU_SUB_AUS
from augane.errors import DataError
from augane.flame.camera import project
from augane.landmarks import AU_REGIONS, MEDIAPIPE_105, NUM_LANDMARKS
from augane.losses import au_activation, au_landmark_loss, au_region_coverage, project_landmarks
from tests.losses.faces import astronaut_landmarks_105

# Table 1 of the paper, transcribed from its text ("a, b, ..., c" ranges expanded).
_BROW = set(range(0, 20))
_INNER_BROW = {1, 3, 5, 6, 8, 9, 11, 13, 15, 16, 18, 19}
_EYE = set(range(20, 52))
_LOWER_EYE = {*range(20, 28), 33, *range(36, 44), 49}
_NOSE = set(range(52, 65))
_MOUTH = set(range(65, 105))
_UPPER_MOUTH = {65, 66, *range(69, 77), *range(85, 95), 103, 104}
_MOUTH_CORNER = {71, 72, 73, 74, 79, 80, 81, 82, 85, 86, 88, 89, 90, 91, 92, 93, 97, 98, 99, 100, 103, 104}
PAPER_TABLE_1 = {
    4: _BROW,  # Brow Lowerer
    1: _INNER_BROW,  # Inner Brow Raiser
    2: _BROW - _INNER_BROW,  # Outer Brow Raiser
    7: _EYE,  # Lid Tightener
    6: _LOWER_EYE,  # Cheek Raiser
    5: _EYE - _LOWER_EYE,  # Upper Lid Raiser
    9: _NOSE,  # Nose Wrinkler
    18: _MOUTH,  # Lip Pucker
    20: _MOUTH,  # Lip Stretcher
    23: _MOUTH,  # Lip Tightener
    10: _UPPER_MOUTH,  # Upper Lip Raiser
    12: _MOUTH_CORNER,  # Lip Corner Puller
    15: _MOUTH_CORNER,  # Lip Corner Depressor
}


def test_regions_are_the_papers_table_1():
    assert {au: set(part) for au, part in AU_REGIONS.items()} == PAPER_TABLE_1
    for part in AU_REGIONS.values():
        assert all(0 <= j < NUM_LANDMARKS for j in part)
        assert len(set(part)) == len(part)


def test_regions_sit_on_the_right_facial_parts():
    points = astronaut_landmarks_105()
    midline_x = points[[MEDIAPIPE_105.index(v) for v in (168, 4, 0, 17)], 0].mean()
    lateral = np.abs(points[:, 0] - midline_x)
    # Inner brow points are nearer the midline than outer brow points.
    assert lateral[list(AU_REGIONS[1])].mean() < lateral[list(AU_REGIONS[2])].mean()
    # Upper-eye points lie above the lower-eye points (image y grows downwards).
    assert points[list(AU_REGIONS[5]), 1].mean() < points[list(AU_REGIONS[6]), 1].mean()
    # Brows above eyes above nose tip above mouth.
    brow, eye, mouth = (points[list(AU_REGIONS[au]), 1].mean() for au in (4, 7, 18))
    assert brow < eye < points[MEDIAPIPE_105.index(4), 1] < mouth
    # Mouth-corner points are further from the midline than the mouth as a whole.
    assert lateral[list(AU_REGIONS[12])].mean() > lateral[list(AU_REGIONS[18])].mean()


def test_coverage_of_the_released_detectors():
    assert au_region_coverage(OPENGRAPHAU_MAIN_AUS + OPENGRAPHAU_SUB_AUS).missing == ()
    disfa = au_region_coverage(MEGRAPHAU_DISFA_AUS)
    assert set(disfa.used) == {1, 2, 4, 6, 9, 12}
    assert set(disfa.missing) == {5, 7, 10, 15, 18, 20, 23}
    assert [MEGRAPHAU_DISFA_AUS[c] for c in disfa.columns] == list(disfa.used)
    bp4d = au_region_coverage(MEGRAPHAU_BP4D_AUS)
    assert set(bp4d.missing) == {5, 9, 18, 20}
    assert bp4d.normaliser == sum(len(AU_REGIONS[au]) for au in bp4d.used)


def _pair(offset_landmark: int, offset=(0.1, -0.2), batch: int = 1):
    target = torch.tensor(astronaut_landmarks_105(), dtype=torch.float64).expand(batch, -1, -1).clone()
    predicted = target.clone()
    predicted[:, offset_landmark] += torch.tensor(offset, dtype=torch.float64)
    return predicted, target


def test_hand_computed_value():
    # Landmark 13 (MediaPipe 55, inner end of the right brow) is in Brow (AU4) and Inner brow (AU1).
    predicted, target = _pair(13)
    scores = torch.tensor([[0.5, 2.0]], dtype=torch.float64)  # AU4 = 0.5, AU1 = 2.0 -> clamped to 1
    loss = au_landmark_loss(predicted, target, scores, (4, 1))["au_landmark"]
    # (0.5 + 1.0) * (|0.1| + |-0.2|) / (20 + 12 landmarks of the two parts)
    assert loss.item() == pytest.approx(1.5 * 0.3 / 32)


def test_binary_activation_and_negative_scores():
    predicted, target = _pair(13)
    scores = torch.tensor([[0.4, 0.6]], dtype=torch.float64)
    binary = au_landmark_loss(predicted, target, scores, (4, 1), activation="binary", threshold=0.5)
    assert binary["au_landmark"].item() == pytest.approx(1.0 * 0.3 / 32)
    negative = au_landmark_loss(predicted, target, torch.tensor([[-0.7, -0.1]], dtype=torch.float64), (4, 1))
    assert negative["au_landmark"].item() == 0.0
    torch.testing.assert_close(au_activation(torch.tensor([-1.0, 0.3, 1.5])), torch.tensor([0.0, 0.3, 1.0]))
    with pytest.raises(ValueError, match="activation"):
        au_activation(torch.zeros(2), "sigmoid")


def test_landmarks_outside_active_parts_cost_nothing():
    nose_tip = MEDIAPIPE_105.index(4)  # in Nose (AU9) only
    predicted, target = _pair(nose_tip)
    scores = torch.ones(1, len(MEGRAPHAU_BP4D_AUS), dtype=torch.float64)  # the BP4D model has no AU9
    assert au_landmark_loss(predicted, target, scores, MEGRAPHAU_BP4D_AUS)["au_landmark"].item() == 0.0


def test_missing_aus_are_dropped_and_reported(caplog):
    upper_lid = MEDIAPIPE_105.index(159)  # Upper eye (AU5) and Eye (AU7), both absent from the DISFA model
    predicted, target = _pair(upper_lid)
    scores = torch.ones(1, len(MEGRAPHAU_DISFA_AUS), dtype=torch.float64)
    detector = tuple(reversed(MEGRAPHAU_DISFA_AUS))  # an AU order not seen before, so it is reported now
    with caplog.at_level(logging.WARNING, logger="augane.losses.landmark"):
        loss = au_landmark_loss(predicted, target, scores, detector)["au_landmark"]
    assert loss.item() == 0.0
    assert "lacks Table 1 AUs" in caplog.text and "5" in caplog.text
    inner_brow = MEDIAPIPE_105.index(55)  # AU1 and AU4 are present
    predicted, target = _pair(inner_brow)
    loss = au_landmark_loss(predicted, target, scores, detector)["au_landmark"]
    used = au_region_coverage(detector)
    assert loss.item() == pytest.approx(2 * 0.3 / used.normaliser)


def test_detector_without_table_1_aus_is_an_error():
    predicted, target = _pair(0)
    with pytest.raises(DataError, match="none of the AUs of the paper's Table 1"):
        au_landmark_loss(predicted, target, torch.ones(1, 2, dtype=torch.float64), (25, 26))


def test_zero_when_equal_batch_mean_and_gradients():
    predicted, target = _pair(13, batch=2)
    predicted[1] = target[1]
    predicted.requires_grad_(True)
    scores = torch.tensor([[0.5, 1.0], [1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    loss = au_landmark_loss(predicted, target, scores, (4, 1))["au_landmark"]
    assert loss.item() == pytest.approx(1.5 * 0.3 / 32 / 2)  # second sample has no error
    loss.backward()
    assert predicted.grad[0, 13].abs().sum() > 0 and predicted.grad[1].abs().sum() == 0
    assert scores.grad is None  # p is data, not differentiated
    assert au_landmark_loss(target, target, scores, (4, 1))["au_landmark"].item() == 0.0


def test_shape_errors():
    predicted, target = _pair(0)
    with pytest.raises(ValueError, match=r"\(B, 105, 2\)"):
        au_landmark_loss(predicted[:, :68], target[:, :68], torch.ones(1, 2), (4, 1))
    with pytest.raises(ValueError, match="detector's order"):
        au_landmark_loss(predicted, target, torch.ones(1, 3), (4, 1))


def test_projection_uses_the_camera_convention():
    points = torch.tensor([[[0.1, 0.2, 0.3]] * NUM_LANDMARKS])
    cam = torch.tensor([[5.0, 0.02, -0.04]])
    projected = project_landmarks(points, cam)
    assert projected.shape == (1, NUM_LANDMARKS, 2)
    torch.testing.assert_close(projected, project(points, cam)[..., :2])
    torch.testing.assert_close(projected[0, 0], torch.tensor([0.6, -0.8]))
