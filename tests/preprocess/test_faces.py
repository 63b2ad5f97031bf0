"""Real photos: the kept face's landmarks land on the face, the crop contains it, and the transform round-trips."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from augane.landmarks import (
    MP_LEFT_EYE_INNER,
    MP_LEFT_EYE_OUTER,
    MP_MOUTH_LEFT,
    MP_MOUTH_RIGHT,
    MP_NOSE_TIP,
    MP_RIGHT_EYE_INNER,
    MP_RIGHT_EYE_OUTER,
)
from augane.preprocess.crop import CropSettings, apply_transform, invert_transform
from augane.preprocess.faces import FaceCropper
from augane.preprocess.status import Status

EYES = ((MP_RIGHT_EYE_OUTER, MP_RIGHT_EYE_INNER), (MP_LEFT_EYE_INNER, MP_LEFT_EYE_OUTER))


def _haar(gray: np.ndarray, name: str) -> np.ndarray:
    """Boxes (x, y, w, h) from an OpenCV Haar cascade: a detector independent of MediaPipe."""
    boxes = cv2.CascadeClassifier(cv2.data.haarcascades + name).detectMultiScale(gray, 1.1, 5)
    return np.asarray(boxes).reshape(-1, 4)


@pytest.fixture(scope="module")
def photos(astronaut, grace_hopper):
    return {"astronaut": astronaut, "grace_hopper": grace_hopper}


@pytest.fixture(scope="module")
def cropper(face_mesh):
    return FaceCropper(face_mesh, CropSettings(size=224))


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_landmarks_land_on_the_face(photos, cropper, name):
    photo = photos[name]
    sample = cropper.process(photo)
    assert sample.status == Status.OK and sample.face_count == 1
    assert 0.5 < sample.confidence <= 1.0
    source = apply_transform(sample.mesh.astype(np.float64), invert_transform(sample.transform))[:, :2]
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    eyes = _haar(gray, "haarcascade_eye.xml")
    assert len(eyes) >= 1
    eye_centres = [(source[a] + source[b]) / 2 for a, b in EYES]
    for x, y, w, h in eyes:  # every eye OpenCV finds holds one of MediaPipe's eye centres
        assert any(x <= cx <= x + w and y <= cy <= y + h for cx, cy in eye_centres), (name, (x, y, w, h), eye_centres)
    (fx, fy, fw, fh), = _haar(gray, "haarcascade_frontalface_default.xml")
    nose = source[MP_NOSE_TIP]
    assert fx <= nose[0] <= fx + fw and fy <= nose[1] <= fy + fh
    mouth = (source[MP_MOUTH_LEFT] + source[MP_MOUTH_RIGHT]) / 2
    assert max(c[1] for c in eye_centres) < nose[1] < mouth[1]  # image y grows downwards
    assert source[MP_RIGHT_EYE_OUTER][0] < source[MP_LEFT_EYE_OUTER][0]  # subject's right eye on the image left


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_crop_contains_the_face_and_matches_the_source(photos, cropper, name):
    photo = photos[name]
    sample = cropper.process(photo)
    size = cropper.crop.size
    assert sample.image.shape == (size, size, 3) and sample.image.dtype == np.uint8
    inside = np.all((sample.mesh[:, :2] >= 0) & (sample.mesh[:, :2] <= size), axis=1)
    assert inside.mean() > 0.98
    # DECA's box: the face fills about 1 / (1.1 * 1.25) of the crop
    extent = np.ptp(sample.mesh[:, :2], axis=0).mean() / size
    assert 0.55 < extent < 0.95
    # the crop's pixels are the source's, bilinearly sampled where the inverse transform maps each pixel centre
    v, u = np.mgrid[0:size, 0:size] + 0.5
    x, y = apply_transform(np.stack([u, v], axis=-1), invert_transform(sample.transform)).transpose(2, 0, 1)
    expected = np.stack(
        [map_coordinates(photo[..., c].astype(float), [y - 0.5, x - 0.5], order=1, mode="constant") for c in range(3)],
        axis=-1,
    )
    assert np.abs(sample.image - expected).mean() < 1.5


def test_transform_round_trip(photos, cropper):
    sample = cropper.process(photos["astronaut"])
    back = apply_transform(apply_transform(sample.mesh.astype(np.float64), invert_transform(sample.transform)), sample.transform)
    np.testing.assert_allclose(back, sample.mesh, atol=1e-3)


def test_grayscale_and_upscaled_huge_images(photos, face_mesh):
    photo = photos["astronaut"]
    cropper = FaceCropper(face_mesh, CropSettings(size=224), detect_max_side=600)
    reference = cropper.process(photo)
    gray = np.repeat(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    assert cropper.process(gray).status == Status.OK
    big = cv2.resize(photo, (2048, 2048), interpolation=cv2.INTER_CUBIC)  # detected at 600 px, cropped at full size
    sample = cropper.process(big)
    assert sample.status == Status.OK and sample.source_size == (2048, 2048)
    np.testing.assert_allclose(sample.transform[:, :2] * 4, reference.transform[:, :2], rtol=0.05)
    assert np.abs(sample.mesh[:, :2] - reference.mesh[:, :2]).mean() < 3.0
    assert np.abs(sample.image.astype(float) - reference.image).mean() < 12


def test_small_faces_and_tiny_images(photos, face_mesh):
    photo = photos["astronaut"]
    cropper = FaceCropper(face_mesh, CropSettings(size=64), min_face_size=200)
    sample = cropper.process(photo)  # the face box is ~90 px: found, but below the minimum
    assert sample.status == Status.TOO_SMALL and sample.image is not None and sample.face_count == 1
    tiny = FaceCropper(face_mesh, CropSettings(size=64), min_face_size=24).process(photo[:20, :20])
    assert tiny.status == Status.TOO_SMALL and tiny.image is None and tiny.source_size == (20, 20)


def test_no_face(face_mesh):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    sample = FaceCropper(face_mesh).process(noise)
    assert sample.status == Status.NO_FACE and sample.face_count == 0 and sample.confidence == 0.0


def test_several_faces_keep_the_largest(photos, face_mesh):
    # MediaPipe's short-range detector wants faces filling a good part of the picture: two heads side by side
    left = cv2.resize(photos["astronaut"][30:250, 110:330], None, fx=1.5, fy=1.5, interpolation=cv2.INTER_AREA)
    right = cv2.resize(photos["grace_hopper"][120:380, 140:400], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    canvas = np.zeros((left.shape[0], left.shape[1] + right.shape[1], 3), np.uint8)
    canvas[:, : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] :] = right
    faces = face_mesh.detect(canvas).faces
    assert len(faces) == 2
    sample = FaceCropper(face_mesh).process(canvas)
    assert sample.status == Status.OK and sample.face_count == 2
    nose = apply_transform(sample.mesh[MP_NOSE_TIP : MP_NOSE_TIP + 1, :2].astype(float), invert_transform(sample.transform))[0]
    assert nose[0] < left.shape[1]  # the larger (astronaut's) face was kept
    largest = max(faces, key=lambda face: face.size)
    assert sample.confidence == pytest.approx(largest.score)
