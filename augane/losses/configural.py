"""AU configural features and the AU-based relative distance loss L_auRel (paper eq. 6).

The paper takes 23 configural features — landmark distances that
characterise AUs — from Perveen & Mohan (VISAPP 2020, its ref. [28]), where
they are defined on a 66-point model, and maps them to the 105 MediaPipe
landmarks (the paper's example: Brow Lowerer from the distance between the
two inner-brow points). The AUGANE paper's Table 1 gives only the
landmark sets of the facial parts, not the 23 features, and Perveen &
Mohan's own list could not be consulted while writing this module, so the
set below is AUGANE's own, not a transcription: 23 distances chosen from
the FACS descriptions of the AUs (Ekman & Friesen), each one a measurement
that a FACS coder looks at for the AUs named with it. Bilateral
measurements are taken on both sides, so asymmetric actions are seen.

Every feature is the mean of one or more landmark-pair distances in the
image plane, divided by the inter-ocular distance of the same landmark set
(distance between the eye centres, each the midpoint of its two eye
corners, MediaPipe 33/133 and 362/263; the eye corners barely move with
expression). Features are therefore invariant to the image scale,
translation and in-plane rotation, and are compared between the image
landmarks and the projected model landmarks without any camera term.
"Right"/"left" are the subject's.

==  ==========================  ===================  ===================  ==========================
#   name                        MediaPipe pairs      positions (105)      AUs (what moves it)
==  ==========================  ===================  ===================  ==========================
0   brow_inner_gap              55-285               13-3                 AU4 (brows drawn together)
1   brow_inner_height_right     55-133               13-38                AU1 up, AU4 down
2   brow_inner_height_left      285-362              3-22                 AU1 up, AU4 down
3   brow_outer_height_right     46-33                10-37                AU2 up, AU4 down
4   brow_outer_height_left      276-263              0-21                 AU2 up, AU4 down
5   brow_lid_height_right       105-159              18-46                AU1, AU2, AU4, AU5
6   brow_lid_height_left        334-386              8-30                 AU1, AU2, AU4, AU5
7   eye_aperture_right          160-144, 159-145,    47-39, 46-40,        AU5 wider; AU6, AU7, AU43,
                                158-153              45-41                AU45 narrower
8   eye_aperture_left           387-373, 386-374,    31-23, 30-24,        as above
                                385-380              29-25
9   lower_lid_height_right      145-129              40-58                AU6, AU7 (lower lid up); AU9
10  lower_lid_height_left       374-358              24-64                AU6, AU7 (lower lid up); AU9
11  nose_wrinkle_right          133-129              38-58                AU9, AU10 (ala pulled up)
12  nose_wrinkle_left           362-358              22-64                AU9, AU10 (ala pulled up)
13  mouth_width                 61-291               72-90                AU12, AU20 wider; AU18,
                                                                          AU22, AU23 narrower
14  lips_part                   13-14                66-67                AU25, AU26, AU27
15  mouth_height                0-17                 65-68                AU10, AU16, AU26, AU27, AU24
16  nose_lip_gap                2-0                  61-65                AU10, AU9 (upper lip up)
17  lip_corner_eye_right        61-33                72-37                AU12 (corner up-out), AU15
18  lip_corner_eye_left         291-263              90-21                AU12 (corner up-out), AU15
19  lip_corner_ala_right        61-129               72-58                AU20, AU14, AU15, AU12
20  lip_corner_ala_left         291-358              90-64                AU20, AU14, AU15, AU12
21  lip_thickness               0-13, 14-17          65-66, 67-68         AU23, AU24 thinner; AU18,
                                                                          AU22 thicker
22  lip_corner_drop             61-17, 291-17        72-68, 90-68         AU15, AU17, AU12
==  ==========================  ===================  ===================  ==========================

Features 17-20 separate the lip-corner actions: AU12 moves the corner up
and out, towards the outer eye corner (17/18 shrink strongly); AU20
stretches it sideways, away from the nose wing (19/20 grow) with little
vertical change; AU15 pulls it down (both grow, 22 shrinks).

L_auRel (eq. 6) is the L1 distance between the features of the image
landmarks and of the projected model landmarks, averaged over the 23
features (eq. 6 sums them; the mean is eq. 6 / 23) and over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from augane.landmarks import MEDIAPIPE_105, NUM_LANDMARKS

_POSITION = {vertex: position for position, vertex in enumerate(MEDIAPIPE_105)}

#: Eye corners (MediaPipe ids) whose midpoints define the inter-ocular distance.
RIGHT_EYE_CORNERS: tuple[int, int] = (33, 133)
LEFT_EYE_CORNERS: tuple[int, int] = (362, 263)

#: Distances below this (normalised image units) are treated as this, keeping gradients finite.
_EPSILON = 1e-6


@dataclass(frozen=True)
class ConfiguralFeature:
    """One configural feature: the mean of landmark-pair distances, over the inter-ocular distance.

    Attributes:
        name: short identifier.
        pairs: landmark pairs as MediaPipe face-mesh vertex ids.
        aus: FACS AU numbers whose action changes it.
        description: what is measured.
    """

    name: str
    pairs: tuple[tuple[int, int], ...]
    aus: tuple[int, ...]
    description: str

    @property
    def positions(self) -> tuple[tuple[int, int], ...]:
        """The pairs as positions into :data:`augane.landmarks.MEDIAPIPE_105`."""
        return tuple((_POSITION[a], _POSITION[b]) for a, b in self.pairs)


CONFIGURAL_FEATURES: tuple[ConfiguralFeature, ...] = (
    ConfiguralFeature("brow_inner_gap", ((55, 285),), (4,), "distance between the inner ends of the brows"),
    ConfiguralFeature("brow_inner_height_right", ((55, 133),), (1, 4), "right inner brow to inner eye corner"),
    ConfiguralFeature("brow_inner_height_left", ((285, 362),), (1, 4), "left inner brow to inner eye corner"),
    ConfiguralFeature("brow_outer_height_right", ((46, 33),), (2, 4), "right outer brow to outer eye corner"),
    ConfiguralFeature("brow_outer_height_left", ((276, 263),), (2, 4), "left outer brow to outer eye corner"),
    ConfiguralFeature("brow_lid_height_right", ((105, 159),), (1, 2, 4, 5), "right mid brow to upper lid centre"),
    ConfiguralFeature("brow_lid_height_left", ((334, 386),), (1, 2, 4, 5), "left mid brow to upper lid centre"),
    ConfiguralFeature(
        "eye_aperture_right", ((160, 144), (159, 145), (158, 153)), (5, 6, 7, 43, 45), "right eyelid opening"
    ),
    ConfiguralFeature(
        "eye_aperture_left", ((387, 373), (386, 374), (385, 380)), (5, 6, 7, 43, 45), "left eyelid opening"
    ),
    ConfiguralFeature("lower_lid_height_right", ((145, 129),), (6, 7, 9), "right lower lid centre to nose wing"),
    ConfiguralFeature("lower_lid_height_left", ((374, 358),), (6, 7, 9), "left lower lid centre to nose wing"),
    ConfiguralFeature("nose_wrinkle_right", ((133, 129),), (9, 10), "right inner eye corner to nose wing"),
    ConfiguralFeature("nose_wrinkle_left", ((362, 358),), (9, 10), "left inner eye corner to nose wing"),
    ConfiguralFeature("mouth_width", ((61, 291),), (12, 18, 20, 22, 23), "between the outer lip corners"),
    ConfiguralFeature("lips_part", ((13, 14),), (25, 26, 27), "between the inner lip edges at the midline"),
    ConfiguralFeature("mouth_height", ((0, 17),), (10, 16, 24, 26, 27), "upper lip top to lower lip bottom"),
    ConfiguralFeature("nose_lip_gap", ((2, 0),), (9, 10), "below the nose tip to the upper lip top"),
    ConfiguralFeature("lip_corner_eye_right", ((61, 33),), (12, 15), "right lip corner to outer eye corner"),
    ConfiguralFeature("lip_corner_eye_left", ((291, 263),), (12, 15), "left lip corner to outer eye corner"),
    ConfiguralFeature("lip_corner_ala_right", ((61, 129),), (12, 14, 15, 20), "right lip corner to nose wing"),
    ConfiguralFeature("lip_corner_ala_left", ((291, 358),), (12, 14, 15, 20), "left lip corner to nose wing"),
    ConfiguralFeature(
        "lip_thickness", ((0, 13), (14, 17)), (18, 22, 23, 24), "vermilion height of the upper and lower lip"
    ),
    ConfiguralFeature(
        "lip_corner_drop", ((61, 17), (291, 17)), (12, 15, 17), "lip corners to the lower lip bottom"
    ),
)
NUM_CONFIGURAL_FEATURES = len(CONFIGURAL_FEATURES)


def _pair_tables() -> tuple[Tensor, Tensor, Tensor]:
    """Flattened pair positions (P,), (P,) and the (23, P) averaging matrix."""
    first, second, rows = [], [], []
    for row, feature in enumerate(CONFIGURAL_FEATURES):
        for a, b in feature.positions:
            first.append(a)
            second.append(b)
            rows.append(row)
    average = torch.zeros(NUM_CONFIGURAL_FEATURES, len(rows), dtype=torch.float64)
    for column, row in enumerate(rows):
        average[row, column] = 1.0 / len(CONFIGURAL_FEATURES[row].pairs)
    return torch.tensor(first), torch.tensor(second), average


_FIRST, _SECOND, _AVERAGE = _pair_tables()
_EYE_CORNERS = tuple(_POSITION[v] for v in (*RIGHT_EYE_CORNERS, *LEFT_EYE_CORNERS))


def _distance(delta: Tensor) -> Tensor:
    return torch.sqrt((delta * delta).sum(dim=-1) + _EPSILON**2)


def interocular_distance(landmarks: Tensor) -> Tensor:
    """(B, 105, 2) landmarks -> (B,) distance between the two eye centres (corner midpoints)."""
    r_outer, r_inner, l_inner, l_outer = _EYE_CORNERS
    right = 0.5 * (landmarks[:, r_outer] + landmarks[:, r_inner])
    left = 0.5 * (landmarks[:, l_inner] + landmarks[:, l_outer])
    return _distance(left - right)


def configural_features(landmarks: Tensor) -> Tensor:
    """The 23 configural features of (B, 105, 2) landmarks -> (B, 23), in inter-ocular units."""
    if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_LANDMARKS, 2):
        raise ValueError(f"landmarks must be (B, {NUM_LANDMARKS}, 2), got {tuple(landmarks.shape)}")
    first, second = _FIRST.to(landmarks.device), _SECOND.to(landmarks.device)
    distances = _distance(landmarks[:, first] - landmarks[:, second])  # (B, P)
    features = distances @ _AVERAGE.to(device=landmarks.device, dtype=landmarks.dtype).T
    return features / interocular_distance(landmarks)[:, None]


def au_relative_loss(predicted: Tensor, target: Tensor) -> dict[str, Tensor]:
    """L_auRel (eq. 6): mean |c_i(predicted) - c_i(target)| over the 23 features and the batch.

    Args:
        predicted: (B, 105, 2) projected model landmarks (normalised image coordinates).
        target: (B, 105, 2) image landmarks.
    Returns:
        ``{"au_relative": scalar}``.
    """
    if predicted.shape != target.shape:
        raise ValueError(
            f"predicted {tuple(predicted.shape)} and target {tuple(target.shape)} landmarks differ in shape"
        )
    difference = configural_features(predicted) - configural_features(target)
    return {"au_relative": difference.abs().mean()}
