"""Putting a render made in the face crop back into the whole frame, and side-by-side video frames.

The crop is a similarity of the source image (:mod:`augane.preprocess.crop`,
``crop_px = T @ source_px``); its inverse carries the render and its mask
back into the frame, where the mask (bilinearly resampled, so edges are
soft) blends the render over the frame's pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from augane.preprocess.crop import invert_transform

#: Tallest side-by-side video frame; taller inputs are scaled down.
MAX_VIDEO_HEIGHT = 720


def _opencv_affine(transform: np.ndarray) -> np.ndarray:
    """A continuous-coordinate (2, 3) affine as OpenCV's (pixel centres at integers)."""
    linear, offset = transform[:, :2], transform[:, 2]
    half = np.array([0.5, 0.5])
    return np.column_stack([linear, offset + linear @ half - half])


def paste_back(frame: np.ndarray, render: np.ndarray, mask: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """The frame with the render drawn where the face is.

    Args:
        frame: (H, W, 3) uint8 source image.
        render: (S, S, 3) uint8 render in the crop's pixels.
        mask: (S, S) float in [0, 1], 1 where the face is drawn.
        transform: (2, 3) source pixels -> crop pixels.
    Returns:
        (H, W, 3) uint8.
    """
    height, width = frame.shape[:2]
    to_frame = _opencv_affine(invert_transform(np.asarray(transform, dtype=np.float64)))
    pasted = cv2.warpAffine(render, to_frame, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(np.asarray(mask, dtype=np.float32), to_frame, (width, height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)[..., None]
    blended = frame.astype(np.float32) * (1.0 - alpha) + pasted.astype(np.float32) * alpha
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def labelled(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of (H, W, 3) uint8 ``image`` with ``text`` written in its top-left corner."""
    out = image.copy()
    scale = max(0.4, image.shape[0] / 600.0)
    thickness = max(1, int(round(scale * 2)))
    origin = (int(8 * scale), int(28 * scale))
    cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out


def side_by_side(left: np.ndarray, right: np.ndarray, max_height: int = MAX_VIDEO_HEIGHT) -> np.ndarray:
    """(H, 2W, 3) uint8: ``left`` | ``right`` (same size), scaled down to at most ``max_height`` rows.

    The width is kept even, as video encoders expect.
    """
    if left.shape != right.shape:
        raise ValueError(f"side-by-side images must have the same shape, got {left.shape} and {right.shape}")
    joined = np.concatenate([left, right], axis=1)
    height, width = joined.shape[:2]
    factor = min(1.0, max_height / height)
    size = (max(2, int(round(width * factor / 2)) * 2), max(2, int(round(height * factor / 2)) * 2))
    if size != (width, height):
        joined = cv2.resize(joined, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
    return joined
