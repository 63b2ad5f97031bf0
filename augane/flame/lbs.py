"""Linear blend skinning for FLAME-format models, as pure functions of tensors.

Conventions (FLAME, SMPL family):

* Rotations are axis-angle vectors in radians (direction = axis, norm = angle,
  right-handed); :func:`axis_angle_to_matrix` turns them into matrices.
* A model has ``J`` joints in a kinematic tree given by ``parents`` (``parents[0]
  == -1`` for the root, ``parents[j] < j`` otherwise). Rotations are local: joint
  ``j`` rotates about its own rest position, after its parent's transform.
* Pose correctives are driven by ``(R_j - I)`` of every non-root joint, flattened
  row-major: feature ``9 * (j - 1) + 3 * row + col``.

Every function works on CPU and CUDA alike, in float32 or float64 (the dtype of
its inputs).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

#: Below this squared angle (rad^2) :func:`axis_angle_to_matrix` uses Taylor series.
_SMALL_ANGLE_SQ = 1e-12


def skew_matrix(vectors: Tensor) -> Tensor:
    """Cross-product matrices: (..., 3) -> (..., 3, 3) with ``skew(a) @ b == a x b``."""
    x, y, z = vectors.unbind(-1)
    zero = torch.zeros_like(x)
    rows = (
        torch.stack([zero, -z, y], dim=-1),
        torch.stack([z, zero, -x], dim=-1),
        torch.stack([-y, x, zero], dim=-1),
    )
    return torch.stack(rows, dim=-2)


def axis_angle_to_matrix(axis_angle: Tensor) -> Tensor:
    """Rotation matrices from axis-angle vectors (Rodrigues' formula).

    ``R = I + a K + b K^2`` with ``K = skew(r)``, ``a = sin(t) / t`` and
    ``b = (1 - cos(t)) / t^2 = 2 sin^2(t / 2) / t^2`` for ``t = |r|``; both
    factors switch to their Taylor series near ``t = 0``, so the result and its
    gradient stay exact and finite at (and around) the identity.

    Args:
        axis_angle: (..., 3) rotation vectors in radians.
    Returns:
        (..., 3, 3) rotation matrices.
    """
    if axis_angle.shape[-1] != 3:
        raise ValueError(f"axis-angle vectors must have 3 components on the last axis, got {tuple(axis_angle.shape)}")
    angle_sq = (axis_angle * axis_angle).sum(dim=-1)
    small = angle_sq < _SMALL_ANGLE_SQ
    safe_sq = torch.where(small, torch.ones_like(angle_sq), angle_sq)
    angle = safe_sq.sqrt()
    factor_a = torch.where(small, 1.0 - angle_sq / 6.0, torch.sin(angle) / angle)
    factor_b = torch.where(small, 0.5 - angle_sq / 24.0, 2.0 * torch.sin(0.5 * angle).square() / safe_sq)
    skew = skew_matrix(axis_angle)
    identity = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return identity + factor_a[..., None, None] * skew + factor_b[..., None, None] * (skew @ skew)


def yaw_angle(rotation: Tensor) -> Tensor:
    """Rotation about the y axis (radians) of the Euler decomposition used by DECA.

    ``atan2(-R[2, 0], sqrt(R[0, 0]^2 + R[1, 0]^2))``: for a pure rotation by
    ``t`` about +y this is ``t`` (positive turns the face, which looks towards
    +z, towards +x).

    Args:
        rotation: (..., 3, 3) rotation matrices.
    Returns:
        (...,) angles in radians, in [-pi/2, pi/2].
    """
    cos_term = torch.sqrt(rotation[..., 0, 0].square() + rotation[..., 1, 0].square())
    return torch.atan2(-rotation[..., 2, 0], cos_term)


def blend_shapes(coefficients: Tensor, directions: Tensor) -> Tensor:
    """Per-vertex displacements of a linear blend-shape space.

    Args:
        coefficients: (B, K) coefficients.
        directions: (V, 3, K) displacement of every vertex per unit coefficient.
    Returns:
        (B, V, 3) displacements ``sum_k coefficients[b, k] * directions[v, :, k]``.
    """
    num_vertices, _, num_components = directions.shape
    if coefficients.shape[-1] != num_components:
        raise ValueError(
            f"{coefficients.shape[-1]} blend-shape coefficients given for {num_components} directions"
        )
    flat = directions.reshape(num_vertices * 3, num_components)
    return (coefficients @ flat.T).reshape(coefficients.shape[0], num_vertices, 3)


def vertices_to_joints(joint_regressor: Tensor, vertices: Tensor) -> Tensor:
    """Joint positions regressed from vertices.

    Args:
        joint_regressor: (J, V) weights of each vertex in each joint.
        vertices: (B, V, 3).
    Returns:
        (B, J, 3).
    """
    return torch.matmul(joint_regressor, vertices)


def pose_corrective_offsets(rotations: Tensor, pose_directions: Tensor) -> Tensor:
    """Pose-dependent corrective displacements.

    Args:
        rotations: (B, J, 3, 3) local joint rotations.
        pose_directions: (9 * (J - 1), V * 3) corrective basis (FLAME's
            ``posedirs`` (V, 3, 36) reshaped to (V * 3, 36) and transposed).
    Returns:
        (B, V, 3) offsets driven by ``R_j - I`` of the non-root joints.
    """
    batch_size = rotations.shape[0]
    identity = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
    feature = (rotations[:, 1:] - identity).reshape(batch_size, -1)
    return (feature @ pose_directions).reshape(batch_size, -1, 3)


def rigid_transforms(rotations: Tensor, joints: Tensor, parents: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Compose local joint rotations along the kinematic tree.

    Args:
        rotations: (B, J, 3, 3) local rotations.
        joints: (B, J, 3) rest-pose joint positions.
        parents: J parent indices, ``parents[0] == -1`` and ``parents[j] < j``.
    Returns:
        posed_joints: (B, J, 3) joint positions after posing.
        skinning: (B, J, 3, 4) affine transforms ``[R | t]`` mapping a rest-pose
            point rigidly attached to joint ``j`` to its posed position.
    """
    batch_size, num_joints = joints.shape[:2]
    global_rotations: list[Tensor] = []
    global_translations: list[Tensor] = []
    for j in range(num_joints):
        parent = parents[j]
        if parent < 0:
            global_rotations.append(rotations[:, j])
            global_translations.append(joints[:, j])
            continue
        offset = (joints[:, j] - joints[:, parent]).unsqueeze(-1)
        global_rotations.append(global_rotations[parent] @ rotations[:, j])
        global_translations.append(global_translations[parent] + (global_rotations[parent] @ offset).squeeze(-1))
    rotation = torch.stack(global_rotations, dim=1)
    posed_joints = torch.stack(global_translations, dim=1)
    translation = posed_joints - (rotation @ joints.unsqueeze(-1)).squeeze(-1)
    return posed_joints, torch.cat([rotation, translation.unsqueeze(-1)], dim=-1).reshape(batch_size, num_joints, 3, 4)


def linear_blend_skinning(
    coefficients: Tensor,
    rotations: Tensor,
    template: Tensor,
    shape_directions: Tensor,
    pose_directions: Tensor,
    joint_regressor: Tensor,
    parents: Sequence[int],
    weights: Tensor,
) -> tuple[Tensor, Tensor]:
    """Shape, pose-correct and skin a template mesh.

    Args:
        coefficients: (B, K) blend-shape coefficients (identity then expression).
        rotations: (B, J, 3, 3) local joint rotations.
        template: (V, 3) rest-pose template vertices.
        shape_directions: (V, 3, K) blend shapes matching ``coefficients``.
        pose_directions: (9 * (J - 1), V * 3) pose correctives.
        joint_regressor: (J, V).
        parents: J parent indices of the kinematic tree.
        weights: (V, J) skinning weights (rows sum to 1).
    Returns:
        vertices: (B, V, 3) posed vertices.
        joints: (B, J, 3) posed joints.
    """
    shaped = template + blend_shapes(coefficients, shape_directions)
    rest_joints = vertices_to_joints(joint_regressor, shaped)
    corrected = shaped + pose_corrective_offsets(rotations, pose_directions)
    posed_joints, transforms = rigid_transforms(rotations, rest_joints, parents)
    batch_size, num_joints = transforms.shape[:2]
    # per-vertex blended [R | t] as one (V, J) @ (B, J, 12) product, applied column by column
    blended = (weights @ transforms.reshape(batch_size, num_joints, 12)).reshape(batch_size, -1, 3, 4)
    vertices = blended[..., 3]
    for column in range(3):
        vertices = torch.addcmul(vertices, blended[..., column], corrected[..., column : column + 1])
    return vertices, posed_joints
