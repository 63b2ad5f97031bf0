"""The hand-written ResNets have torchvision's layout, parameter counts and outputs."""

from __future__ import annotations

import pytest
import torch

from augane.nets.resnet import ResNet, infer_resnet_depth, resnet_feature_dim
from tests.nets.reference_layouts import torchvision_resnet

#: Parameter counts of torchvision's ImageNet models (with the 1000-class fc), as published.
TORCHVISION_PARAMETERS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160}


@pytest.mark.parametrize("depth", sorted(TORCHVISION_PARAMETERS))
def test_keys_shapes_and_parameter_count_match_torchvision(depth):
    model = ResNet(depth)
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert shapes == torchvision_resnet(depth)
    with_fc = ResNet(depth, num_classes=1000)
    assert sum(p.numel() for p in with_fc.parameters()) == TORCHVISION_PARAMETERS[depth]
    assert infer_resnet_depth(model.state_dict()) == depth


def test_outputs_feature_map_pooled_vector_and_tokens():
    torch.manual_seed(0)
    model = ResNet("resnet18").eval()
    images = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        out = model(images)
    assert out.feature_map.shape == (2, resnet_feature_dim("resnet18"), 3, 4)
    torch.testing.assert_close(out.pooled, out.feature_map.mean(dim=(2, 3)))
    tokens = out.tokens()
    assert tokens.shape == (2, 12, 512)
    torch.testing.assert_close(tokens[:, 5], out.feature_map[:, :, 1, 1])  # row-major: token 5 = (y 1, x 1)


def test_eval_outputs_are_deterministic_and_batch_independent():
    torch.manual_seed(0)
    model = ResNet("resnet18").eval()
    images = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        full = model(images).pooled
        again = model(images).pooled
        part = model(images[1:3]).pooled
    torch.testing.assert_close(full, again, rtol=0, atol=0)
    torch.testing.assert_close(full[1:3], part, rtol=1e-5, atol=1e-6)


def test_unknown_layouts_are_refused():
    with pytest.raises(ValueError, match="unknown ResNet depth"):
        ResNet("resnet152")
    shapes = torchvision_resnet("resnet18")
    del_keys = [key for key in shapes if key.startswith("layer3.1.")]
    state = {key: torch.zeros(()) for key in shapes if key not in del_keys}
    with pytest.raises(ValueError, match=r"\[2, 2, 1, 2\] basic blocks"):
        infer_resnet_depth(state)
