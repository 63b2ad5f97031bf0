"""FlameLayer against an independent implementation: smplx's FLAME on the same random files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from augane.flame.io import write_flame_model, write_landmark_embedding, write_mediapipe_embedding
from augane.flame.layer import FlameLayer

from .random_model import NUM_VERTICES

smplx = pytest.importorskip("smplx")

N_SHAPE, N_EXP, BATCH = 20, 10, 6


def _smplx_dynamic_table(table: np.ndarray) -> np.ndarray:
    """Our (DECA's) contour table re-ordered for smplx's convention.

    DECA bins the head yaw ``a`` as ``a`` (0..39) or ``39 - a`` (a < 0) and looks
    through neck and root; smplx bins ``-a`` the same way, through the root
    only. With a zero neck pose both pick the same row after this permutation.
    """
    permuted = np.empty_like(table)
    for ours in range(79):
        theirs = 0 if ours == 0 else (ours + 39 if ours <= 39 else ours - 39)
        permuted[theirs] = table[ours]
    return permuted


@pytest.fixture
def smplx_files(tmp_path, model, landmark_embedding):
    """The model as smplx expects it: FLAME_NEUTRAL.pkl plus its static and dynamic landmark files."""
    with open(tmp_path / "FLAME_NEUTRAL.pkl", "wb") as handle:
        pickle.dump(model.to_dict(), handle)
    with open(tmp_path / "flame_static_embedding.pkl", "wb") as handle:
        pickle.dump({"lmk_face_idx": landmark_embedding.static_faces,
                     "lmk_b_coords": landmark_embedding.static_bary}, handle)
    np.save(tmp_path / "flame_dynamic_embedding.npy", {
        "lmk_face_idx": _smplx_dynamic_table(landmark_embedding.dynamic_faces),
        "lmk_b_coords": _smplx_dynamic_table(landmark_embedding.dynamic_bary),
    }, allow_pickle=True)
    return tmp_path


def _random_parameters(generator: torch.Generator, dtype: torch.dtype, neck: bool) -> dict[str, torch.Tensor]:
    def normal(*shape, scale=1.0):
        return torch.randn(*shape, generator=generator, dtype=dtype) * scale

    return {
        "shape": normal(BATCH, N_SHAPE),
        "expression": normal(BATCH, N_EXP),
        "pose": normal(BATCH, 6, scale=0.5),
        "neck_pose": normal(BATCH, 3, scale=0.3) if neck else torch.zeros(BATCH, 3, dtype=dtype),
        "eye_pose": normal(BATCH, 6, scale=0.3),
    }


def _smplx_output(flame, params):
    return flame(
        betas=params["shape"],
        expression=params["expression"],
        global_orient=params["pose"][:, :3],
        jaw_pose=params["pose"][:, 3:],
        neck_pose=params["neck_pose"],
        leye_pose=params["eye_pose"][:, :3],
        reye_pose=params["eye_pose"][:, 3:],
        transl=torch.zeros(BATCH, 3, dtype=params["shape"].dtype),
    )


@pytest.mark.parametrize("neck", [False, True])
def test_vertices_joints_and_landmarks_match_smplx(smplx_files, model, landmark_embedding, neck):
    layer = FlameLayer(model, n_shape=N_SHAPE, n_exp=N_EXP, landmark_embedding=landmark_embedding)
    flame = smplx.FLAME(str(smplx_files), num_betas=N_SHAPE, num_expression_coeffs=N_EXP,
                        use_face_contour=True, batch_size=BATCH)
    generator = torch.Generator().manual_seed(3)
    for _ in range(3):
        params = _random_parameters(generator, torch.float32, neck)
        ours = layer(**params)
        with torch.no_grad():
            theirs = _smplx_output(flame, params)
        torch.testing.assert_close(ours.vertices, theirs.vertices, atol=1e-5, rtol=0)
        torch.testing.assert_close(ours.joints, theirs.joints[:, :5], atol=1e-5, rtol=0)
        # smplx appends the 51 static landmarks, then the 17 contour points, after the 5 joints.
        torch.testing.assert_close(ours.landmarks68[:, 17:], theirs.joints[:, 5:56], atol=1e-5, rtol=0)
        if not neck:  # smplx's contour ignores the neck rotation; DECA's (ours) includes it
            torch.testing.assert_close(ours.landmarks68[:, :17], theirs.joints[:, 56:73], atol=1e-5, rtol=0)


def test_float64_matches_float32(model, landmark_embedding, mediapipe_embedding):
    layer64 = FlameLayer(model, n_shape=N_SHAPE, n_exp=N_EXP, landmark_embedding=landmark_embedding,
                         mediapipe_embedding=mediapipe_embedding, dtype=torch.float64)
    params = _random_parameters(torch.Generator().manual_seed(0), torch.float64, neck=True)
    out64 = layer64(**params)
    assert out64.vertices.dtype == torch.float64
    out32 = layer64.to(torch.float32)(**{k: v.float() for k, v in params.items()})
    assert out32.vertices.dtype == torch.float32
    torch.testing.assert_close(out32.vertices.double(), out64.vertices, atol=1e-5, rtol=0)
    torch.testing.assert_close(out32.landmarks105.double(), out64.landmarks105, atol=1e-5, rtol=0)


def test_identity_pose_returns_template_and_embedded_points(model, mediapipe_embedding):
    layer = FlameLayer(model, n_shape=N_SHAPE, n_exp=N_EXP, mediapipe_embedding=mediapipe_embedding,
                       dtype=torch.float64)
    zeros = torch.zeros(2, N_SHAPE + N_EXP + 6, dtype=torch.float64)
    out = layer(zeros[:, :N_SHAPE], zeros[:, N_SHAPE:N_SHAPE + N_EXP], zeros[:, -6:])
    template = torch.tensor(model.v_template)
    torch.testing.assert_close(out.vertices[0], template)
    corners = template[torch.tensor(model.faces)[torch.tensor(mediapipe_embedding.faces)]]
    expected = (corners * torch.tensor(mediapipe_embedding.bary)[..., None]).sum(1)
    torch.testing.assert_close(out.landmarks105[1], expected)
    assert out.landmarks68 is None


def test_expression_uses_the_expression_block(model):
    """Expression k moves vertices along shapedirs column (num_shape + k), FLAME's 300 + k."""
    layer = FlameLayer(model, n_shape=N_SHAPE, n_exp=N_EXP, dtype=torch.float64)
    expression = torch.zeros(1, N_EXP, dtype=torch.float64)
    expression[0, 4] = 1.5
    out = layer(torch.zeros(1, N_SHAPE, dtype=torch.float64), expression, torch.zeros(1, 6, dtype=torch.float64))
    # With zero pose, only the joint positions move, and the skinning is the identity.
    expected = model.v_template + 1.5 * model.shapedirs[:, :, 304]
    np.testing.assert_allclose(out.vertices[0].numpy(), expected, atol=1e-12)


def test_files_round_trip_into_the_layer(tmp_path, model, landmark_embedding, mediapipe_embedding):
    write_flame_model(tmp_path / "model.pkl", model)
    write_landmark_embedding(tmp_path / "landmark_embedding.npy", landmark_embedding)
    write_mediapipe_embedding(tmp_path / "mp.npz", mediapipe_embedding)
    layer = FlameLayer.from_files(tmp_path / "model.pkl", tmp_path / "landmark_embedding.npy", tmp_path / "mp.npz",
                                  n_shape=N_SHAPE, n_exp=N_EXP)
    direct = FlameLayer(model, n_shape=N_SHAPE, n_exp=N_EXP, landmark_embedding=landmark_embedding,
                        mediapipe_embedding=mediapipe_embedding)
    params = _random_parameters(torch.Generator().manual_seed(5), torch.float32, neck=True)
    a, b = layer(**params), direct(**params)
    torch.testing.assert_close(a.vertices, b.vertices)
    torch.testing.assert_close(a.landmarks68, b.landmarks68)
    torch.testing.assert_close(a.landmarks105, b.landmarks105)
    assert a.vertices.shape == (BATCH, NUM_VERTICES, 3)


def test_gradients_flow_to_every_parameter(model, landmark_embedding):
    layer = FlameLayer(model, n_shape=N_SHAPE, n_exp=N_EXP, landmark_embedding=landmark_embedding)
    params = _random_parameters(torch.Generator().manual_seed(1), torch.float32, neck=True)
    params["pose"] = torch.zeros(BATCH, 6)  # gradient at the identity must be finite too
    for value in params.values():
        value.requires_grad_(True)
    out = layer(**params)
    (out.vertices.square().sum() + out.landmarks68.sum()).backward()
    for name, value in params.items():
        assert value.grad is not None and torch.isfinite(value.grad).all(), name
    assert params["pose"].grad.abs().sum() > 0


def test_bad_parameter_shapes_are_named(model):
    layer = FlameLayer(model, n_shape=N_SHAPE, n_exp=N_EXP)
    with pytest.raises(ValueError, match="expression must have shape"):
        layer(torch.zeros(2, N_SHAPE), torch.zeros(2, N_EXP + 1), torch.zeros(2, 6))
    with pytest.raises(ValueError, match="pose must have shape"):
        layer(torch.zeros(2, N_SHAPE), torch.zeros(2, N_EXP), torch.zeros(2, 3))


def test_too_many_components_is_an_asset_error(model):
    from augane.errors import AssetError

    with pytest.raises(AssetError, match="301 shape components requested, the model has 300"):
        FlameLayer(model, n_shape=301)
    with pytest.raises(AssetError, match="101 expression components"):
        FlameLayer(model, n_exp=101)


@pytest.mark.cuda
def test_cuda_matches_cpu(model, landmark_embedding, mediapipe_embedding):
    layer = FlameLayer(model, n_shape=N_SHAPE, n_exp=N_EXP, landmark_embedding=landmark_embedding,
                       mediapipe_embedding=mediapipe_embedding)
    params = _random_parameters(torch.Generator().manual_seed(2), torch.float32, neck=True)
    cpu = layer(**params)
    gpu = layer.to("cuda")(**{k: v.cuda() for k, v in params.items()})
    torch.testing.assert_close(gpu.vertices.cpu(), cpu.vertices, atol=1e-5, rtol=0)
    torch.testing.assert_close(gpu.landmarks68.cpu(), cpu.landmarks68, atol=1e-5, rtol=0)
    torch.testing.assert_close(gpu.landmarks105.cpu(), cpu.landmarks105, atol=1e-5, rtol=0)
