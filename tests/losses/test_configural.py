"""The 23 configural features and L_auRel (eq. 6): layout, invariances, AU-like displacements."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from augane.aus import FACS_NAMES, PAPER_EVAL_AUS
from augane.landmarks import MEDIAPIPE_105, NUM_LANDMARKS
from augane.losses import CONFIGURAL_FEATURES, au_relative_loss, configural_features, interocular_distance
from tests.losses.faces import astronaut_landmarks_105

NAMES = [feature.name for feature in CONFIGURAL_FEATURES]
MIDLINE = {0, 2, 4, 13, 14, 17, 168}


def _face(batch: int = 1) -> torch.Tensor:
    return torch.tensor(astronaut_landmarks_105(), dtype=torch.float64).expand(batch, -1, -1).clone()


def _at(vertex: int) -> int:
    return MEDIAPIPE_105.index(vertex)


def _iod(points: np.ndarray) -> float:
    right = 0.5 * (points[_at(33)] + points[_at(133)])
    left = 0.5 * (points[_at(362)] + points[_at(263)])
    return float(np.linalg.norm(left - right))


def test_table_against_the_105_point_layout():
    assert len(CONFIGURAL_FEATURES) == 23
    assert len(set(NAMES)) == 23
    for feature in CONFIGURAL_FEATURES:
        assert feature.pairs and feature.aus and feature.description
        for (a, b), (pa, pb) in zip(feature.pairs, feature.positions):
            assert a in MEDIAPIPE_105 and b in MEDIAPIPE_105 and a != b
            assert (MEDIAPIPE_105[pa], MEDIAPIPE_105[pb]) == (a, b)
            assert 0 <= pa < NUM_LANDMARKS and 0 <= pb < NUM_LANDMARKS
        assert all(au in FACS_NAMES for au in feature.aus)
    covered = {au for feature in CONFIGURAL_FEATURES for au in feature.aus}
    assert set(PAPER_EVAL_AUS) <= covered
    # The paper's example: Brow Lowerer from the distance between the two inner-brow ends.
    assert CONFIGURAL_FEATURES[NAMES.index("brow_inner_gap")].pairs == ((55, 285),)


def test_sides_match_the_subjects_sides():
    points = astronaut_landmarks_105()
    midline_x = points[[_at(v) for v in (168, 4, 0, 17)], 0].mean()
    for feature in CONFIGURAL_FEATURES:
        vertices = {v for pair in feature.pairs for v in pair} - MIDLINE
        xs = points[[_at(v) for v in vertices], 0]
        if feature.name.endswith("_right"):  # subject's right = image left for a frontal face
            assert (xs < midline_x).all(), feature.name
        elif feature.name.endswith("_left"):
            assert (xs > midline_x).all(), feature.name


def test_hand_computed_features():
    points = astronaut_landmarks_105()
    features = configural_features(_face())[0].numpy()
    iod = _iod(points)

    def distance(a, b):
        return np.linalg.norm(points[_at(a)] - points[_at(b)])

    assert features[NAMES.index("brow_inner_gap")] == pytest.approx(distance(55, 285) / iod, rel=1e-9)
    aperture = (distance(160, 144) + distance(159, 145) + distance(158, 153)) / 3 / iod
    assert features[NAMES.index("eye_aperture_right")] == pytest.approx(aperture, rel=1e-9)
    drop = (distance(61, 17) + distance(291, 17)) / 2 / iod
    assert features[NAMES.index("lip_corner_drop")] == pytest.approx(drop, rel=1e-9)
    assert interocular_distance(_face())[0].item() == pytest.approx(iod, rel=1e-9)


def test_invariant_to_scale_translation_rotation():
    face = _face()
    angle = math.radians(20)
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=face.dtype)
    moved = 2.5 * face @ rotation.T + torch.tensor([0.3, -0.1], dtype=face.dtype)
    torch.testing.assert_close(configural_features(moved), configural_features(face))


def _displaced(moves: dict[int, tuple[float, float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Features before and after moving MediaPipe vertices by (dx, dy) in inter-ocular units."""
    face = _face()
    iod = _iod(astronaut_landmarks_105())
    moved = face.clone()
    for vertex, (dx, dy) in moves.items():
        moved[0, _at(vertex)] += torch.tensor([dx * iod, dy * iod], dtype=face.dtype)
    return configural_features(face)[0], configural_features(moved)[0]


