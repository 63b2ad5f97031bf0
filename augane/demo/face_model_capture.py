"""Demo face model, step 1: MediaPipe's 478 landmarks on a bundled photo, brought into FLAME's frame.

The photo is ``skimage.data.astronaut()`` (bundled with scikit-image, public
domain). MediaPipe 0.10.21's bundled face mesh (static image mode, iris
refinement) gives 478 points: x and y in pixels, z "roughly on the scale of x".
They are turned into model space (metres, y up, facing +z) by

1. flipping to y up / z towards the viewer,
2. finding the face's mirror symmetry: each point's mirror partner (a
   one-to-one assignment of the mirrored point cloud) and the symmetry plane,
   whose normal becomes +x (the subject's left),
3. making the chin -> nasal-root line vertical (+y),
4. scaling to an interpupillary distance of 62 mm (adult average) and placing
   the origin on the symmetry plane, at the height of the face's middle
   (between the eyes and the mouth) and at the depth of the face outline.

The map back to photo pixels is kept, so every model-space point of the
neutral face has a photo position (texture coordinates, eye colours).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from augane.errors import DataError

NUM_MESH_POINTS = 468
NUM_POINTS_WITH_IRIS = 478
#: Iris centres in the refined mesh: subject's right (image left), subject's left.
RIGHT_IRIS_CENTER, LEFT_IRIS_CENTER = 468, 473
RIGHT_IRIS_CONTOUR = (469, 470, 471, 472)
LEFT_IRIS_CONTOUR = (474, 475, 476, 477)
INTERPUPILLARY_DISTANCE_M = 0.062
_CHIN, _NASAL_ROOT = 152, 168
_RIGHT_EYE_OUTER, _LEFT_EYE_OUTER = 33, 263
_MOUTH_CENTER_POINTS = (13, 14)


@dataclass(frozen=True)
class PhotoCapture:
    """MediaPipe on the photo: the image and its 478 landmarks in pixel units.

    Attributes:
        image: (H, W, 3) uint8 RGB photo.
        points: (478, 3) float64: x, y in continuous pixels (y down), z in
            pixels of x (smaller = nearer the camera).
    """

    image: np.ndarray
    points: np.ndarray


@dataclass(frozen=True)
class AlignedFace:
    """The captured face in model space, with its mirror symmetry and the way back to the photo.

    Attributes:
        points: (478, 3) model-space points (metres, y up, facing +z).
        mirror: (468,) int64 index of each mesh point's mirror partner
            (midline points are their own partners).
        rotation: (3, 3) photo frame -> model frame.
        scale: metres per photo pixel.
        offset: (3,) model-space position of the photo frame's origin.
    """

    points: np.ndarray
    mirror: np.ndarray
    rotation: np.ndarray
    scale: float
    offset: np.ndarray

    def to_photo(self, model_points: np.ndarray) -> np.ndarray:
        """(N, 3) model-space points of the neutral face -> (N, 2) photo pixel positions (x right, y down)."""
        frame = ((model_points - self.offset) / self.scale) @ self.rotation
        return np.stack([frame[:, 0], -frame[:, 1]], axis=1)

    def mirrored(self, model_points: np.ndarray) -> np.ndarray:
        """Reflect (N, 3) model-space points in the symmetry plane (x -> -x)."""
        return model_points * np.array([-1.0, 1.0, 1.0])


def capture_photo_landmarks(image: np.ndarray) -> PhotoCapture:
    """Run MediaPipe's face mesh (static image, iris refinement) on ``image``.

    Raises:
        DataError: when MediaPipe finds no face.
    """
    import mediapipe as mp

    height, width = image.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as mesh:
        result = mesh.process(np.ascontiguousarray(image))
    if not result.multi_face_landmarks:
        raise DataError("MediaPipe found no face in the demo face model's photo")
    landmarks = result.multi_face_landmarks[0].landmark
    points = np.array([[p.x * width, p.y * height, p.z * width] for p in landmarks], dtype=np.float64)
    if points.shape[0] != NUM_POINTS_WITH_IRIS:
        raise DataError(f"MediaPipe returned {points.shape[0]} landmarks, expected {NUM_POINTS_WITH_IRIS}")
    return PhotoCapture(image=image, points=points)


def _frame_from(x_axis: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Rows x, y, z of a right-handed frame with x along ``x_axis`` and y as close to ``up`` as possible."""
    x_axis = x_axis / np.linalg.norm(x_axis)
    y_axis = up - x_axis * (up @ x_axis)
    y_axis /= np.linalg.norm(y_axis)
    return np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)])


