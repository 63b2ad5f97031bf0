"""Landmarker backends: fast landmark parsing, detection scores paired with meshes, tracking, Tasks and FAN-68 set-up."""

from __future__ import annotations

import sys
import types
import zipfile
from pathlib import Path

import mediapipe
import numpy as np
import pytest
from mediapipe.framework.formats import landmark_pb2

from augane.errors import AssetError
from augane.landmarks import MEDIAPIPE_IBUG68, NUM_MEDIAPIPE_POINTS
from augane.preprocess.landmarkers import (
    FanCropBoxes,
    MediaPipeFaceMesh,
    MediaPipeTaskMesh,
    build_landmarker,
    landmarks_to_array,
    pair_scores,
)

MODULES = Path(mediapipe.__file__).parent / "modules"


def test_serialised_parse_matches_attribute_access():
    rng = np.random.default_rng(0)
    values = rng.uniform(-0.2, 1.2, size=(478, 3)).astype(np.float32)
    values[5] = 0.0  # zeros are still serialised (proto2 optional fields)
    message = landmark_pb2.NormalizedLandmarkList()
    for x, y, z in values:
        message.landmark.add(x=x, y=y, z=z)
    np.testing.assert_allclose(landmarks_to_array(message, 640, 480), values * np.array([640, 480, 640]), rtol=1e-6)
    message.landmark[3].visibility = 0.5  # another layout: the slow path must give the same points
    np.testing.assert_allclose(landmarks_to_array(message, 640, 480), values * np.array([640, 480, 640]), rtol=1e-6)


def test_meshes_pair_with_the_detection_inside_them():
    mesh_a = np.array([[0.0, 0.0, 0.0], [100.0, 100.0, 0.0]])
    mesh_b = np.array([[200.0, 0.0, 0.0], [300.0, 100.0, 0.0]])
    boxes = [np.array([220.0, 20.0, 280.0, 80.0]), np.array([10.0, 10.0, 90.0, 90.0])]
    assert pair_scores([mesh_a, mesh_b], boxes, [0.7, 0.9]) == [0.9, 0.7]
    assert pair_scores([mesh_a, mesh_b], boxes[:1], [0.7]) == [None, 0.7]


def test_detect_returns_pixel_meshes_with_scores(astronaut, face_mesh):
    found = face_mesh.detect(astronaut)
    assert found.detected == 1 and len(found.faces) == 1
    face = found.faces[0]
    assert face.mesh.shape == (NUM_MEDIAPIPE_POINTS, 3)
    np.testing.assert_array_equal(face.box_points, face.mesh[list(MEDIAPIPE_IBUG68), :2])
    assert 0.5 < face.score <= 1 and 60 < face.size < 200
    bare = mediapipe.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=4)
    reference = bare.process(astronaut).multi_face_landmarks[0]
    expected = np.array([(p.x * 512, p.y * 512, p.z * 512) for p in reference.landmark])
    np.testing.assert_allclose(face.mesh, expected, atol=1e-3)
    bare.close()
    half = face.scaled(0.5, 0.5)
    np.testing.assert_allclose(half.mesh, face.mesh * 0.5)


def test_tracking_mode_keeps_scores_on_tracked_frames(astronaut):
    tracker = MediaPipeFaceMesh(static_image_mode=False, max_faces=1)
    frames = [np.roll(astronaut, shift, axis=1) for shift in range(0, 12, 2)]
    scores = [tracker.detect(frame).faces[0].score for frame in frames]
    tracker.reset()
    assert all(score > 0.5 for score in scores)
    assert tracker.detect(frames[0]).faces[0].score == pytest.approx(scores[0], abs=1e-6)
    tracker.close()


