"""Face landmarkers: MediaPipe face mesh (bundled models or a Tasks ``.task`` file) and FAN-68.

Every landmarker maps an (H, W, 3) uint8 RGB image to :class:`Detections`
in that image's continuous pixel coordinates.

Detection confidence. MediaPipe's face-mesh solution returns landmarks but no
score. The same graph (``face_landmark_front_cpu``) runs the short-range
BlazeFace detector to seed the mesh and exposes its output stream
``face_detections``; AUGANE reads that stream alongside the landmarks, so the
confidence of a face is the detector score of the very detection its mesh was
fitted in, at no extra cost. Each mesh is paired with the detection whose box
centre lies inside the mesh's box, nearest its centre. In tracking mode the
graph skips detection on frames where it tracks the faces from the previous
frame's landmarks; a tracked face keeps the score of the face it continues
(greatest box overlap with the previous frame). With a Tasks ``.task`` file,
which returns no detections, the bundled short-range face detector is run on
the same image to provide the scores. FAN-68 scores are its S3FD detector's.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import numpy as np

from augane.errors import AssetError
from augane.landmarks import MEDIAPIPE_IBUG68, NUM_MEDIAPIPE_POINTS

log = logging.getLogger(__name__)

_FACE_MESH_GRAPH = "mediapipe/modules/face_landmark/face_landmark_front_cpu.binarypb"
_DETECTION_THRESHOLD = (
    "facedetectionshortrangecpu__facedetectionshortrange__facedetection__TensorsToDetectionsCalculator.min_score_thresh"
)
_TRACKING_THRESHOLD = "facelandmarkcpu__ThresholdingCalculator.threshold"
_LANDMARK_RECORD = 17  # bytes of one serialised NormalizedLandmark holding x, y, z


@dataclass(frozen=True)
class Face:
    """One face in image pixels.

    Attributes:
        box_points: (K, 2) points that place the crop box (the 68-point layout).
        mesh: (478, 3) MediaPipe mesh (x, y in pixels, z in pixels scaled like x),
            or None when the mesh model rejected the face.
        score: detector confidence in [0, 1] (0 when unknown).
    """

    box_points: np.ndarray
    mesh: np.ndarray | None
    score: float

    @property
    def size(self) -> float:
        """Mean side of the box around ``box_points``, in pixels."""
        extent = self.box_points.max(axis=0) - self.box_points.min(axis=0)
        return float(extent.mean())

    def scaled(self, sx: float, sy: float) -> Face:
        """The same face in an image resized by ``(sx, sy)`` (z follows x)."""
        scale = np.array([sx, sy, sx])
        mesh = None if self.mesh is None else self.mesh * scale
        return Face(box_points=self.box_points * scale[:2], mesh=mesh, score=self.score)


@dataclass(frozen=True)
class Detections:
    """Faces found in one image; ``detected`` counts faces the detector saw, with or without a mesh."""

    faces: list[Face] = field(default_factory=list)
    detected: int = 0


class Landmarker(Protocol):
    """What the preprocessing pipeline needs from a landmarker."""

    def describe(self) -> dict:
        """Provenance: backend, versions, settings, model hashes."""

    def detect(self, rgb: np.ndarray) -> Detections:
        """Faces in an (H, W, 3) uint8 RGB image."""

    def reset(self) -> None:
        """Forget tracking state (call before each new video)."""

    def close(self) -> None:
        """Release the graph."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def landmarks_to_array(landmark_list, width: int, height: int) -> np.ndarray:
    """A MediaPipe ``NormalizedLandmarkList`` as (N, 3) float64 pixels (z scaled by the width).

    Parses the serialised message directly when it has the plain x/y/z layout
    (17 bytes per point, ~30x faster than attribute access), else falls back to
    attribute access.
    """
    data = landmark_list.SerializeToString()
    count = len(data) // _LANDMARK_RECORD
    records = np.frombuffer(data, np.uint8)
    if count * _LANDMARK_RECORD == len(data) and count:
        records = records.reshape(count, _LANDMARK_RECORD)
        expected = np.array([0x0A, 0x0F, 0x0D, 0x15, 0x1D], np.uint8)
        if np.array_equal(records[:, [0, 1, 2, 7, 12]], np.broadcast_to(expected, (count, 5))):
            values = np.ascontiguousarray(records[:, [3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16]])
            normalised = values.view("<f4").reshape(count, 3).astype(np.float64)
            return normalised * np.array([width, height, width])
    points = np.array([(p.x, p.y, p.z) for p in landmark_list.landmark], dtype=np.float64).reshape(-1, 3)
    return points * np.array([width, height, width])


