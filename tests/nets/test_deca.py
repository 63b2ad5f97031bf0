"""DECA's coarse encoder loads deca_model.tar strictly and splits its 236 parameters by name."""

from __future__ import annotations

import pytest
import torch

from augane.errors import CheckpointError
from augane.nets.deca import DECA_PARAM_LAYOUT, DecaCoarseEncoder, load_deca, split_deca_params
from tests.nets.reference_layouts import deca_detail_generator, deca_encoder, random_tensors


def _release(depth: str, seed: int = 0) -> dict:
    """deca_model.tar as released: E_flame (236 outputs), E_detail (128 outputs), D_detail, training state."""
    return {
        "E_flame": random_tensors(deca_encoder(depth, 236), seed),
        "E_detail": random_tensors(deca_encoder(depth, 128), seed + 1),
        "D_detail": random_tensors(deca_detail_generator(), seed + 2),
        "global_step": 120000,
    }


def test_released_resnet50_layout_loads_strictly_and_ignores_the_detail_model(tmp_path):
    content = _release("resnet50")
    torch.save(content, tmp_path / "deca_model.tar")
    encoder = load_deca(tmp_path / "deca_model.tar", backbone="resnet50")
    assert encoder.feature_dim == 2048 and not encoder.training
    assert sorted(encoder.checkpoint_info.ignored_entries) == ["D_detail", "E_detail", "global_step"]
    assert len(encoder.checkpoint_info.sha256) == 64
    loaded = encoder.state_dict()
    for key, value in content["E_flame"].items():
        torch.testing.assert_close(loaded[key], value)


def test_resnet18_stand_in_outputs_feature_and_named_parameters(tmp_path):
    torch.save(_release("resnet18"), tmp_path / "deca.tar")
    encoder = load_deca(tmp_path / "deca.tar")
    assert encoder.backbone == "resnet18"
    images = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        out = encoder(images)
        part = encoder(images[1:])
    assert out.feature.shape == (3, 512) and out.params.shape == (3, 236)
    torch.testing.assert_close(out.params[1:], part.params, rtol=1e-5, atol=1e-5)
    parts = out.split()
    assert {name: tuple(value.shape[1:]) for name, value in parts.items()} == {
        "shape": (100,), "tex": (50,), "exp": (50,), "pose": (6,), "cam": (3,), "light": (9, 3)
    }


def test_split_follows_deca_order():
    params = torch.arange(236.0)[None]
    parts = split_deca_params(params)
    assert list(parts) == list(DECA_PARAM_LAYOUT)
    assert parts["tex"][0, 0] == 100 and parts["exp"][0, 0] == 150 and parts["pose"][0, 0] == 200
    assert parts["cam"][0].tolist() == [206.0, 207.0, 208.0]
    assert parts["light"][0, 1].tolist() == [212.0, 213.0, 214.0]  # SH coefficient 1, RGB
    with pytest.raises(ValueError, match="236"):
        split_deca_params(torch.zeros(1, 235))


def test_renamed_or_reshaped_key_is_named(tmp_path):
    content = _release("resnet18")
    content["E_flame"]["layers.3.weight"] = content["E_flame"].pop("layers.2.weight")
    torch.save(content, tmp_path / "renamed.tar")
    with pytest.raises(CheckpointError, match=r"lacks the regressor"):
        load_deca(tmp_path / "renamed.tar")
    content = _release("resnet18")
    content["E_flame"]["encoder.layer2.0.bn1.running_var"] = torch.ones(64)
    torch.save(content, tmp_path / "reshaped.tar")
    with pytest.raises(CheckpointError, match=r"encoder\.layer2\.0\.bn1\.running_var \(file \(64,\), network \(128,\)\)"):
        load_deca(tmp_path / "reshaped.tar")
    content = _release("resnet18")
    content["E_flame"]["encoder.layer1.0.conv_one.weight"] = content["E_flame"].pop("encoder.layer1.0.conv1.weight")
    torch.save(content, tmp_path / "renamed_conv.tar")
    with pytest.raises(CheckpointError, match=r"missing: encoder\.layer1\.0\.conv1\.weight[\s\S]*unexpected: encoder\.layer1\.0\.conv_one\.weight"):
        load_deca(tmp_path / "renamed_conv.tar")


def test_wrong_files_get_clear_errors(tmp_path):
    torch.save(_release("resnet18"), tmp_path / "deca.tar")
    with pytest.raises(CheckpointError, match="holds a resnet18 trunk but the config declares resnet50"):
        load_deca(tmp_path / "deca.tar", backbone="resnet50")
    torch.save({"state_dict": {}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match=r"not a DECA checkpoint: expected an 'E_flame' entry"):
        load_deca(tmp_path / "other.pth")
    bad = _release("resnet18")
    bad["E_flame"].update(random_tensors({"layers.2.weight": (200, 1024), "layers.2.bias": (200,)}))
    torch.save(bad, tmp_path / "bad.tar")
    with pytest.raises(CheckpointError, match="regresses 200 values"):
        load_deca(tmp_path / "bad.tar")


def test_encoder_is_usable_without_a_checkpoint_for_training_stand_ins():
    encoder = DecaCoarseEncoder("resnet18", hidden=64)
    out = encoder(torch.rand(2, 3, 32, 32))
    out.params.sum().backward()
    assert encoder.encoder.conv1.weight.grad is not None
