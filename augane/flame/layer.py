"""The FLAME decoder as a stateless layer: parameters in, vertices, joints and landmarks out.

:class:`FlameLayer` holds a FLAME-format model (:class:`~augane.flame.io.FlameModelData`)
as buffers and takes every parameter in :meth:`FlameLayer.forward`, the shape a
network that predicts parameters needs. DECA's conventions:

* ``shape`` (B, n_shape): the first identity columns of ``shapedirs``;
* ``expression`` (B, n_exp): the first columns of the expression block (FLAME:
  columns 300..300 + n_exp);
* ``pose`` (B, 6): global (root) axis-angle then jaw axis-angle; neck and eyes
  default to zero rotation;
* 68 landmarks: DECA's 2D-fitting set (dynamic contour for the head's yaw, then
  the 51 static points); :meth:`FlameLayer.frontal_landmarks68` gives DECA's
  static ``landmarks3d``.

Build with ``dtype=torch.float64`` for full precision (the buffers come from
the files' float64 arrays); ``.to("cuda")`` moves every buffer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from augane.flame.embedding import (
    LandmarkEmbedding68,
    MediapipeEmbedding,
    contour_yaw_bin,
    vertices_to_landmarks,
)
from augane.flame.io import (
    NUM_JOINTS,
    FlameModelData,
    load_flame_model,
    load_landmark_embedding,
    load_mediapipe_embedding,
)
from augane.flame.lbs import axis_angle_to_matrix, linear_blend_skinning

ROOT, NECK, JAW, LEFT_EYE, RIGHT_EYE = range(NUM_JOINTS)


@dataclass
class FlameOutput:
    """What :class:`FlameLayer` returns (model space: metres, y up, facing +z).

    Attributes:
        vertices: (B, V, 3) posed vertices.
        joints: (B, 5, 3) posed joints (root, neck, jaw, left eye, right eye).
        landmarks68: (B, 68, 3) iBUG-68 landmarks with the dynamic contour, or
            None without a 68-point embedding.
        landmarks105: (B, 105, 3) the paper's MediaPipe landmarks, or None
            without a MediaPipe embedding.
    """

    vertices: Tensor
    joints: Tensor
    landmarks68: Tensor | None
    landmarks105: Tensor | None


def _check_parameters(name: str, value: Tensor, batch_size: int, width: int) -> None:
    if value.ndim != 2 or value.shape[0] != batch_size or value.shape[1] != width:
        raise ValueError(f"{name} must have shape ({batch_size}, {width}), got {tuple(value.shape)}")


class FlameLayer(nn.Module):
    """Stateless FLAME-format decoder (linear blend skinning, landmarks).

    Args:
        model: the model arrays.
        n_shape: identity components used (DECA: 100).
        n_exp: expression components used (DECA: 50).
        landmark_embedding: DECA's 68-point embedding, or None.
        mediapipe_embedding: the 105-point MediaPipe embedding, or None.
        dtype: floating dtype of the buffers (built from the float64 file
            arrays, so float64 keeps the file's precision).
    Raises:
        AssetError: more components than the model has, or an embedding that
            does not fit the model's mesh.
    """

    def __init__(
        self,
        model: FlameModelData,
        n_shape: int = 100,
        n_exp: int = 50,
        landmark_embedding: LandmarkEmbedding68 | None = None,
        mediapipe_embedding: MediapipeEmbedding | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.n_shape = n_shape
        self.n_exp = n_exp
        self.parents = model.parents
        directions = np.concatenate([model.shape_directions(n_shape), model.expression_directions(n_exp)], axis=2)
        self.register_buffer("v_template", torch.tensor(model.v_template, dtype=dtype))
        self.register_buffer("faces", torch.tensor(model.faces, dtype=torch.long))
        self.register_buffer("shapedirs", torch.tensor(directions, dtype=dtype))
        pose_basis = model.posedirs.reshape(-1, model.posedirs.shape[-1]).T
        self.register_buffer("posedirs", torch.tensor(pose_basis, dtype=dtype))
        self.register_buffer("j_regressor", torch.tensor(model.j_regressor, dtype=dtype))
        self.register_buffer("lbs_weights", torch.tensor(model.weights, dtype=dtype))
        self.has_landmarks68 = landmark_embedding is not None
        if landmark_embedding is not None:
            landmark_embedding.check_mesh(model.num_faces)
            self.register_buffer("static_faces", torch.tensor(landmark_embedding.static_faces, dtype=torch.long))
            self.register_buffer("static_bary", torch.tensor(landmark_embedding.static_bary, dtype=dtype))
            self.register_buffer("dynamic_faces", torch.tensor(landmark_embedding.dynamic_faces, dtype=torch.long))
            self.register_buffer("dynamic_bary", torch.tensor(landmark_embedding.dynamic_bary, dtype=dtype))
            self.register_buffer("full_faces", torch.tensor(landmark_embedding.full_faces, dtype=torch.long))
            self.register_buffer("full_bary", torch.tensor(landmark_embedding.full_bary, dtype=dtype))
        self.has_landmarks105 = mediapipe_embedding is not None
        if mediapipe_embedding is not None:
            mediapipe_embedding.check_mesh(model.num_faces)
            self.register_buffer("mp_faces", torch.tensor(mediapipe_embedding.faces, dtype=torch.long))
            self.register_buffer("mp_bary", torch.tensor(mediapipe_embedding.bary, dtype=dtype))

    @classmethod
    def from_files(
        cls,
        model_path: str | Path,
        landmark_embedding_path: str | Path | None = None,
        mediapipe_embedding_path: str | Path | None = None,
        n_shape: int = 100,
        n_exp: int = 50,
        dtype: torch.dtype = torch.float32,
    ) -> FlameLayer:
        """Build the layer from a model file and optional embedding files (validated against the mesh)."""
        model = load_flame_model(model_path)
        landmarks68 = None
        if landmark_embedding_path is not None:
            landmarks68 = load_landmark_embedding(landmark_embedding_path, num_faces=model.num_faces)
        landmarks105 = None
        if mediapipe_embedding_path is not None:
            landmarks105 = load_mediapipe_embedding(mediapipe_embedding_path, num_faces=model.num_faces)
        return cls(model, n_shape=n_shape, n_exp=n_exp, landmark_embedding=landmarks68,
                   mediapipe_embedding=landmarks105, dtype=dtype)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    def full_pose(self, pose: Tensor, neck_pose: Tensor | None = None, eye_pose: Tensor | None = None) -> Tensor:
        """(B, 5, 3) axis-angle of every joint from DECA's (B, 6) pose and optional neck (B, 3) / eye (B, 6) poses."""
        batch_size = pose.shape[0]
        _check_parameters("pose", pose, batch_size, 6)
        zeros = pose.new_zeros(batch_size, 3)
        if neck_pose is None:
            neck_pose = zeros
        if eye_pose is None:
            eye_pose = pose.new_zeros(batch_size, 6)
        _check_parameters("neck_pose", neck_pose, batch_size, 3)
        _check_parameters("eye_pose", eye_pose, batch_size, 6)
        return torch.cat([pose[:, :3], neck_pose, pose[:, 3:], eye_pose], dim=1).view(batch_size, NUM_JOINTS, 3)

    def forward(
        self,
        shape: Tensor,
        expression: Tensor,
        pose: Tensor,
        neck_pose: Tensor | None = None,
        eye_pose: Tensor | None = None,
    ) -> FlameOutput:
        """Decode a batch of parameters.

        Args:
            shape: (B, n_shape) identity coefficients.
            expression: (B, n_exp) expression coefficients.
            pose: (B, 6) global axis-angle (radians) then jaw axis-angle.
            neck_pose: (B, 3) neck axis-angle; zero when None.
            eye_pose: (B, 6) left then right eye axis-angle; zero when None.
        Returns:
            :class:`FlameOutput` in the dtype and on the device of the buffers.
        """
        batch_size = shape.shape[0]
        _check_parameters("shape", shape, batch_size, self.n_shape)
        _check_parameters("expression", expression, batch_size, self.n_exp)
        rotations = axis_angle_to_matrix(self.full_pose(pose, neck_pose, eye_pose))
        vertices, joints = linear_blend_skinning(
            torch.cat([shape, expression], dim=1),
            rotations,
            self.v_template,
            self.shapedirs,
            self.posedirs,
            self.j_regressor,
            self.parents,
            self.lbs_weights,
        )
        landmarks68 = None
        if self.has_landmarks68:
            head_rotation = rotations[:, ROOT] @ rotations[:, NECK]
            bins = contour_yaw_bin(head_rotation)
            faces = torch.cat([self.dynamic_faces[bins], self.static_faces.expand(batch_size, -1)], dim=1)
            bary = torch.cat([self.dynamic_bary[bins], self.static_bary.expand(batch_size, -1, -1)], dim=1)
            landmarks68 = vertices_to_landmarks(vertices, self.faces, faces, bary)
        landmarks105 = None
        if self.has_landmarks105:
            landmarks105 = vertices_to_landmarks(vertices, self.faces, self.mp_faces, self.mp_bary)
        return FlameOutput(vertices=vertices, joints=joints, landmarks68=landmarks68, landmarks105=landmarks105)

    def frontal_landmarks68(self, vertices: Tensor) -> Tensor:
        """(B, 68, 3) DECA's static ``landmarks3d`` (frontal contour) on (B, V, 3) vertices."""
        if not self.has_landmarks68:
            raise RuntimeError("this FlameLayer was built without a 68-point landmark embedding")
        return vertices_to_landmarks(vertices, self.faces, self.full_faces, self.full_bary)
