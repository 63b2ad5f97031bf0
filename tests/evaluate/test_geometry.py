"""Ground-truth errors for the synthetic world: vertex error in mm, landmark NME, gt column gathering."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from augane.errors import DataError
from augane.evaluate.geometry import (
    OUTER_EYE_CORNERS_105,
    ground_truth_columns,
    landmark_nme,
    summarise_errors,
    validate_errors,
    vertex_error_mm,
)


@pytest.fixture
def mesh() -> np.ndarray:
    """(50, 3) random points of face size (about 0.2 m across)."""
    return np.random.default_rng(1).uniform(-0.1, 0.1, size=(50, 3))


def test_vertex_error_of_a_1mm_shift_is_1mm(mesh):
    shifted = mesh + np.array([0.001, 0.0, 0.0])
    assert vertex_error_mm(shifted, mesh) == pytest.approx([1.0])
    assert vertex_error_mm(shifted, mesh, alignment="translation") == pytest.approx([0.0], abs=1e-9)


def test_rigid_alignment_removes_rotation_but_not_expression(mesh):
    rotated = Rotation.from_euler("xyz", [10, -20, 5], degrees=True).apply(mesh) + 0.05
    assert vertex_error_mm(rotated, mesh, alignment="none")[0] > 10.0
    assert vertex_error_mm(rotated, mesh, alignment="rigid") == pytest.approx([0.0], abs=1e-6)
    deformed = mesh.copy()
    deformed[:10, 1] += 0.002  # 2 mm on 10 of 50 vertices
    moved = Rotation.from_euler("z", 30, degrees=True).apply(deformed)
    aligned_error = vertex_error_mm(moved, mesh, alignment="rigid")[0]
    assert aligned_error > 0.1  # the expression change survives alignment
    assert aligned_error == pytest.approx(vertex_error_mm(deformed, mesh, alignment="rigid")[0], rel=1e-6)


def test_vertex_error_is_per_sample_with_subset_and_nan(mesh):
    batch = np.stack([mesh + [0, 0, 0.003], mesh, mesh])
    batch[2, 0, 0] = np.nan
    errors = vertex_error_mm(batch, np.stack([mesh] * 3))
    assert errors[:2] == pytest.approx([3.0, 0.0])
    assert np.isnan(errors[2])
    shifted = mesh.copy()
    shifted[:5] += [0.004, 0, 0]
    assert vertex_error_mm(shifted, mesh, vertices=range(5)) == pytest.approx([4.0])


def test_vertex_error_checks_shapes(mesh):
    with pytest.raises(DataError, match="differ in shape"):
        vertex_error_mm(mesh[:10], mesh)
    with pytest.raises(DataError, match=r"shape \(N, P, 3\)"):
        vertex_error_mm(mesh[:, :2], mesh[:, :2])
    with pytest.raises(ValueError, match="alignment"):
        vertex_error_mm(mesh, mesh, alignment="similarity")


def test_landmark_nme_interocular_on_the_105_layout():
    truth = np.zeros((105, 2))
    right, left = OUTER_EYE_CORNERS_105
    truth[right], truth[left] = [40.0, 50.0], [140.0, 50.0]  # inter-ocular distance 100 px
    predicted = truth + [3.0, 4.0]  # every landmark 5 px off
    assert landmark_nme(predicted, truth) == pytest.approx([0.05])


def test_landmark_nme_bbox_and_custom_corners():
    truth = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 25.0], [0.0, 25.0]])  # sqrt(100 * 25) = 50
    predicted = truth + [0.0, 5.0]
    assert landmark_nme(predicted, truth, normalisation="bbox") == pytest.approx([0.1])
    assert landmark_nme(predicted, truth, eye_corners=(0, 1)) == pytest.approx([0.05])
    with pytest.raises(DataError, match="needs eye_corners"):
        landmark_nme(predicted, truth)


def test_landmark_nme_of_degenerate_or_missing_truth_is_nan():
    truth = np.zeros((2, 4, 2))
    truth[1] = [[0, 0], [10, 0], [10, 10], [0, 10]]
    predicted = truth.copy()
    predicted[1, 0, 0] = np.nan
    assert np.isnan(landmark_nme(predicted, truth, normalisation="bbox")).all()


def test_ground_truth_columns_are_gathered_in_order():
    table = pd.DataFrame({"gt_exp_1": [2.0], "gt_exp_0": [1.0], "gt_expression_0": [9.0], "AU1": [0]})
    assert ground_truth_columns(table, "exp").tolist() == [[1.0, 2.0]]
    with pytest.raises(DataError, match="no ground-truth columns gt_pose_"):
        ground_truth_columns(table, "pose")
    with pytest.raises(DataError, match="not numbered"):
        ground_truth_columns(pd.DataFrame({"gt_exp_0": [1.0], "gt_exp_2": [1.0]}), "exp")


def test_error_summary_per_method():
    errors = pd.DataFrame(
        {
            "subject": ["SN001"] * 4,
            "frame": [0, 1, 0, 1],
            "method": ["augane", "augane", "deca", "deca"],
            "vertex_error_mm": [1.0, 3.0, 2.0, np.nan],
            "landmark_nme": [0.01, 0.03, 0.02, 0.04],
        }
    )
    summary = summarise_errors(errors)
    assert summary.loc["augane", "vertex_error_mm mean"] == pytest.approx(2.0)
    assert summary.loc["deca", "landmark_nme median"] == pytest.approx(0.03)
    assert summary["frames"].to_dict() == {"augane": 2, "deca": 1}
    with pytest.raises(DataError, match="unknown method"):
        validate_errors(errors.assign(method="smirk"))
    with pytest.raises(DataError, match="no numeric error column"):
        validate_errors(errors[["subject", "frame", "method"]])