def _box_of(points: np.ndarray) -> np.ndarray:
    """(4,) ``x0, y0, x1, y1`` of (N, 2+) points."""
    return np.concatenate([points[:, :2].min(axis=0), points[:, :2].max(axis=0)])


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``x0, y0, x1, y1`` boxes."""
    inter = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    union = (a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter
    return float(inter / union) if union > 0 else 0.0


def pair_scores(meshes: list[np.ndarray], boxes: list[np.ndarray], scores: list[float]) -> list[float | None]:
    """Score of each mesh: the detection whose box centre lies inside the mesh box, nearest its centre.

    Args:
        meshes: (478, 3) pixel meshes.
        boxes: (4,) ``x0, y0, x1, y1`` detection boxes in pixels.
        scores: one per box.
    Returns:
        A score per mesh, None where no detection fits (each detection is used once).
    """
    result: list[float | None] = [None] * len(meshes)
    if not boxes:
        return result
    centres = np.array([(box[:2] + box[2:]) / 2 for box in boxes])  # (D, 2)
    free = np.ones(len(boxes), bool)
    for index, mesh in enumerate(meshes):
        mesh_box = _box_of(mesh)
        inside = free & np.all((centres >= mesh_box[:2]) & (centres <= mesh_box[2:]), axis=1)
        if inside.any():
            distance = np.linalg.norm(centres - (mesh_box[:2] + mesh_box[2:]) / 2, axis=1)
            best = int(np.argmin(np.where(inside, distance, np.inf)))
            free[best] = False
            result[index] = float(scores[best])
    return result


def _detection_boxes(detections, width: int, height: int) -> tuple[list[np.ndarray], list[float]]:
    """Pixel boxes and scores of MediaPipe ``Detection`` protos."""
    boxes, scores = [], []
    for detection in detections or []:
        box = detection.location_data.relative_bounding_box
        boxes.append(np.array([box.xmin * width, box.ymin * height, (box.xmin + box.width) * width, (box.ymin + box.height) * height]))
        scores.append(float(detection.score[0]) if len(detection.score) else 0.0)
    return boxes, scores


class _ScoreTracker:
    """Carries detection scores to tracked faces on frames where MediaPipe ran no detection.

    Disabled (``enabled=False``) in static mode, where every face has its own detection.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._previous: list[tuple[np.ndarray, float]] = []

    def reset(self) -> None:
        self._previous = []

    def fill(self, meshes: list[np.ndarray], scores: list[float | None]) -> list[float]:
        filled = []
        for mesh, score in zip(meshes, scores):
            if score is None:
                box = _box_of(mesh)
                overlaps = [(_overlap(box, previous_box), previous_score) for previous_box, previous_score in self._previous]
                best = max(overlaps, default=(0.0, 0.0))
                score = best[1] if best[0] > 0.3 else 0.0
            filled.append(float(score))
        if self.enabled:
            self._previous = [(_box_of(mesh), score) for mesh, score in zip(meshes, filled)]
        return filled


_BOX_INDICES = np.asarray(MEDIAPIPE_IBUG68)


def _faces_from_meshes(meshes: list[np.ndarray], scores: list[float]) -> list[Face]:
    return [Face(box_points=mesh[_BOX_INDICES, :2], mesh=mesh, score=score) for mesh, score in zip(meshes, scores)]


class MediaPipeFaceMesh:
    """MediaPipe face mesh from the models bundled with mediapipe 0.10.21 (478 points, iris-refined).

    Args:
        static_image_mode: detect in every image (True) or track across video frames (False).
        max_faces: most faces to find per image.
        min_detection_confidence: BlazeFace score threshold.
        min_tracking_confidence: face-presence threshold of the mesh model.
    """

    def __init__(
        self,
        static_image_mode: bool = True,
        max_faces: int = 4,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ):
        from mediapipe.python.solution_base import SolutionBase

        self.static_image_mode = static_image_mode
        self.max_faces = max_faces
        self.min_detection_confidence = min_detection_confidence
        self.min_tracking_confidence = min_tracking_confidence
        self._graph = SolutionBase(
            binary_graph_path=_FACE_MESH_GRAPH,
            side_inputs={"num_faces": max_faces, "with_attention": True, "use_prev_landmarks": not static_image_mode},
            calculator_params={
                _DETECTION_THRESHOLD: min_detection_confidence,
                _TRACKING_THRESHOLD: min_tracking_confidence,
            },
            outputs=["multi_face_landmarks", "face_detections"],
        )
        self._tracker = _ScoreTracker(enabled=not static_image_mode)

    def describe(self) -> dict:
        import mediapipe

        return {
            "backend": "mediapipe_face_mesh",
            "mediapipe_version": mediapipe.__version__,
            "graph": _FACE_MESH_GRAPH,
            "refine_landmarks": True,
            "static_image_mode": self.static_image_mode,
            "max_faces": self.max_faces,
            "min_detection_confidence": self.min_detection_confidence,
            "min_tracking_confidence": self.min_tracking_confidence,
            "confidence_source": "BlazeFace short-range score from the face-mesh graph's face_detections stream",
        }

    def detect(self, rgb: np.ndarray) -> Detections:
        height, width = rgb.shape[:2]
        result = self._graph.process({"image": rgb})
        meshes = [landmarks_to_array(item, width, height) for item in (result.multi_face_landmarks or [])]
        boxes, scores = _detection_boxes(result.face_detections, width, height)
        paired = self._tracker.fill(meshes, pair_scores(meshes, boxes, scores))
        return Detections(faces=_faces_from_meshes(meshes, paired), detected=max(len(meshes), len(boxes)))

    def reset(self) -> None:
        if not self.static_image_mode:  # a static graph keeps no state between images
            self._graph.reset()
        self._tracker.reset()

    def close(self) -> None:
        self._graph.close()


