"""The DECA-style face crop: one definition of the box, the transform and the warp.

DECA crops a square around the 68-landmark box: ``side = (w + h) / 2 * 1.1``
centred on the box, enlarged by 1.25, and warped to 224 pixels with a
similarity transform (no rotation). AUGANE places the box with the MediaPipe
vertices that correspond to the 68-point layout (:data:`MEDIAPIPE_IBUG68`).

Coordinates are continuous pixel coordinates (pixel ``i`` spans ``[i, i+1)``),
as in :mod:`augane.flame.camera`. A transform is a (2, 3) float64 affine matrix
``T`` with ``crop_xy = T[:, :2] @ source_xy + T[:, 2]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from augane.landmarks import MEDIAPIPE_IBUG68


@dataclass(frozen=True)
class CropSettings:
    """How a face crop is placed and sampled.

    Attributes:
        size: side of the square crop in pixels (224 for the released networks).
        box_scale: factor on the mean landmark-box side (DECA: 1.1).
        crop_scale: enlargement of the scaled box (DECA: 1.25 at test time).
    """

    size: int = 224
    box_scale: float = 1.1
    crop_scale: float = 1.25


def crop_square(landmarks: np.ndarray, settings: CropSettings) -> tuple[np.ndarray, float]:
    """Centre and side (source pixels) of the crop square around a face.

    Args:
        landmarks: (478 or 468, 2+) MediaPipe landmarks in source pixels, or
            (K, 2+) points already restricted to the 68-point layout.
    Returns:
        ``(centre (2,), side)`` in source pixels.
    """
    points = np.asarray(landmarks, dtype=np.float64)[:, :2]
    if points.shape[0] >= 468:
        points = points[list(MEDIAPIPE_IBUG68)]
    left, top = points.min(axis=0)
    right, bottom = points.max(axis=0)
    centre = np.array([(left + right) / 2.0, (top + bottom) / 2.0])
    side = ((right - left) + (bottom - top)) / 2.0 * settings.box_scale * settings.crop_scale
    return centre, float(side)


def square_to_crop_transform(centre: np.ndarray, side: float, size: int) -> np.ndarray:
    """(2, 3) similarity mapping the source square onto ``[0, size]^2``."""
    if side <= 0:
        raise ValueError(f"crop side must be positive, got {side}")
    scale = size / side
    corner = np.asarray(centre, dtype=np.float64) - side / 2.0
    return np.array([[scale, 0.0, -scale * corner[0]], [0.0, scale, -scale * corner[1]]])


def apply_transform(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Map (..., 2+) points with a (2, 3) affine; extra columns (e.g. depth) are scaled
    by the transform's isotropic scale so that 3D landmarks stay in crop pixels."""
    points = np.asarray(points, dtype=np.float64)
    xy = points[..., :2] @ transform[:, :2].T + transform[:, 2]
    if points.shape[-1] == 2:
        return xy
    scale = np.sqrt(abs(np.linalg.det(transform[:, :2])))
    return np.concatenate([xy, points[..., 2:] * scale], axis=-1)


def invert_transform(transform: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine transform."""
    full = np.vstack([transform, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


#: Below this crop scale (crop pixels per source pixel) the source is first shrunk
#: with area averaging: ``cv2.warpAffine`` samples without a low-pass filter, so a
#: downscale by more than 2x would alias (moire on hair, textures, checkerboards).
PRESHRINK_BELOW = 0.5


def _preshrink(image: np.ndarray, transform: np.ndarray, size: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Area-average the part of ``image`` the crop sees down to about the crop's resolution.

    Returns the shrunk region and the transform from its pixels to crop pixels
    (``None`` when the crop lies entirely outside the image).
    """
    corners = apply_transform(
        np.array([[0.0, 0.0], [size, 0.0], [0.0, size], [size, size]]), invert_transform(transform)
    )
    height, width = image.shape[:2]
    x0 = max(0, int(np.floor(corners[:, 0].min())) - 1)
    y0 = max(0, int(np.floor(corners[:, 1].min())) - 1)
    x1 = min(width, int(np.ceil(corners[:, 0].max())) + 1)
    y1 = min(height, int(np.ceil(corners[:, 1].max())) + 1)
    if x1 <= x0 or y1 <= y0:
        return None, transform
    scale = np.sqrt(abs(np.linalg.det(transform[:, :2])))
    out_width = max(1, int(round((x1 - x0) * scale)))
    out_height = max(1, int(round((y1 - y0) * scale)))
    region = cv2.resize(image[y0:y1, x0:x1], (out_width, out_height), interpolation=cv2.INTER_AREA)
    # resize maps pixel edges onto pixel edges: source x = x0 + x_small * (x1 - x0) / out_width
    to_source = np.array([[(x1 - x0) / out_width, 0.0, x0], [0.0, (y1 - y0) / out_height, y0]])
    linear = transform[:, :2] @ to_source[:, :2]
    offset = transform[:, :2] @ to_source[:, 2] + transform[:, 2]
    return region, np.column_stack([linear, offset])


def warp_to_crop(image: np.ndarray, transform: np.ndarray, size: int) -> np.ndarray:
    """Resample ``image`` (H, W, C) into the (size, size, C) crop; outside is black.

    Downscales by more than 2x first area-average the region the crop sees
    (:data:`PRESHRINK_BELOW`), then the remaining near-unit-scale warp is
    bilinear. OpenCV addresses pixels by their centres at integer positions,
    so the continuous-coordinate transform is shifted by half a pixel on both
    sides.
    """
    if np.sqrt(abs(np.linalg.det(transform[:, :2]))) < PRESHRINK_BELOW:
        region, transform = _preshrink(image, transform, size)
        if region is None:
            return np.zeros((size, size, *image.shape[2:]), image.dtype)
        image = region
    linear, offset = transform[:, :2], transform[:, 2]
    half = np.array([0.5, 0.5])
    opencv_affine = np.column_stack([linear, offset + linear @ half - half])
    return cv2.warpAffine(
        image,
        opencv_affine,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
