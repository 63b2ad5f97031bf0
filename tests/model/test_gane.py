"""GANE: shapes, initialisation at DECA's estimate, gradients, batch independence, overfitting a batch."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from augane.aus import OPENGRAPHAU_MAIN_AUS
from augane.config import validate_config
from augane.errors import ConfigError
from augane.flame.camera import project
from augane.losses import au_landmark_loss, au_relative_loss, regularisation_terms, weighted_total
from augane.model import GANE
from tests.losses.faces import astronaut_landmarks_105

NUM_AUS, NODE_DIM, GLOBAL_DIM = 5, 16, 24


def small_section(**changes) -> dict:
    section = validate_config({"model": {"transformer": {"layers": 2, "heads": 4, "feedforward": 32}}})["model"]
    for key, value in changes.items():
        if key in ("gat", "transformer", "jaw"):
            section[key].update(value)
        else:
            section[key] = value
    return section


def make_inputs(batch: int = 3, seed: int = 0, num_aus: int = NUM_AUS, node_dim: int = NODE_DIM):
    generator = torch.Generator().manual_seed(seed)
    afg = torch.randn(batch, num_aus, node_dim, generator=generator)
    feature = torch.rand(batch, GLOBAL_DIM, generator=generator) * 2
    deca = {
        "exp": torch.randn(batch, 50, generator=generator),
        "pose": torch.randn(batch, 6, generator=generator) * 0.1,
        "cam": torch.tensor([[8.0, 0.01, -0.02]]).repeat(batch, 1) + 0.1 * torch.rand(batch, 3, generator=generator),
    }
    return afg, feature, deca


def build(seed: int = 0, **changes) -> GANE:
    torch.manual_seed(seed)
    return GANE.from_config(small_section(**changes), NUM_AUS, NODE_DIM, GLOBAL_DIM)


@pytest.mark.parametrize("kind", ["gat", "gatv2"])
@pytest.mark.parametrize("node_dim", [8, 48])
def test_output_names_and_shapes_for_any_dimension(kind, node_dim):
    torch.manual_seed(0)
    model = GANE.from_config(small_section(gat={"kind": kind}), 7, node_dim, 40)
    afg, _, deca = make_inputs(num_aus=7, node_dim=node_dim)
    out = model(afg, torch.rand(3, 40), deca)
    assert {name: tuple(value.shape) for name, value in out.items()} == {"exp": (3, 50), "pose": (3, 6), "cam": (3, 3)}


def test_residual_mode_starts_exactly_at_decas_estimate():
    model = build(residual_on_deca=True, jaw={"opening_min": None, "side_max": None})
    afg, feature, deca = make_inputs()
    out = model(afg, feature, deca)
    for name in ("exp", "pose", "cam"):
        torch.testing.assert_close(out[name], deca[name], rtol=0, atol=0)
    with pytest.raises(ValueError, match="residual_on_deca"):
        model(afg, feature)


def test_residual_mode_starts_at_decas_estimate_with_the_jaw_in_range():
    model = build(residual_on_deca=True)
    afg, feature, deca = make_inputs()
    deca["pose"][:, 3:] = torch.tensor([[-0.05, 0.3, -0.1], [0.1, -0.25, 0.0], [0.0, 0.05, 0.4]])
    out = model(afg, feature, deca)
    expected = torch.tensor([[0.0, 0.2, -0.1], [0.1, -0.2, 0.0], [0.0, 0.05, 0.2]])
    torch.testing.assert_close(out["pose"][:, 3:], expected, rtol=0, atol=0)
    torch.testing.assert_close(out["pose"][:, :3], deca["pose"][:, :3], rtol=0, atol=0)
    for name in ("exp", "cam"):
        torch.testing.assert_close(out[name], deca[name], rtol=0, atol=0)


@pytest.mark.parametrize("residual", [True, False])
def test_predicted_jaw_stays_in_its_configured_range(residual):
    model = build(residual_on_deca=residual, jaw={"opening_min": 0.02, "side_max": 0.05})
    with torch.no_grad():
        model.heads["pose"].bias.copy_(torch.tensor([0.0, 0.0, 0.0, -30.0, 30.0, -30.0]))
    afg, feature, deca = make_inputs(batch=6)
    jaw = model(afg, feature, deca)["pose"][:, 3:]
    assert (jaw[:, 0] >= 0.02).all() and (jaw[:, 1:].abs() <= 0.05).all()
    torch.testing.assert_close(jaw, torch.tensor([[0.02, 0.05, -0.05]]).expand(6, 3))


def test_negative_jaw_side_limit_is_a_config_error():
    with pytest.raises(ConfigError, match="model.jaw.side_max"):
        build(jaw={"side_max": -0.1})


def test_plain_regression_ignores_deca():
    model = build(residual_on_deca=False).eval()
    afg, feature, deca = make_inputs()
    without = model(afg, feature)
    with_deca = model(afg, feature, deca)
    for name in without:
        torch.testing.assert_close(without[name], with_deca[name])
    assert not torch.allclose(without["exp"], deca["exp"])


def _trainable(model):
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def _scalar(out):
    return sum((value * torch.linspace(0.5, 1.5, value.shape[1])).sum() for value in out.values())


def test_gradients_reach_every_parameter_plain_mode():
    model = build(residual_on_deca=False)
    afg, feature, deca = make_inputs()
    _scalar(model(afg, feature, deca)).backward()
    for name, parameter in _trainable(model).items():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_gradients_reach_every_parameter_residual_mode_after_one_step():
    model = build(residual_on_deca=True)
    afg, feature, deca = make_inputs()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    _scalar(model(afg, feature, deca)).backward()
    heads = {name for name in _trainable(model) if name.startswith("heads.")}
    for name, parameter in _trainable(model).items():
        # Zero-initialised heads block the first backward pass; only they learn at step 0.
        assert (parameter.grad.abs().sum() > 0) == (name in heads), name
    optimiser.step()
    optimiser.zero_grad()
    _scalar(model(afg, feature, deca)).backward()
    for name, parameter in _trainable(model).items():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("self_loops", [True, False])
def test_batch_independence_in_eval_mode(self_loops):
    model = build(residual_on_deca=False, gat={"self_loops": self_loops}).eval()
    afg, feature, deca = make_inputs(batch=4)
    batched = model(afg, feature, deca)
    for i in range(4):
        single = model(afg[i : i + 1], feature[i : i + 1], {k: v[i : i + 1] for k, v in deca.items()})
        for name in batched:
            torch.testing.assert_close(batched[name][i : i + 1], single[name], atol=1e-5, rtol=1e-5)
    afg_changed = afg.clone()
    afg_changed[0] += torch.randn(afg.shape[1:], generator=torch.Generator().manual_seed(5))
    changed = model(afg_changed, feature, deca)
    torch.testing.assert_close(changed["exp"][1:], batched["exp"][1:], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(changed["exp"][0], batched["exp"][0])


def test_gat_kind_and_self_loops_change_the_model():
    afg, feature, deca = make_inputs()
    outputs = []
    for changes in ({"kind": "gat"}, {"kind": "gatv2"}, {"kind": "gatv2", "self_loops": False}):
        model = build(residual_on_deca=False, gat=changes).eval()
        outputs.append(model(afg, feature, deca)["exp"])
    assert not torch.allclose(outputs[0], outputs[1]) and not torch.allclose(outputs[1], outputs[2])


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="model.transformer.heads"):
        GANE.from_config(small_section(transformer={"heads": 5}), NUM_AUS, NODE_DIM, GLOBAL_DIM)
    with pytest.raises(ConfigError, match="model.gat.heads"):
        GANE.from_config(small_section(gat={"heads": 3}), NUM_AUS, NODE_DIM, GLOBAL_DIM)
    with pytest.raises(ConfigError, match="model.gat.kind"):
        GANE(NUM_AUS, NODE_DIM, GLOBAL_DIM, gat_kind="gcn")


def test_input_shape_errors():
    model = build()
    afg, feature, deca = make_inputs()
    with pytest.raises(ValueError, match=r"afg must be \(B, 5, 16\)"):
        model(afg[:, :4], feature, deca)
    with pytest.raises(ValueError, match="deca_feature"):
        model(afg, feature[:, :10], deca)
    with pytest.raises(ValueError, match="'cam'"):
        model(afg, feature, {**deca, "cam": deca["cam"][:, :2]})


def test_paper_sizes_from_default_config():
    model = GANE.from_config(validate_config({})["model"], len(OPENGRAPHAU_MAIN_AUS), 512, 2048)
    assert model.global_projection.weight.shape == (512, 2048)  # E of eq. 2 (applied as X_DECA E)
    assert model.global_projection.bias is None
    assert len(model.gat) == 2 and len(model.encoder.layers) == 4


def test_edge_cache_is_not_state_and_model_pickles():
    model = build()
    afg, feature, deca = make_inputs()
    model(afg, feature, deca)
    assert len(model.edges) == 1
    assert not any("edge" in key for key in model.state_dict())
    clone = pickle.loads(pickle.dumps(copy.deepcopy(model)))
    torch.testing.assert_close(clone.eval()(afg, feature, deca)["exp"], model.eval()(afg, feature, deca)["exp"])


def test_bf16_autocast_on_cpu_runs():
    model = build(residual_on_deca=False)
    afg, feature, deca = make_inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(afg, feature, deca)
    _scalar(out).float().backward()
    assert all(torch.isfinite(value.float()).all() for value in out.values())


@pytest.mark.cuda
def test_cuda_forward_backward_bf16():
    device = torch.device("cuda")
    model = build().to(device)
    afg, feature, deca = make_inputs()
    afg, feature = afg.to(device), feature.to(device)
    deca = {name: value.to(device) for name, value in deca.items()}
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(afg, feature, deca)
    assert out["exp"].dtype == torch.float32  # DECA's float32 estimate plus the offset
    _scalar(out).backward()
    assert model.global_projection.weight.grad is None or torch.isfinite(model.global_projection.weight.grad).all()


# --- overfitting one batch through a stand-in decoder -------------------------------------


class LinearFaceStandIn(torch.nn.Module):
    """A fixed, differentiable stand-in for FLAME: 105 landmarks linear in (exp, pose).

    The template is the astronaut's MediaPipe landmarks lifted to model space
    (so that camera (8, 0, 0) reproduces them); random fixed bases move the
    points by a few millimetres per unit of expression and per radian of pose.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        image = torch.tensor(astronaut_landmarks_105(), dtype=torch.float32)
        image = (image - image.mean(0)) / (image.std() * 3)  # face centred, about half the crop wide
        template = torch.cat([image[:, :1] / 8, -image[:, 1:] / 8, torch.zeros(105, 1)], dim=1)
        self.register_buffer("template", template)
        self.register_buffer("exp_basis", torch.randn(50, 105 * 3, generator=generator) * 0.0005)
        self.register_buffer("pose_basis", torch.randn(6, 105 * 3, generator=generator) * 0.005)

    def forward(self, exp: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        offsets = exp @ self.exp_basis + pose @ self.pose_basis
        return self.template + offsets.reshape(-1, 105, 3)


def test_overfits_one_batch_with_the_landmark_losses():
    torch.manual_seed(0)
    batch = 4
    decoder = LinearFaceStandIn()
    detector_aus = OPENGRAPHAU_MAIN_AUS
    generator = torch.Generator().manual_seed(1)
    truth = {
        "exp": torch.randn(batch, 50, generator=generator),
        "pose": torch.randn(batch, 6, generator=generator) * 0.1,
        "cam": torch.tensor([[8.0, 0.0, 0.0]])
        + torch.randn(batch, 3, generator=generator) * torch.tensor([0.2, 2e-3, 2e-3]),
    }
    target = project(decoder(truth["exp"], truth["pose"]), truth["cam"])[..., :2]
    deca = {  # a biased first estimate, as DECA's would be
        "exp": truth["exp"] * 0.3,
        "pose": truth["pose"] + 0.05,
        "cam": truth["cam"] * torch.tensor([1.05, 1.0, 1.0]),
    }
    afg = torch.randn(batch, len(detector_aus), 32, generator=generator)
    feature = torch.rand(batch, 64, generator=generator)
    au_prob = torch.rand(batch, len(detector_aus), generator=generator)
    section = validate_config({"model": {"transformer": {"layers": 2, "heads": 4, "feedforward": 64, "dropout": 0.0}}})
    model = GANE.from_config(section["model"], len(detector_aus), 32, 64)
    weights = {"au_landmark": 0.75, "au_relative": 0.25, "reg_expression": 1e-5, "reg_pose": 0.1, "reg_camera": 1.0}
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)

    def losses() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = model(afg, feature, deca)
        predicted = project(decoder(out["exp"], out["pose"]), out["cam"])[..., :2]
        terms = {
            **au_landmark_loss(predicted, target, au_prob, detector_aus),
            **au_relative_loss(predicted, target),
            **regularisation_terms(out["exp"], out["pose"], out["cam"], deca["cam"]),
        }
        return weighted_total(terms, weights), terms

    initial, initial_terms = losses()
    for _ in range(50):
        optimiser.zero_grad()
        loss, _ = losses()
        loss.backward()
        optimiser.step()
    final, final_terms = losses()
    assert final.item() < 0.3 * initial.item(), (initial.item(), final.item())
    for name in ("au_landmark", "au_relative"):
        assert final_terms[name].item() < 0.6 * initial_terms[name].item(), name
