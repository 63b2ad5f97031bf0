"""L_reg (eq. 8): expression and pose norms, camera deviation from DECA's camera."""

from __future__ import annotations

import pytest
import torch

from augane.losses import regularisation_terms


def test_hand_computed_terms():
    exp = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    pose = torch.full((2, 6), 0.1)
    cam = torch.tensor([[2.0, 0.1, 0.0], [1.0, 0.0, 0.0]])
    deca_cam = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    terms = regularisation_terms(exp, pose, cam, deca_cam)
    assert set(terms) == {"reg_expression", "reg_pose", "reg_camera"}
    assert terms["reg_expression"].item() == pytest.approx(5.0 / 2)
    assert terms["reg_pose"].item() == pytest.approx(0.06)
    # sample 0: relative scale change 1 -> 1; image shift s_DECA * 0.1 = 0.1 -> 0.01
    assert terms["reg_camera"].item() == pytest.approx(1.01 / 2)


def test_camera_term_is_in_image_units():
    deca_cam = torch.tensor([[8.0, 0.01, -0.02]])
    shifted = deca_cam + torch.tensor([[0.0, 0.005, 0.0]])  # 0.005 m at s = 8: 0.04 image units
    assert regularisation_terms(torch.zeros(1, 50), torch.zeros(1, 6), shifted, deca_cam)["reg_camera"].item() == (
        pytest.approx(0.04**2)
    )
    scaled = deca_cam * torch.tensor([[1.1, 1.0, 1.0]])
    assert regularisation_terms(torch.zeros(1, 50), torch.zeros(1, 6), scaled, deca_cam)["reg_camera"].item() == (
        pytest.approx(0.01)
    )


def test_zero_at_the_prior_and_gradients():
    cam = torch.tensor([[8.0, 0.01, -0.02]], requires_grad=True)
    exp = torch.zeros(1, 50, requires_grad=True)
    terms = regularisation_terms(exp, torch.zeros(1, 6), cam, cam.detach().clone())
    assert all(value.item() == 0.0 for value in terms.values())
    moved = torch.tensor([[9.0, 0.0, 0.0]], requires_grad=True)
    regularisation_terms(exp, torch.zeros(1, 6), moved, cam.detach())["reg_camera"].backward()
    assert moved.grad[0, 0] > 0


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        regularisation_terms(torch.zeros(1, 50), torch.zeros(1, 6), torch.zeros(1, 3), torch.zeros(2, 3))
