"""Rotation and skinning maths against independent references (scipy, naive loops)."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from augane.flame.lbs import (
    axis_angle_to_matrix,
    blend_shapes,
    linear_blend_skinning,
    rigid_transforms,
    yaw_angle,
)


def test_rodrigues_matches_scipy_for_all_angle_ranges():
    rng = np.random.default_rng(0)
    axes = rng.normal(size=(200, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([np.zeros(10), 10.0 ** rng.uniform(-9, -3, 40), rng.uniform(0, math.pi, 150)])
    vectors = axes * angles[:, None]
    expected = Rotation.from_rotvec(vectors).as_matrix()
    got = axis_angle_to_matrix(torch.tensor(vectors)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)
    got32 = axis_angle_to_matrix(torch.tensor(vectors, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(got32, expected, atol=1e-6)


def test_rodrigues_gradient_is_finite_and_correct_at_zero():
    vector = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    matrix = axis_angle_to_matrix(vector)
    # d R / d r_x at zero is skew(e_x): entry (2, 1) = +1, (1, 2) = -1.
    (matrix[0, 2, 1] - matrix[0, 1, 2]).backward()
    np.testing.assert_allclose(vector.grad.numpy(), [[2.0, 0.0, 0.0]])
    tiny = (torch.randn(4, 3, dtype=torch.float64) * 1e-5).requires_grad_(True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (tiny,))


def test_yaw_angle_of_pure_yaw_and_direction():
    for angle in (-0.6, -0.1, 0.0, 0.3, 1.2):
        rotation = axis_angle_to_matrix(torch.tensor([[0.0, angle, 0.0]], dtype=torch.float64))
        assert math.isclose(float(yaw_angle(rotation)), angle, abs_tol=1e-12)
        # a positive yaw turns the face (looking at +z) towards +x
        nose = rotation[0] @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
        assert math.copysign(1.0, float(nose[0])) == math.copysign(1.0, angle) or angle == 0.0


def test_blend_shapes_is_the_weighted_sum():
    rng = np.random.default_rng(1)
    coefficients = rng.normal(size=(3, 5))
    directions = rng.normal(size=(7, 3, 5))
    expected = np.einsum("bk,vck->bvc", coefficients, directions)
    got = blend_shapes(torch.tensor(coefficients), torch.tensor(directions)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_rigid_transforms_against_forward_kinematics():
    """Each transform maps a point attached to a joint like composing parent rotations about rest joints."""
    rng = np.random.default_rng(2)
    parents = (-1, 0, 1, 1, 1)
    joints = rng.normal(size=(1, 5, 3))
    rotvecs = rng.normal(scale=0.4, size=(5, 3))
    rotations = Rotation.from_rotvec(rotvecs).as_matrix()
    posed, transforms = rigid_transforms(torch.tensor(rotations[None]), torch.tensor(joints), parents)
    point = rng.normal(size=3)
    for j in range(5):
        # walk up the chain: apply the joint's rotation about its rest position, then its parents'.
        chain = []
        k = j
        while k >= 0:
            chain.append(k)
            k = parents[k]
        expected = point.copy()
        for k in chain:
            expected = rotations[k] @ (expected - joints[0, k]) + joints[0, k]
        got = transforms[0, j, :, :3].numpy() @ point + transforms[0, j, :, 3].numpy()
        np.testing.assert_allclose(got, expected, atol=1e-12)
        np.testing.assert_allclose(
            posed[0, j].numpy(), transforms[0, j, :, :3].numpy() @ joints[0, j] + transforms[0, j, :, 3].numpy(),
            atol=1e-12,
        )


def _forward_kinematics(point, joint, rotations, joints, parents):
    """Rotate ``point`` about joint ``joint``'s rest position, then about each ancestor's."""
    k = joint
    while k >= 0:
        point = rotations[k] @ (point - joints[k]) + joints[k]
        k = parents[k]
    return point


def test_skinning_vertices_bound_to_one_joint_follow_it_rigidly():
    rng = np.random.default_rng(3)
    parents = (-1, 0, 1, 1, 1)
    template = rng.normal(size=(6, 3))
    regressor = np.zeros((5, 6))
    regressor[np.arange(5), np.arange(5)] = 1.0  # joint j sits on vertex j
    weights = np.zeros((6, 5))
    weights[0, 2] = weights[1, 0] = weights[2, 4] = weights[3, 1] = weights[4, 3] = 1.0
    weights[5, [1, 2]] = 0.5
    rotations = Rotation.from_rotvec(rng.normal(scale=0.5, size=(5, 3))).as_matrix()
    vertices, _ = linear_blend_skinning(
        torch.zeros(1, 2, dtype=torch.float64), torch.tensor(rotations[None]), torch.tensor(template),
        torch.zeros(6, 3, 2, dtype=torch.float64), torch.zeros(36, 18, dtype=torch.float64),
        torch.tensor(regressor), parents, torch.tensor(weights),
    )
    joints = template[:5]
    for v, j in ((0, 2), (1, 0), (2, 4), (3, 1), (4, 3)):
        expected = _forward_kinematics(template[v], j, rotations, joints, parents)
        np.testing.assert_allclose(vertices[0, v].numpy(), expected, atol=1e-12)
    blended = 0.5 * (_forward_kinematics(template[5], 1, rotations, joints, parents)
                     + _forward_kinematics(template[5], 2, rotations, joints, parents))
    np.testing.assert_allclose(vertices[0, 5].numpy(), blended, atol=1e-12)
