"""L_auFeat (eq. 7): per-sample L2 norm over all N x d values, averaged over the batch."""

from __future__ import annotations

import pytest
import torch

from augane.losses import au_feature_loss


def test_hand_computed_value():
    cached = torch.zeros(2, 2, 2, dtype=torch.float16)
    rendered = torch.zeros(2, 2, 2)
    rendered[0, 0] = torch.tensor([3.0, 0.0])
    rendered[0, 1] = torch.tensor([0.0, 4.0])  # sample 0: ||(3, 0, 0, 4)|| = 5; sample 1: 0
    loss = au_feature_loss(cached, rendered)["au_feature"]
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(2.5)


def test_zero_when_equal_with_finite_gradient_and_no_gradient_into_the_cache():
    cached = torch.randn(3, 4, 5).requires_grad_(True)
    rendered = cached.detach().clone().requires_grad_(True)
    loss = au_feature_loss(cached, rendered)["au_feature"]
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(rendered.grad).all()
    assert cached.grad is None


def test_gradient_points_from_render_to_input():
    cached = torch.zeros(1, 1, 2)
    rendered = torch.tensor([[[3.0, 4.0]]], requires_grad=True)
    au_feature_loss(cached, rendered)["au_feature"].backward()
    torch.testing.assert_close(rendered.grad, torch.tensor([[[0.6, 0.8]]]))


def test_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(B, N, d\)"):
        au_feature_loss(torch.zeros(1, 27, 8), torch.zeros(1, 12, 8))