def _mirror_partners(points: np.ndarray) -> np.ndarray:
    """One-to-one assignment of each point to the nearest point of the cloud mirrored in x = 0."""
    mirrored = points * np.array([-1.0, 1.0, 1.0])
    cost = np.linalg.norm(points[:, None] - mirrored[None], axis=2)
    _, partners = linear_sum_assignment(cost)
    return partners


def align_to_model_frame(capture: PhotoCapture, iterations: int = 3) -> AlignedFace:
    """Bring the captured landmarks into model space (see the module docstring).

    Raises:
        DataError: when the mirror pairing is not an involution (the photo is
            too far from frontal to find the face's symmetry).
    """
    photo = capture.points * np.array([1.0, -1.0, -1.0])  # y up, z towards the viewer
    mesh = photo[:NUM_MESH_POINTS]
    center = mesh.mean(axis=0)
    rotation = _frame_from(mesh[_LEFT_EYE_OUTER] - mesh[_RIGHT_EYE_OUTER], mesh[_NASAL_ROOT] - mesh[_CHIN])
    partners = np.arange(NUM_MESH_POINTS)
    for _ in range(iterations):
        local = (mesh - center) @ rotation.T
        partners = _mirror_partners(local)
        difference = local - local[partners]
        separated = np.linalg.norm(difference, axis=1) > 1e-3 * np.ptp(local[:, 0])
        normal = np.linalg.svd(difference[separated], full_matrices=False)[2][0]
        normal = normal if normal[0] > 0 else -normal
        midpoints = 0.5 * (local + local[partners])
        center = center + (normal * (midpoints @ normal).mean()) @ rotation
        x_axis = normal @ rotation
        rotation = _frame_from(x_axis, mesh[_NASAL_ROOT] - mesh[_CHIN])
    if not np.array_equal(partners[partners], np.arange(NUM_MESH_POINTS)):
        raise DataError("the demo photo's face mesh has no consistent mirror symmetry (is the face frontal?)")

    local = (photo - center) @ rotation.T
    ipd = np.linalg.norm(local[LEFT_IRIS_CENTER] - local[RIGHT_IRIS_CENTER])
    scale = INTERPUPILLARY_DISTANCE_M / ipd
    model = local * scale
    eyes_y = 0.5 * (model[LEFT_IRIS_CENTER, 1] + model[RIGHT_IRIS_CENTER, 1])
    mouth_y = model[list(_MOUTH_CENTER_POINTS), 1].mean()
    outline_z = model[[234, 454, 10, 152], 2].mean()
    shift = np.array([0.0, -0.5 * (eyes_y + mouth_y), -outline_z])
    # model = (photo - center) R^T scale + shift  =>  photo = ((model - offset) / scale) R  with offset below
    offset = shift - scale * (center @ rotation.T)
    aligned = model + shift
    return AlignedFace(points=aligned, mirror=partners, rotation=rotation, scale=float(scale),
                       offset=offset)


def symmetrise(points: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """(N, 3) points made exactly mirror-symmetric: each is averaged with its partner's reflection."""
    reflected = points[mirror] * np.array([-1.0, 1.0, 1.0])
    return 0.5 * (points + reflected)
