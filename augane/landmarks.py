"""Landmark conventions: the paper's 105 MediaPipe landmarks and their AU regions.

Positions 0..104 of :data:`MEDIAPIPE_105` are the "105 landmarks" of the paper
(Table 1 indexes into this list); the values are MediaPipe face-mesh vertex
indices, in the order of EMOCA's ``mediapipe_landmark_embedding.npz``
(``landmark_indices``). All are below 468, so they index the 468-point mesh and
the 478-point iris-refined mesh alike.

Everything here is plain data; the AU-weighted losses and the crop import it
so that there is one definition of each landmark set.
"""

from __future__ import annotations

import numpy as np

MEDIAPIPE_105: tuple[int, ...] = (
    # brows (positions 0-19)
    276, 282, 283, 285, 293, 295, 296, 300, 334, 336, 46, 52, 53, 55, 63, 65, 66, 70, 105, 107,
    # eyes (20-51): subject's left eye first, then right
    249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466,
    7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246,
    # nose (52-64)
    168, 6, 197, 195, 5, 4, 129, 98, 97, 2, 326, 327, 358,
    # mouth (65-104)
    0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181,
    185, 191, 267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415,
)
NUM_LANDMARKS = len(MEDIAPIPE_105)
NUM_MEDIAPIPE_POINTS = 478

# --- Table 1 of the paper: facial parts as positions into MEDIAPIPE_105 --------------
BROW: tuple[int, ...] = tuple(range(0, 20))
INNER_BROW: tuple[int, ...] = (1, 3, 5, 6, 8, 9, 11, 13, 15, 16, 18, 19)
OUTER_BROW: tuple[int, ...] = tuple(i for i in BROW if i not in INNER_BROW)
EYE: tuple[int, ...] = tuple(range(20, 52))
LOWER_EYE: tuple[int, ...] = (20, 21, 22, 23, 24, 25, 26, 27, 33, 36, 37, 38, 39, 40, 41, 42, 43, 49)
UPPER_EYE: tuple[int, ...] = tuple(i for i in EYE if i not in LOWER_EYE)
NOSE: tuple[int, ...] = tuple(range(52, 65))
MOUTH: tuple[int, ...] = tuple(range(65, 105))
UPPER_MOUTH: tuple[int, ...] = (65, 66, *range(69, 77), *range(85, 95), 103, 104)
MOUTH_CORNER: tuple[int, ...] = (
    71, 72, 73, 74, 79, 80, 81, 82, 85, 86, 88, 89, 90, 91, 92, 93, 97, 98, 99, 100, 103, 104,
)

#: The facial part of Table 1 that each AU moves, as AU number -> positions in
#: MEDIAPIPE_105. FACS numbers: Brow Lowerer = AU4, Inner Brow Raiser = AU1,
#: Outer Brow Raiser = AU2, Lid Tightener = AU7, Cheek Raiser = AU6, Upper Lid
#: Raiser = AU5, Nose Wrinkler = AU9, Lip Pucker = AU18, Lip Stretcher = AU20,
#: Lip Tightener = AU23, Upper Lip Raiser = AU10, Lip Corner Puller = AU12,
#: Lip Corner Depressor = AU15.
AU_REGIONS: dict[int, tuple[int, ...]] = {
    4: BROW,
    1: INNER_BROW,
    2: OUTER_BROW,
    7: EYE,
    6: LOWER_EYE,
    5: UPPER_EYE,
    9: NOSE,
    18: MOUTH,
    20: MOUTH,
    23: MOUTH,
    10: UPPER_MOUTH,
    12: MOUTH_CORNER,
    15: MOUTH_CORNER,
}

#: Named MediaPipe mesh vertices (subject's left/right), for checks and features.
MP_RIGHT_EYE_OUTER, MP_RIGHT_EYE_INNER = 33, 133
MP_LEFT_EYE_INNER, MP_LEFT_EYE_OUTER = 362, 263
MP_RIGHT_BROW_INNER, MP_LEFT_BROW_INNER = 55, 285
MP_MOUTH_RIGHT, MP_MOUTH_LEFT = 61, 291
MP_NOSE_TIP = 4
MP_UPPER_LIP_TOP, MP_LOWER_LIP_BOTTOM = 0, 17

#: MediaPipe vertices that approximate the iBUG 68-point layout (17 jaw, 10 brow,
#: 9 nose, 12 eye, 20 mouth). Only used to place the DECA-style crop box, which
#: DECA computes from 68 landmarks; the 478-point mesh also covers the forehead,
#: which would make the box taller than DECA's.
MEDIAPIPE_IBUG68: tuple[int, ...] = (
    127, 234, 132, 58, 172, 150, 149, 148, 152, 377, 378, 379, 397, 288, 361, 454, 356,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87,
)


def select_105(mediapipe_points: np.ndarray) -> np.ndarray:
    """Take the paper's 105 landmarks from a MediaPipe mesh.

    Args:
        mediapipe_points: (..., 468 or 478, C) MediaPipe landmarks.
    Returns:
        (..., 105, C) in :data:`MEDIAPIPE_105` order.
    """
    if mediapipe_points.shape[-2] < 468:
        raise ValueError(
            f"expected MediaPipe landmarks with 468 or 478 points on axis -2, got shape {mediapipe_points.shape}"
        )
    return mediapipe_points[..., list(MEDIAPIPE_105), :]