class MediaPipeTaskMesh:
    """MediaPipe Tasks ``FaceLandmarker`` from a user's ``face_landmarker.task`` file.

    Scores come from the bundled short-range face detector run on the same image.
    """

    def __init__(
        self,
        task_path: str | Path,
        video: bool = False,
        max_faces: int = 4,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ):
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self.task_path = Path(task_path)
        if not self.task_path.is_file():
            raise AssetError(
                f"resources.mediapipe_task: {self.task_path} does not exist "
                "(expected MediaPipe's face_landmarker.task; set it to null to use the bundled face mesh)"
            )
        self.video = video
        self.max_faces = max_faces
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.task_path)),
            running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
            num_faces=max_faces,
            min_face_detection_confidence=min_detection_confidence,
            min_face_presence_confidence=min_tracking_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        try:
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as err:
            raise AssetError(f"resources.mediapipe_task: {self.task_path} is not a usable face landmarker bundle: {err}") from err
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=0, min_detection_confidence=min_detection_confidence
        )
        self._image_class, self._image_format = mp.Image, mp.ImageFormat.SRGB
        self._timestamp_ms = 0
        self._tracker = _ScoreTracker(enabled=video)
        self._min_detection_confidence = min_detection_confidence

    def describe(self) -> dict:
        import mediapipe

        return {
            "backend": "mediapipe_tasks_face_landmarker",
            "mediapipe_version": mediapipe.__version__,
            "task_file": str(self.task_path),
            "task_sha256": _sha256(self.task_path),
            "running_mode": "video" if self.video else "image",
            "max_faces": self.max_faces,
            "min_detection_confidence": self._min_detection_confidence,
            "confidence_source": "bundled BlazeFace short-range detector run on the same image",
        }

    def detect(self, rgb: np.ndarray) -> Detections:
        height, width = rgb.shape[:2]
        image = self._image_class(image_format=self._image_format, data=np.ascontiguousarray(rgb))
        if self.video:
            self._timestamp_ms += 33
            result = self._landmarker.detect_for_video(image, self._timestamp_ms)
        else:
            result = self._landmarker.detect(image)
        meshes = [
            np.array([(p.x, p.y, p.z) for p in face], dtype=np.float64)[:NUM_MEDIAPIPE_POINTS] * np.array([width, height, width])
            for face in result.face_landmarks
        ]
        boxes, scores = _detection_boxes(self._detector.process(rgb).detections, width, height)
        paired = self._tracker.fill(meshes, pair_scores(meshes, boxes, scores))
        return Detections(faces=_faces_from_meshes(meshes, paired), detected=max(len(meshes), len(boxes)))

    def reset(self) -> None:
        self._tracker.reset()

    def close(self) -> None:
        self._landmarker.close()
        self._detector.close()


def _fan_weight_files(module) -> dict[str, str]:
    """File name -> download address of the weights the installed face_alignment would fetch (2D FAN-4 + S3FD)."""
    import torch

    api = importlib.import_module(f"{module.__name__}.api")
    urls = getattr(api, "models_urls", {})
    defaults = getattr(api, "default_model_urls", None)
    if defaults is not None:  # face_alignment 1.4: per-torch-version tables
        version = ".".join(torch.__version__.split("+")[0].split(".")[:2])
        fan_url = urls.get(version, defaults)["2DFAN-4"]
    else:
        fan_url = urls["2DFAN-4"]
    sfd = importlib.import_module(f"{module.__name__}.detection.sfd.sfd_detector")
    sfd_url = sfd.models_urls["s3fd"]
    return {os.path.basename(urlparse(url).path): url for url in (fan_url, sfd_url)}


