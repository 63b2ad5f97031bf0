"""A DECA camera for a whole image, re-expressed in the frame of a face crop taken from it.

The demo world knows each face's camera ``(s, tx, ty)`` for the rendered
image (:mod:`augane.flame.camera`: ``x_n = s (X + tx)``, ``y_n = -s (Y + ty)``,
normalised over the image). The preprocessing stage crops the face with a
similarity ``crop_px = a * source_px + b`` (:mod:`augane.preprocess.crop`,
stored per sample as ``transform``). In the crop's normalised coordinates
(side ``S``) the same points project with

    s' = s * a * W / S
    tx' = tx + c_x / s',   c_x = (a * W + 2 b_x) / S - 1
    ty' = ty - c_y / s',   c_y = (a * H + 2 b_y) / S - 1

which is again a DECA camera, the one an encoder that sees the crop should
predict. Source images must be square (DECA's normalised coordinates scale
both axes by the image side).
"""

from __future__ import annotations

import numpy as np


def _similarity_scale(transform: np.ndarray) -> np.ndarray:
    """(B,) the scale ``a`` of (B, 2, 3) axis-aligned similarities; raises on rotation or shear."""
    linear = transform[:, :, :2]
    scale = linear[:, 0, 0]
    off_diagonal = np.abs(linear[:, 0, 1]) + np.abs(linear[:, 1, 0])
    if np.any(off_diagonal > 1e-9 * np.maximum(np.abs(scale), 1.0)) or np.any(
        np.abs(linear[:, 1, 1] - scale) > 1e-9 * np.maximum(np.abs(scale), 1.0)
    ):
        raise ValueError("crop transforms must be axis-aligned similarities (no rotation or shear), as crop.py makes them")
    return scale


def camera_to_crop(cam: np.ndarray, transform: np.ndarray, source_size: np.ndarray, crop_size: int) -> np.ndarray:
    """The DECA camera of each face in its crop's frame.

    Args:
        cam: (B, 3) ``(s, tx, ty)`` for the whole source image.
        transform: (B, 2, 3) source pixels -> crop pixels (the preprocess store's ``transform``).
        source_size: (B, 2) source (width, height) in pixels; width must equal height.
        crop_size: side S of the crop in pixels.
    Returns:
        (B, 3) ``(s', tx', ty')`` for the crop, float64.
    """
    cam = np.asarray(cam, dtype=np.float64)
    transform = np.asarray(transform, dtype=np.float64)
    source_size = np.asarray(source_size, dtype=np.float64)
    if cam.ndim != 2 or cam.shape[1] != 3 or transform.shape != (cam.shape[0], 2, 3):
        raise ValueError(f"expected cam (B, 3) and transform (B, 2, 3), got {cam.shape} and {transform.shape}")
    if np.any(source_size[:, 0] != source_size[:, 1]):
        raise ValueError("camera_to_crop needs square source images (DECA's normalised coordinates)")
    scale = _similarity_scale(transform)
    side = source_size[:, 0]
    new_scale = cam[:, 0] * scale * side / crop_size
    shift_x = (scale * side + 2.0 * transform[:, 0, 2]) / crop_size - 1.0
    shift_y = (scale * side + 2.0 * transform[:, 1, 2]) / crop_size - 1.0
    return np.stack([new_scale, cam[:, 1] + shift_x / new_scale, cam[:, 2] - shift_y / new_scale], axis=1)


def camera_from_crop(cam: np.ndarray, transform: np.ndarray, source_size: np.ndarray, crop_size: int) -> np.ndarray:
    """Inverse of :func:`camera_to_crop`: a crop-frame camera (B, 3) back in the whole image's frame."""
    cam = np.asarray(cam, dtype=np.float64)
    transform = np.asarray(transform, dtype=np.float64)
    source_size = np.asarray(source_size, dtype=np.float64)
    if np.any(source_size[:, 0] != source_size[:, 1]):
        raise ValueError("camera_from_crop needs square source images (DECA's normalised coordinates)")
    scale = _similarity_scale(transform)
    side = source_size[:, 0]
    shift_x = (scale * side + 2.0 * transform[:, 0, 2]) / crop_size - 1.0
    shift_y = (scale * side + 2.0 * transform[:, 1, 2]) / crop_size - 1.0
    full_scale = cam[:, 0] * crop_size / (scale * side)
    return np.stack([full_scale, cam[:, 1] - shift_x / cam[:, 0], cam[:, 2] + shift_y / cam[:, 0]], axis=1)
