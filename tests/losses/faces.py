"""A real face for the loss and model tests: MediaPipe's 105 landmarks on skimage's astronaut."""

from __future__ import annotations

import functools

import numpy as np

from augane.flame.camera import pixels_to_normalised
from augane.landmarks import select_105


@functools.lru_cache(maxsize=1)
def astronaut_landmarks_105() -> np.ndarray:
    """(105, 2) float64 landmarks of the astronaut's face in normalised [-1, 1] image coordinates."""
    import mediapipe as mp
    import skimage.data

    image = skimage.data.astronaut()
    height, width = image.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as mesh:
        result = mesh.process(image)
    if not result.multi_face_landmarks:
        raise RuntimeError("MediaPipe found no face in skimage's astronaut image")
    points = np.array([[p.x * width, p.y * height] for p in result.multi_face_landmarks[0].landmark])
    return pixels_to_normalised(select_105(points), width, height)