def test_tasks_bundle(tmp_path, astronaut):
    with pytest.raises(AssetError, match="resources.mediapipe_task: .*does not exist"):
        MediaPipeTaskMesh(tmp_path / "face_landmarker.task")
    (tmp_path / "broken.task").write_bytes(b"not a bundle")
    with pytest.raises(AssetError, match="not a usable face landmarker bundle"):
        MediaPipeTaskMesh(tmp_path / "broken.task")
    # a bundle in the Tasks layout built from the models mediapipe ships; its outputs are not calibrated
    # like Google's face_landmarker.task, so this checks the plumbing (shapes, scores), not accuracy
    bundle = tmp_path / "face_landmarker.task"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.write(MODULES / "face_detection" / "face_detection_short_range.tflite", "face_detector.tflite")
        archive.write(MODULES / "face_landmark" / "face_landmark.tflite", "face_landmarks_detector.tflite")
    landmarker = build_landmarker({"max_faces": 2}, str(bundle), video=False)
    assert isinstance(landmarker, MediaPipeTaskMesh)
    found = landmarker.detect(astronaut)
    assert len(found.faces) == 1 and found.faces[0].mesh.shape == (NUM_MEDIAPIPE_POINTS, 3)
    assert found.faces[0].score == 0.0 or 0.5 < found.faces[0].score <= 1
    assert landmarker.describe()["task_sha256"] and landmarker.describe()["backend"] == "mediapipe_tasks_face_landmarker"
    landmarker.close()


@pytest.fixture
def fake_face_alignment(monkeypatch, tmp_path):
    """A stand-in ``face_alignment`` package with the real one's weight tables and API shape."""
    package = types.ModuleType("face_alignment")
    package.__path__ = []
    package.__version__ = "1.4.1"
    api = types.ModuleType("face_alignment.api")
    api.default_model_urls = {"2DFAN-4": "https://example.org/python-fan/2DFAN4-cd938726ad.zip"}
    api.models_urls = {}
    sfd = types.ModuleType("face_alignment.detection.sfd.sfd_detector")
    sfd.models_urls = {"s3fd": "https://example.org/python-fan/s3fd-619a316812.pth"}

    class FaceAlignment:
        def __init__(self, landmarks_type, device, flip_input, face_detector):
            self.calls = 0

        def get_landmarks_from_image(self, image, return_bboxes):
            points = np.stack(np.meshgrid(np.linspace(190, 260, 17), np.linspace(90, 170, 4)), axis=-1).reshape(-1, 2)[:68]
            return [points], None, [np.array([185.0, 85.0, 265.0, 175.0, 0.97])]

    package.FaceAlignment = FaceAlignment
    package.LandmarksType = types.SimpleNamespace(TWO_D=1)
    for name, module in {
        "face_alignment": package,
        "face_alignment.api": api,
        "face_alignment.detection": types.ModuleType("face_alignment.detection"),
        "face_alignment.detection.sfd": types.ModuleType("face_alignment.detection.sfd"),
        "face_alignment.detection.sfd.sfd_detector": sfd,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    import torch.hub

    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # the hub cache is then <TORCH_HOME>/hub
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_face_alignment_absent_says_what_to_install(monkeypatch, face_mesh):
    monkeypatch.setitem(sys.modules, "face_alignment", None)  # import fails as if not installed
    with pytest.raises(AssetError, match="needs the face-alignment package.*pip install"):
        build_landmarker({"detector": "face_alignment"}, None, video=False)


def test_face_alignment_without_weights_names_files_and_folder(fake_face_alignment, face_mesh):
    with pytest.raises(AssetError) as caught:
        FanCropBoxes(face_mesh)
    message = str(caught.value)
    assert "2DFAN4-cd938726ad.zip" in message and "s3fd-619a316812.pth" in message
    assert str(fake_face_alignment) in message and "never downloads" in message


def test_face_alignment_places_the_crop_box(fake_face_alignment, face_mesh, astronaut):
    fake_face_alignment.mkdir(parents=True)
    for name in ("2DFAN4-cd938726ad.zip", "s3fd-619a316812.pth"):
        (fake_face_alignment / name).write_bytes(b"weights")
    fan = FanCropBoxes(face_mesh)
    found = fan.detect(astronaut)
    assert found.detected == 1
    face = found.faces[0]
    assert face.box_points.shape == (68, 2) and face.score == pytest.approx(0.97)
    assert face.mesh is not None and face.mesh.shape == (NUM_MEDIAPIPE_POINTS, 3)  # MediaPipe's mesh paired with it
    assert fan.describe()["backend"] == "face_alignment_fan68"