class FanCropBoxes:
    """DECA's own cropping landmarks: FAN-68 (package ``face_alignment``) with its S3FD detector.

    FAN places the crop box (68 points, as DECA does); the 478-point mesh still
    comes from MediaPipe, run on the same image and paired with each FAN face.
    Weights are read only from the torch hub cache; nothing is downloaded.

    Raises:
        AssetError: the package or its weight files are absent, saying what to install and where to put which file.
    """

    def __init__(self, mesh: MediaPipeFaceMesh, device: str = "cpu"):
        try:
            module = importlib.import_module("face_alignment")
        except ImportError as err:
            raise AssetError(
                "preprocess.detector=face_alignment needs the face-alignment package, which AUGANE does not install: "
                "`.venv/bin/pip install -c requirements/constraints.txt face-alignment` on a machine with network "
                "access, then put its weights in the torch hub cache (this check then lists the file names); "
                "or set preprocess.detector=mediapipe"
            ) from err
        import torch.hub

        checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
        files = _fan_weight_files(module)
        missing = {name: url for name, url in files.items() if not (checkpoints / name).is_file()}
        if missing:
            listing = "; ".join(f"{name} (from {url})" for name, url in missing.items())
            raise AssetError(
                f"preprocess.detector=face_alignment: weight files missing from the torch hub cache {checkpoints}: "
                f"{listing}. AUGANE never downloads: copy these files there (TORCH_HOME moves the cache) "
                "or set preprocess.detector=mediapipe"
            )
        self._weights = {name: checkpoints / name for name in files}
        arguments = {"device": device, "flip_input": False, "face_detector": "sfd"}
        if "compile" in inspect.signature(module.FaceAlignment.__init__).parameters:
            arguments["compile"] = False
        self._fan = module.FaceAlignment(module.LandmarksType.TWO_D, **arguments)
        self._version = getattr(module, "__version__", "unknown")
        self._mesh = mesh

    def describe(self) -> dict:
        return {
            "backend": "face_alignment_fan68",
            "face_alignment_version": self._version,
            "weights_sha256": {name: _sha256(path) for name, path in self._weights.items()},
            "mesh": self._mesh.describe(),
            "confidence_source": "S3FD face detector score",
        }

    def detect(self, rgb: np.ndarray) -> Detections:
        landmarks, _, boxes = self._fan.get_landmarks_from_image(rgb, return_bboxes=True)
        if not landmarks:
            return Detections(faces=[], detected=0)
        meshes = [face.mesh for face in self._mesh.detect(rgb).faces]
        faces = []
        free = set(range(len(meshes)))
        for points, box in zip(landmarks, boxes):
            points = np.asarray(points, dtype=np.float64)[:, :2]
            fan_box = _box_of(points)
            best = max(free, key=lambda index: _overlap(fan_box, _box_of(meshes[index])), default=None)
            mesh = None
            if best is not None and _overlap(fan_box, _box_of(meshes[best])) > 0.3:
                mesh = meshes[best]
                free.discard(best)
            faces.append(Face(box_points=points, mesh=mesh, score=float(np.asarray(box)[4])))
        return Detections(faces=faces, detected=len(faces))

    def reset(self) -> None:
        self._mesh.reset()

    def close(self) -> None:
        self._mesh.close()


def build_landmarker(preprocess: dict, mediapipe_task: str | None, video: bool, device: str = "cpu") -> Landmarker:
    """The landmarker the config asks for.

    Args:
        preprocess: the ``preprocess`` config section.
        mediapipe_task: ``resources.mediapipe_task`` (None = bundled models).
        video: the samples are video frames (tracking mode when ``preprocess.video_tracking``).
        device: torch device for FAN.
    """
    tracking = video and bool(preprocess.get("video_tracking", False))
    settings = {
        "max_faces": int(preprocess.get("max_faces", 4)),
        "min_detection_confidence": float(preprocess.get("min_detection_confidence", 0.5)),
        "min_tracking_confidence": float(preprocess.get("min_tracking_confidence", 0.5)),
    }
    if mediapipe_task:
        return MediaPipeTaskMesh(mediapipe_task, video=tracking, **settings)
    mesh = MediaPipeFaceMesh(static_image_mode=not tracking, **settings)
    if preprocess.get("detector", "mediapipe") == "face_alignment":
        return FanCropBoxes(mesh, device=device)
    return mesh
