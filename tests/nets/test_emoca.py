"""EMOCA's coarse model loads from its PyTorch Lightning checkpoint layout strictly."""

from __future__ import annotations

import pytest
import torch

from augane.errors import CheckpointError
from augane.nets.emoca import load_emoca
from tests.nets.reference_layouts import deca_detail_generator, deca_encoder, linear, random_tensors


class ModelCheckpoint:
    """Stands for Lightning's callback class, which a .ckpt names as a dict key."""


def _lightning_checkpoint(depth: str, expression_outputs: int = 50, parallel: bool = False) -> dict:
    """A ``DecaModule`` checkpoint: coarse, expression and detail networks, FLAME buffers, Lightning state."""
    shapes = deca_encoder(depth, 236, prefix="deca.E_flame.")
    if parallel:
        shapes.update(deca_encoder(depth, 236, prefix="deca.E_expression.resnet."))
        width = 512 if depth in {"resnet18", "resnet34"} else 2048
        shapes.update(linear("deca.E_expression.layers.0", 1024, width))
        shapes.update(linear("deca.E_expression.layers.2", expression_outputs, 1024))
    else:
        shapes.update(deca_encoder(depth, expression_outputs, prefix="deca.E_expression."))
    shapes.update({"deca.E_detail.layers.2.weight": (128, 1024), "deca.E_detail.layers.2.bias": (128,)})
    shapes.update(deca_detail_generator(prefix="deca.D_detail."))
    shapes.update({"deca.flame.v_template": (5023, 3), "deca.flame.faces_tensor": (9976, 3)})
    state = random_tensors(shapes)
    if parallel:
        for key in list(state):
            if key.startswith("deca.E_flame."):
                state[key.replace("deca.E_flame.", "deca.E_expression.resnet.")] = state[key]
    return {
        "epoch": 4,
        "global_step": 9000,
        "pytorch-lightning_version": "1.4.9",
        "state_dict": state,
        "callbacks": {ModelCheckpoint: {"best_model_score": torch.tensor(0.1)}},
        "optimizer_states": [],
        "lr_schedulers": [],
    }


def test_released_clone_layout_loads_strictly(tmp_path):
    content = _lightning_checkpoint("resnet50")
    torch.save(content, tmp_path / "deca-epoch=04.ckpt")
    model = load_emoca(tmp_path / "deca-epoch=04.ckpt", backbone="resnet50")
    assert not model.parallel and model.pose_outputs == 0
    ignored = model.checkpoint_info.report.ignored
    assert {key.split(".")[1] for key in ignored} == {"E_detail", "D_detail", "flame"}
    loaded = model.state_dict()
    for key in ("E_expression.encoder.layer4.2.bn3.running_var", "E_flame.layers.2.weight", "E_expression.layers.2.bias"):
        torch.testing.assert_close(loaded[key], content["state_dict"][f"deca.{key}"])


def test_expression_and_jaw_pose_replace_deca_outputs(tmp_path):
    torch.save(_lightning_checkpoint("resnet18", expression_outputs=53), tmp_path / "emoca.ckpt")
    model = load_emoca(tmp_path / "emoca.ckpt")
    images = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        out = model(images)
        part = model(images[:1])
        code = model.E_expression(images).params
    assert out.exp.shape == (3, 50) and out.pose.shape == (3, 6)
    torch.testing.assert_close(out.exp, code[:, :50])
    torch.testing.assert_close(out.pose[:, 3:], code[:, 50:])
    torch.testing.assert_close(out.pose[:, :3], out.deca.split()["pose"][:, :3])
    params = out.params()
    torch.testing.assert_close(params[:, 150:200], out.exp)
    torch.testing.assert_close(params[:, :150], out.deca.params[:, :150])
    torch.testing.assert_close(part.exp, out.exp[:1], rtol=1e-5, atol=1e-5)


def test_parallel_layout_uses_deca_feature(tmp_path):
    torch.save(_lightning_checkpoint("resnet18", parallel=True), tmp_path / "parallel.ckpt")
    model = load_emoca(tmp_path / "parallel.ckpt")
    assert model.parallel
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
        torch.testing.assert_close(out.exp, model.E_expression(out.deca.feature))


def test_renamed_or_reshaped_key_is_named(tmp_path):
    content = _lightning_checkpoint("resnet18")
    state = content["state_dict"]
    state["deca.E_expression.encoder.layer3.1.bn2.beta"] = state.pop("deca.E_expression.encoder.layer3.1.bn2.bias")
    torch.save(content, tmp_path / "renamed.ckpt")
    with pytest.raises(CheckpointError, match=r"missing: E_expression\.encoder\.layer3\.1\.bn2\.bias[\s\S]*unexpected: E_expression\.encoder\.layer3\.1\.bn2\.beta"):
        load_emoca(tmp_path / "renamed.ckpt")
    content = _lightning_checkpoint("resnet18")
    content["state_dict"]["deca.E_expression.layers.2.w"] = content["state_dict"].pop("deca.E_expression.layers.2.weight")
    torch.save(content, tmp_path / "no_regressor.ckpt")
    with pytest.raises(CheckpointError, match=r"lacks the regressor deca\.E_expression\.layers\.0\.weight / deca\.E_expression\.layers\.2\.weight"):
        load_emoca(tmp_path / "no_regressor.ckpt")
    content = _lightning_checkpoint("resnet18")
    content["state_dict"]["deca.E_flame.encoder.bn1.weight"] = torch.ones(32)
    torch.save(content, tmp_path / "reshaped.ckpt")
    with pytest.raises(CheckpointError, match=r"E_flame\.encoder\.bn1\.weight \(file \(32,\), network \(64,\)\)"):
        load_emoca(tmp_path / "reshaped.ckpt")


def test_a_deca_file_is_not_taken_for_emoca(tmp_path):
    torch.save({"state_dict": random_tensors(deca_encoder("resnet18", 236, prefix="deca.E_flame."))}, tmp_path / "x.ckpt")
    with pytest.raises(CheckpointError, match=r"not an EMOCA checkpoint.*'deca\.E_expression\.\*'"):
        load_emoca(tmp_path / "x.ckpt")
