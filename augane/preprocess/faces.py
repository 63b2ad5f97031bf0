"""One image in, one preprocessed sample out: find the largest face, crop it DECA-style, map its landmarks.

This is the per-sample core of the preprocessing stage; :mod:`augane.preprocess.shard`
feeds it the images and frames of a shard and records the results.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from augane.landmarks import NUM_MEDIAPIPE_POINTS
from augane.preprocess.crop import CropSettings, apply_transform, crop_square, square_to_crop_transform, warp_to_crop
from augane.preprocess.landmarkers import Landmarker
from augane.preprocess.status import Status


@dataclass(frozen=True)
class FaceSample:
    """A preprocessed sample; arrays are None where the status leaves them undefined.

    Attributes:
        status: outcome.
        source_size: (width, height) of the source image in pixels ((0, 0) when it was not read).
        image: (S, S, 3) uint8 RGB crop.
        mesh: (478, 3) float32 MediaPipe mesh in crop pixels (z scaled like x).
        transform: (2, 3) float64, source pixels -> crop pixels.
        confidence: detector score of the kept face (0 when none).
        face_count: faces found (the largest is kept).
    """

    status: Status
    source_size: tuple[int, int] = (0, 0)
    image: np.ndarray | None = None
    mesh: np.ndarray | None = None
    transform: np.ndarray | None = None
    confidence: float = 0.0
    face_count: int = 0


@dataclass(frozen=True)
class FaceCropper:
    """Landmarks + crop for one image at a time.

    Attributes:
        landmarker: finds faces (see :mod:`augane.preprocess.landmarkers`).
        crop: crop box and size.
        min_face_size: faces (and images) smaller than this many source pixels get ``too_small``.
        detect_max_side: images larger than this are area-downscaled for detection
            only; the crop is taken from the full-resolution image.
    """

    landmarker: Landmarker
    crop: CropSettings = CropSettings()
    min_face_size: float = 24.0
    detect_max_side: int = 1920

    def process(self, rgb: np.ndarray) -> FaceSample:
        """Preprocess one (H, W, 3) uint8 RGB image."""
        height, width = rgb.shape[:2]
        source_size = (width, height)
        if min(width, height) < self.min_face_size:
            return FaceSample(Status.TOO_SMALL, source_size)
        detect_image, sx, sy = rgb, 1.0, 1.0
        longest = max(width, height)
        if longest > self.detect_max_side:
            factor = self.detect_max_side / longest
            size = (max(1, round(width * factor)), max(1, round(height * factor)))
            detect_image = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            sx, sy = width / size[0], height / size[1]
        found = self.landmarker.detect(detect_image)
        faces = [face.scaled(sx, sy) for face in found.faces] if (sx, sy) != (1.0, 1.0) else found.faces
        face_count = max(found.detected, len(faces))
        if not faces:
            status = Status.NO_MESH if found.detected else Status.NO_FACE
            return FaceSample(status, source_size, face_count=face_count)
        sizes = [candidate.size for candidate in faces]
        face, face_size = faces[int(np.argmax(sizes))], max(sizes)
        centre, side = crop_square(face.box_points, self.crop)
        if side <= 0:
            return FaceSample(Status.TOO_SMALL, source_size, confidence=face.score, face_count=face_count)
        transform = square_to_crop_transform(centre, side, self.crop.size)
        image = warp_to_crop(rgb, transform, self.crop.size)
        mesh = None
        if face.mesh is not None:
            mesh = apply_transform(face.mesh[:NUM_MEDIAPIPE_POINTS], transform).astype(np.float32)
        if face_size < self.min_face_size:
            status = Status.TOO_SMALL
        elif mesh is None:
            status = Status.NO_MESH
        else:
            status = Status.OK
        return FaceSample(status, source_size, image, mesh, transform, face.score, face_count)
