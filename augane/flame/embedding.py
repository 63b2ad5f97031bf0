"""Landmark embeddings: landmarks as barycentric points on mesh triangles.

Two embeddings are used with FLAME-format models:

* :class:`LandmarkEmbedding68`, DECA's ``landmark_embedding.npy``: 51 static
  landmarks (iBUG points 17-67: brows, nose, eyes, mouth) and a *dynamic* jaw
  contour (iBUG points 0-16) looked up per head yaw in 79 bins, so that the
  contour follows the silhouette when the head turns; plus the 68 ``full``
  (static, frontal) landmarks DECA uses in 3D.
* :class:`MediapipeEmbedding`, EMOCA's ``mediapipe_landmark_embedding.npz``:
  the paper's 105 MediaPipe landmarks (:data:`augane.landmarks.MEDIAPIPE_105`).

The yaw bins follow DECA: the head rotation is the composition of the neck and
root (global) rotations, its yaw ``a`` (:func:`augane.flame.lbs.yaw_angle`, in
degrees, rounded, at most 39) selects bin ``a`` for ``0 <= a <= 39``, bin
``39 - a`` (40..78) for ``-39 <= a < 0`` and bin 78 below -39.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from augane.errors import AssetError
from augane.flame.lbs import yaw_angle
from augane.landmarks import MEDIAPIPE_105

NUM_CONTOUR_LANDMARKS = 17
NUM_STATIC_LANDMARKS = 51
NUM_YAW_BINS = 79
MAX_CONTOUR_YAW_DEGREES = 39
#: Tolerance on barycentric coordinates summing to one.
BARYCENTRIC_TOLERANCE = 1e-4


def _check_array(source: str, key: str, array: np.ndarray, shape: tuple[int, ...], kind: str) -> None:
    """Raise :class:`AssetError` unless ``array`` has ``shape`` and dtype kind ``kind`` ('i'/'u' or 'f')."""
    if array.shape != shape:
        raise AssetError(f"{source}: '{key}' has shape {array.shape}, expected {shape}")
    kinds = "iu" if kind == "i" else kind
    if array.dtype.kind not in kinds:
        expected = "integer" if kind == "i" else "floating-point"
        raise AssetError(f"{source}: '{key}' has dtype {array.dtype}, expected {expected} values")


def _check_barycentric(source: str, key: str, bary: np.ndarray) -> None:
    """Barycentric coordinates must be finite and sum to one."""
    if not np.all(np.isfinite(bary)):
        raise AssetError(f"{source}: '{key}' holds non-finite barycentric coordinates")
    error = np.abs(bary.sum(axis=-1) - 1.0).max(initial=0.0)
    if error > BARYCENTRIC_TOLERANCE:
        raise AssetError(f"{source}: '{key}' barycentric coordinates do not sum to 1 (off by up to {error:.3g})")


def _check_face_range(source: str, key: str, faces: np.ndarray, num_faces: int) -> None:
    if faces.size and (faces.min() < 0 or faces.max() >= num_faces):
        raise AssetError(
            f"{source}: '{key}' indexes triangles {faces.min()}..{faces.max()}, but the mesh it is used with has "
            f"{num_faces} triangles; the embedding belongs to another mesh"
        )


@dataclass(frozen=True)
class LandmarkEmbedding68:
    """DECA's 68-point landmark embedding (iBUG order).

    Attributes:
        static_faces: (51,) int64 triangle of each static landmark (iBUG 17-67).
        static_bary: (51, 3) float64 barycentric coordinates in that triangle.
        dynamic_faces: (79, 17) int64 contour triangles (iBUG 0-16) per yaw bin.
        dynamic_bary: (79, 17, 3) float64.
        full_faces: (68,) int64 frontal 68 landmarks (DECA's ``landmarks3d``).
        full_bary: (68, 3) float64.
        source: where the embedding came from (for messages).
    """

    static_faces: np.ndarray
    static_bary: np.ndarray
    dynamic_faces: np.ndarray
    dynamic_bary: np.ndarray
    full_faces: np.ndarray
    full_bary: np.ndarray
    source: str = "<memory>"

    def __post_init__(self) -> None:
        expected = {
            "static_lmk_faces_idx": (self.static_faces, (NUM_STATIC_LANDMARKS,), "i"),
            "static_lmk_bary_coords": (self.static_bary, (NUM_STATIC_LANDMARKS, 3), "f"),
            "dynamic_lmk_faces_idx": (self.dynamic_faces, (NUM_YAW_BINS, NUM_CONTOUR_LANDMARKS), "i"),
            "dynamic_lmk_bary_coords": (self.dynamic_bary, (NUM_YAW_BINS, NUM_CONTOUR_LANDMARKS, 3), "f"),
            "full_lmk_faces_idx": (self.full_faces, (68,), "i"),
            "full_lmk_bary_coords": (self.full_bary, (68, 3), "f"),
        }
        for key, (array, shape, kind) in expected.items():
            _check_array(self.source, key, array, shape, kind)
            if kind == "f":
                _check_barycentric(self.source, key, array)

    def check_mesh(self, num_faces: int) -> None:
        """Raise :class:`AssetError` unless every triangle index exists in a mesh of ``num_faces`` triangles."""
        for key, faces in (
            ("static_lmk_faces_idx", self.static_faces),
            ("dynamic_lmk_faces_idx", self.dynamic_faces),
            ("full_lmk_faces_idx", self.full_faces),
        ):
            _check_face_range(self.source, key, faces, num_faces)


@dataclass(frozen=True)
class MediapipeEmbedding:
    """The paper's 105 MediaPipe landmarks embedded on a mesh (EMOCA's layout).

    Attributes:
        faces: (105,) int64 triangle of each landmark.
        bary: (105, 3) float64 barycentric coordinates.
        landmark_indices: (105,) int64 MediaPipe indices, equal to
            :data:`augane.landmarks.MEDIAPIPE_105`.
        source: where the embedding came from (for messages).
    """

    faces: np.ndarray
    bary: np.ndarray
    landmark_indices: np.ndarray
    source: str = "<memory>"

    def __post_init__(self) -> None:
        count = len(MEDIAPIPE_105)
        _check_array(self.source, "lmk_face_idx", self.faces, (count,), "i")
        _check_array(self.source, "lmk_b_coords", self.bary, (count, 3), "f")
        _check_array(self.source, "landmark_indices", self.landmark_indices, (count,), "i")
        _check_barycentric(self.source, "lmk_b_coords", self.bary)
        if not np.array_equal(self.landmark_indices, np.asarray(MEDIAPIPE_105)):
            first = int(np.flatnonzero(self.landmark_indices != np.asarray(MEDIAPIPE_105))[0])
            raise AssetError(
                f"{self.source}: 'landmark_indices' differ from the paper's 105 MediaPipe landmarks "
                f"(augane.landmarks.MEDIAPIPE_105) at position {first}: "
                f"{int(self.landmark_indices[first])} instead of {MEDIAPIPE_105[first]}"
            )

    def check_mesh(self, num_faces: int) -> None:
        """Raise :class:`AssetError` unless every triangle index exists in a mesh of ``num_faces`` triangles."""
        _check_face_range(self.source, "lmk_face_idx", self.faces, num_faces)


def vertices_to_landmarks(vertices: Tensor, faces: Tensor, face_index: Tensor, bary: Tensor) -> Tensor:
    """Barycentric interpolation of landmarks on triangles.

    Args:
        vertices: (B, V, 3).
        faces: (F, 3) long vertex indices of the triangles.
        face_index: (L,) or (B, L) long triangle of each landmark.
        bary: (L, 3) or (B, L, 3) barycentric coordinates.
    Returns:
        (B, L, 3) landmark positions.
    """
    batch_size = vertices.shape[0]
    if face_index.ndim == 1:
        face_index = face_index.expand(batch_size, -1)
    if bary.ndim == 2:
        bary = bary.expand(batch_size, -1, -1)
    corner_index = faces[face_index]  # (B, L, 3)
    batch_index = torch.arange(batch_size, device=vertices.device).view(-1, 1, 1)
    corners = vertices[batch_index, corner_index]  # (B, L, 3 corners, 3 coords)
    return (corners * bary.unsqueeze(-1)).sum(dim=-2)


def contour_yaw_bin(head_rotation: Tensor) -> Tensor:
    """DECA's yaw bin of the dynamic contour for a head rotation.

    Args:
        head_rotation: (B, 3, 3) rotation of the head: root (global) rotation
            composed with the neck rotation, ``R_root @ R_neck``.
    Returns:
        (B,) long bin indices in [0, 78] (see the module docstring).
    """
    degrees = torch.rad2deg(yaw_angle(head_rotation))
    angle = torch.round(torch.clamp(degrees, max=MAX_CONTOUR_YAW_DEGREES)).long()
    negative_bins = torch.where(
        angle < -MAX_CONTOUR_YAW_DEGREES,
        torch.full_like(angle, NUM_YAW_BINS - 1),
        MAX_CONTOUR_YAW_DEGREES - angle,
    )
    return torch.where(angle < 0, negative_bins, angle)


def yaw_bin_degrees(bins: np.ndarray) -> np.ndarray:
    """The yaw (degrees) each contour bin stands for: bin ``k`` is ``k`` for k <= 39 and ``39 - k`` above.

    The inverse of :func:`contour_yaw_bin` on integer angles in [-39, 39].
    """
    bins = np.asarray(bins)
    return np.where(bins <= MAX_CONTOUR_YAW_DEGREES, bins, MAX_CONTOUR_YAW_DEGREES - bins)
