"""Whether a render actually sits on the input face, measured against the input's own MediaPipe landmarks.

The AU detector scores renders composited over the input crop (as in
training), so a render that misses the face leaves the input visible and can
"agree" with the input's AUs without reconstructing them. Two per-frame
checks need no ground truth and work on real DISFA:

* ``render_coverage``: the share of the input face - the convex hull of its
  105 MediaPipe landmarks in the crop - that the render's mask covers (0-1);
* ``landmark_nme_input``: the method's 105 projected landmarks against the
  input's MediaPipe landmarks, normalised by the input's outer-eye-corner
  distance (:func:`augane.evaluate.geometry.landmark_nme`).
"""

from __future__ import annotations

import cv2
import numpy as np

from augane.evaluate.geometry import landmark_nme
from augane.flame.camera import normalised_to_pixels

#: Mean coverage below which the evaluation warns that a method's renders leave the input face visible.
LOW_COVERAGE = 0.6


def render_coverage(mask: np.ndarray, landmarks_ndc: np.ndarray) -> np.ndarray:
    """Share of each input face (hull of its landmarks) covered by the render.

    Args:
        mask: (B, S, S) render mask, 1 where the face is drawn.
        landmarks_ndc: (B, L, 2) the input's landmarks in normalised crop coordinates (NaN where none).
    Returns:
        (B,) float64 in [0, 1]; NaN where the input has no landmarks.
    """
    size = mask.shape[-1]
    coverage = np.full(len(mask), np.nan)
    for index, (drawn, points) in enumerate(zip(mask, landmarks_ndc)):
        if not np.isfinite(points).all():
            continue
        hull = np.zeros((size, size), np.uint8)
        pixels = normalised_to_pixels(points.astype(np.float64), size) - 0.5  # OpenCV: pixel centres at integers
        cv2.fillConvexPoly(hull, cv2.convexHull(np.round(pixels * 16).astype(np.int32)), 1, lineType=cv2.LINE_8, shift=4)
        area = hull.sum()
        if area:
            coverage[index] = float((drawn > 0.5)[hull > 0].sum()) / float(area)
    return coverage


def landmark_agreement(predicted_ndc: np.ndarray, input_ndc: np.ndarray) -> np.ndarray:
    """(B,) NME of the projected landmarks against the input's (both (B, 105, 2), normalised crop coordinates)."""
    return landmark_nme(np.asarray(predicted_ndc, dtype=np.float64), np.asarray(input_ndc, dtype=np.float64))
