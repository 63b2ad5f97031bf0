"""The training step through FLAME, the real renderer and a frozen ResNet-18 detector: gradients, values, overfitting."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from torch.utils.data import default_collate

from augane.errors import DataError
from augane.features.networks import frozen_au_detector_from_config
from augane.model import GANE
from augane.train.dataset import CachedShardDataset, move_to
from augane.train.face import FaceDecoder
from augane.train.objective import TERM_NAMES, AuObjective, LossSettings, TrainingStep, deca_estimate


def build(config, cache, batch_size=4):
    dataset = CachedShardDataset.from_config(config, "all", cache_root=cache)
    layout = dataset.layout
    face = FaceDecoder.from_config(config, layout.image_size)
    detector = frozen_au_detector_from_config(config["resources"])
    objective = AuObjective(face, detector, layout, LossSettings.from_config(config), bf16=False)
    torch.manual_seed(0)
    gane = GANE.from_config(config["model"], layout.num_aus, layout.node_dim, layout.global_dim)
    batch = default_collate(dataset.__getitems__(list(range(batch_size))))
    return TrainingStep(gane, objective), batch


def test_gradients_reach_every_gane_parameter_and_no_frozen_one(world):
    step, batch = build(*world)
    gane, detector = step.gane, step.objective.detector
    frozen = copy.deepcopy(detector.state_dict())
    face_buffers = copy.deepcopy(step.objective.face.state_dict())
    optimizer = torch.optim.Adam(gane.parameters(), lr=1e-3)
    step.train()
    assert not detector.training and not detector.detector.training  # BatchNorm statistics stay frozen
    for _ in range(2):  # the residual heads start at zero: the rest of GANE gets gradients from the second step
        optimizer.zero_grad()
        step(batch).total.backward()
        optimizer.step()
    for name, parameter in gane.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, f"no gradient reaches GANE's {name}"
    assert all(not p.requires_grad and p.grad is None for p in detector.parameters())
    assert not list(step.objective.parameters()) or all(not p.requires_grad for p in step.objective.parameters())
    for name, value in detector.state_dict().items():
        assert torch.equal(value, frozen[name]), f"the frozen detector's {name} changed"
    for name, value in step.objective.face.state_dict().items():
        assert torch.equal(value, face_buffers[name]), name


def test_full_step_renders_over_the_crop_and_gives_finite_terms(world):
    config, cache = world
    step, batch = build(config, cache)
    result = step(batch)
    assert set(result.terms) == set(TERM_NAMES)
    assert all(torch.isfinite(value) and value.ndim == 0 for value in result.terms.values())
    size = batch["image"].shape[-1]
    image = result.render.image
    assert image.shape == (4, 3, size, size) and 0 <= image.min() and image.max() <= 1
    smaller = deca_estimate(batch)
    smaller["cam"] = smaller["cam"] * torch.tensor([0.5, 1.0, 1.0])  # the face covers part of the crop only
    render = step.objective(smaller, batch).render
    mask = render.mask
    assert 0.1 < mask.mean() < 0.9
    torch.testing.assert_close(render.image * (1 - mask), batch["image"] * (1 - mask))  # composited over the input
    assert result.rendered_afg.shape == batch["afg"].shape
    assert result.landmarks.shape == (4, 105, 2)
    weights = config["losses"]["weights"]
    expected = sum(weights[name] * value for name, value in result.terms.items())
    torch.testing.assert_close(result.total, expected)


def test_gane_starts_at_deca_and_its_objective(world):
    step, batch = build(*world)
    step.eval()
    with torch.no_grad():
        ours, deca = step(batch), step.objective(deca_estimate(batch), batch)
    for name in TERM_NAMES:
        torch.testing.assert_close(ours.terms[name], deca.terms[name], rtol=1e-5, atol=1e-6)
    assert deca.terms["reg_camera"] == 0


def test_loss_on_the_true_face_is_lower_than_on_decas_estimate(world):
    """The tiny world's images are renders of the true parameters: the objective must prefer them."""
    step, batch = build(*world)
    truth = deca_estimate(batch)
    truth["exp"] = batch["gt_exp"]
    truth["pose"] = batch["gt_pose"]
    truth["cam"] = batch["gt_cam"]
    with torch.no_grad():
        true_terms = step.objective(truth, batch).terms
        deca_terms = step.objective(deca_estimate(batch), batch).terms
    for name in ("au_landmark", "au_relative", "au_feature"):
        assert true_terms[name] < 0.2 * deca_terms[name], name


def test_overfits_one_fixed_batch(world):
    """Total loss of one batch of 8 falls by more than 40 % within 30 steps. The tiny world's face covers
    the whole crop (no silhouette), so L_auFeat's gradient is trusted for the camera and head rotation too."""
    config, cache = world
    step, batch = build(config, cache, batch_size=8)
    step.objective.rigid_feature_gradients = True
    optimizer = torch.optim.Adam(step.gane.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        result = step(batch)
        result.total.backward()
        optimizer.step()
        losses.append(result.total.item())
    assert all(map(torch.isfinite, map(torch.tensor, losses)))
    assert min(losses[-5:]) < 0.6 * losses[0], losses


def test_zero_feature_weight_skips_the_render(world):
    config, cache = world
    config["losses"]["weights"]["au_feature"] = 0.0
    step, batch = build(config, cache)
    result = step(batch)
    assert result.render is None and "au_feature" not in result.terms
    assert step(batch, render=True).render is not None


def test_a_detector_other_than_the_caches_is_refused(world):
    config, cache = world
    dataset = CachedShardDataset.from_config(config, "all", cache_root=cache)
    face = FaceDecoder.from_config(config, dataset.layout.image_size)
    detector = frozen_au_detector_from_config(config["resources"])
    other = replace(dataset.layout, afg_aus=dataset.layout.afg_aus[:-1], node_dim=64)
    with pytest.raises(DataError, match=r"au_detector\.pth.*not the detector that cached.*AFG feature size 32 "
                                         r"instead of 64"):
        AuObjective(face, detector, other, LossSettings.from_config(config))


@pytest.mark.cuda
def test_cuda_step_with_bf16_matches_the_cpu_step(world):
    config, cache = world
    step, batch = build(config, cache)
    with torch.no_grad():
        expected = step(batch)
    device = torch.device("cuda")
    step.to(device)
    step.bf16 = step.objective.bf16 = True
    batch = move_to(batch, device)
    result = step(batch)
    result.total.backward()
    for name, value in expected.terms.items():
        torch.testing.assert_close(result.terms[name].cpu(), value, rtol=5e-2, atol=1e-3, msg=name)
    assert all(torch.isfinite(p.grad).all() for p in step.gane.parameters() if p.grad is not None)
    assert result.render.image.dtype == torch.float32 and result.landmarks.dtype == torch.float32


@pytest.mark.parametrize("rigid", [False, True])
def test_feature_loss_reaches_the_silhouette_moving_parameters_only_when_asked(world, rigid):
    step, batch = build(*world)
    step.objective.rigid_feature_gradients = rigid
    params = {name: value.clone().requires_grad_(True) for name, value in deca_estimate(batch).items()}
    step.objective(params, batch).terms["au_feature"].backward()
    assert params["exp"].grad.abs().sum() > 0 and params["pose"].grad[:, 3].abs().sum() > 0  # expression, opening
    camera = 0.0 if params["cam"].grad is None else params["cam"].grad.abs().sum()
    assert (camera + params["pose"].grad[:, :3].abs().sum() > 0) == rigid
    assert (params["pose"].grad[:, 4:].abs().sum() > 0) == rigid  # the jaw's sideways yaw and roll