# AU-like displacements (image y grows downwards) and the features they must raise (+) or lower (-).
AU_MOVES = {
    "AU1 inner brows raised": (
        {55: (0, -0.1), 107: (0, -0.1), 285: (0, -0.1), 336: (0, -0.1)},
        {"brow_inner_height_right": +1, "brow_inner_height_left": +1},
    ),
    "AU2 outer brows raised": (
        {46: (0, -0.1), 70: (0, -0.1), 276: (0, -0.1), 300: (0, -0.1)},
        {"brow_outer_height_right": +1, "brow_outer_height_left": +1},
    ),
    "AU4 brows lowered and drawn together": (
        {55: (0.05, 0.05), 285: (-0.05, 0.05), 105: (0, 0.05), 334: (0, 0.05)},
        {"brow_inner_gap": -1, "brow_lid_height_right": -1, "brow_lid_height_left": -1},
    ),
    "AU43 eyes closed": (
        {160: (0, 0.06), 159: (0, 0.07), 158: (0, 0.06), 387: (0, 0.06), 386: (0, 0.07), 385: (0, 0.06)},
        {"eye_aperture_right": -1, "eye_aperture_left": -1},
    ),
    "AU9 nose wrinkled": (
        {129: (0, -0.05), 358: (0, -0.05)},
        {"nose_wrinkle_right": -1, "nose_wrinkle_left": -1},
    ),
    "AU10 upper lip raised": ({0: (0, -0.05)}, {"nose_lip_gap": -1}),
    "AU12 lip corners pulled up and out": (
        {61: (-0.1, -0.1), 291: (0.1, -0.1)},
        {"mouth_width": +1, "lip_corner_eye_right": -1, "lip_corner_eye_left": -1},
    ),
    "AU15 lip corners pulled down": (
        {61: (0, 0.1), 291: (0, 0.1)},
        {"lip_corner_eye_right": +1, "lip_corner_eye_left": +1, "lip_corner_drop": -1},
    ),
    "AU20 lips stretched": ({61: (-0.1, 0), 291: (0.1, 0)}, {"mouth_width": +1, "lip_corner_ala_right": +1}),
    "AU26 jaw drop": ({14: (0, 0.2), 17: (0, 0.2)}, {"lips_part": +1, "mouth_height": +1}),
}


@pytest.mark.parametrize("action", sorted(AU_MOVES))
def test_au_like_displacements_change_their_features_only(action):
    moves, expected = AU_MOVES[action]
    before, after = _displaced(moves)
    for name, sign in expected.items():
        change = (after - before)[NAMES.index(name)].item()
        assert sign * change > 0.01, (name, change)
    for index, feature in enumerate(CONFIGURAL_FEATURES):
        touched = any(v in moves for pair in feature.pairs for v in pair)
        if not touched:
            assert after[index].item() == pytest.approx(before[index].item(), abs=1e-12), feature.name


def test_loss_hand_computed_zero_when_equal_and_finite_gradients():
    target = _face(batch=2)
    predicted = target.clone()
    iod = _iod(astronaut_landmarks_105())
    predicted[0, _at(14), 1] += 0.3 * iod  # open the mouth of sample 0 by 0.3 inter-ocular units
    loss = au_relative_loss(predicted, target)["au_relative"]
    change = configural_features(predicted)[0] - configural_features(target)[0]
    names = ("lips_part", "mouth_height", "lip_thickness")
    lips_part, mouth_height, thickness = (change[NAMES.index(name)] for name in names)
    # 13-14 grows by about 0.3 (the points are vertically aligned to within pixels) and 14-17 shrinks.
    assert lips_part.item() == pytest.approx(0.3, abs=0.01)
    assert mouth_height.item() == 0.0
    manual = (lips_part.abs() + thickness.abs()) / 23 / 2  # two samples, 23 features
    assert loss.item() == pytest.approx(manual.item(), rel=1e-9)
    assert au_relative_loss(target, target)["au_relative"].item() == 0.0

    closed = target.clone()
    closed[:, _at(14)] = closed[:, _at(13)]  # lips exactly closed: a zero distance
    closed.requires_grad_(True)
    au_relative_loss(closed, target)["au_relative"].backward()
    assert torch.isfinite(closed.grad).all()


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\(B, 105, 2\)"):
        configural_features(torch.zeros(1, 68, 2))
    with pytest.raises(ValueError, match="differ in shape"):
        au_relative_loss(torch.zeros(1, 105, 2), torch.zeros(2, 105, 2))
