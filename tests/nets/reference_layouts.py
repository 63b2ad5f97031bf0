"""Key names and shapes of the released checkpoints, spelled out from the reference architectures.

Written independently of :mod:`augane.nets` (from torchvision's ResNet, DECA's
``ResnetEncoder``/``Generator``, EMOCA's ``DecaModule`` and ME-GraphAU's /
OpenGraphAU's ``MEFARG``), so that a test checkpoint built from these layouts
checks the loaders against the releases rather than against themselves.
"""

from __future__ import annotations

import torch

Shapes = dict[str, tuple[int, ...]]

_RESNETS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
}


def batchnorm(prefix: str, channels: int) -> Shapes:
    return {
        f"{prefix}.weight": (channels,),
        f"{prefix}.bias": (channels,),
        f"{prefix}.running_mean": (channels,),
        f"{prefix}.running_var": (channels,),
        f"{prefix}.num_batches_tracked": (),
    }


def linear(prefix: str, out_features: int, in_features: int, bias: bool = True) -> Shapes:
    shapes = {f"{prefix}.weight": (out_features, in_features)}
    if bias:
        shapes[f"{prefix}.bias"] = (out_features,)
    return shapes


def torchvision_resnet(depth: str, prefix: str = "") -> Shapes:
    """torchvision ``resnetXX().state_dict()`` without ``fc``."""
    kind, counts = _RESNETS[depth]
    shapes = {f"{prefix}conv1.weight": (64, 3, 7, 7), **batchnorm(f"{prefix}bn1", 64)}
    inplanes = 64
    for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), counts), start=1):
        for index in range(count):
            block = f"{prefix}layer{stage}.{index}"
            stride = 2 if stage > 1 and index == 0 else 1
            if kind == "basic":
                out = planes
                shapes[f"{block}.conv1.weight"] = (planes, inplanes, 3, 3)
                shapes.update(batchnorm(f"{block}.bn1", planes))
                shapes[f"{block}.conv2.weight"] = (planes, planes, 3, 3)
                shapes.update(batchnorm(f"{block}.bn2", planes))
            else:
                out = planes * 4
                shapes[f"{block}.conv1.weight"] = (planes, inplanes, 1, 1)
                shapes.update(batchnorm(f"{block}.bn1", planes))
                shapes[f"{block}.conv2.weight"] = (planes, planes, 3, 3)
                shapes.update(batchnorm(f"{block}.bn2", planes))
                shapes[f"{block}.conv3.weight"] = (out, planes, 1, 1)
                shapes.update(batchnorm(f"{block}.bn3", out))
            if index == 0 and (stride != 1 or inplanes != out):
                shapes[f"{block}.downsample.0.weight"] = (out, inplanes, 1, 1)
                shapes.update(batchnorm(f"{block}.downsample.1", out))
            inplanes = out
    return shapes


def feature_dim(depth: str) -> int:
    return 512 if _RESNETS[depth][0] == "basic" else 2048


def deca_encoder(depth: str, outputs: int, prefix: str = "") -> Shapes:
    """DECA's ``ResnetEncoder``: ``encoder.*`` + ``layers.0`` (Linear D -> 1024) + ``layers.2`` (Linear 1024 -> outputs)."""
    return {
        **torchvision_resnet(depth, f"{prefix}encoder."),
        **linear(f"{prefix}layers.0", 1024, feature_dim(depth)),
        **linear(f"{prefix}layers.2", outputs, 1024),
    }


def deca_detail_generator(prefix: str = "") -> Shapes:
    """DECA's ``Generator`` (``D_detail``): latent 128 detail + 50 exp + 3 jaw."""
    shapes = linear(f"{prefix}l1.0", 128 * 8 * 8, 181)
    shapes.update(batchnorm(f"{prefix}conv_blocks.0", 128))
    for conv, norm, out, inp in ((2, 3, 128, 128), (6, 7, 64, 128), (10, 11, 64, 64), (14, 15, 32, 64), (18, 19, 16, 32)):
        shapes[f"{prefix}conv_blocks.{conv}.weight"] = (out, inp, 3, 3)
        shapes[f"{prefix}conv_blocks.{conv}.bias"] = (out,)
        shapes.update(batchnorm(f"{prefix}conv_blocks.{norm}", out))
    shapes[f"{prefix}conv_blocks.21.weight"] = (1, 16, 3, 3)
    shapes[f"{prefix}conv_blocks.21.bias"] = (1,)
    return shapes


def linear_block(prefix: str, out_features: int, in_features: int) -> Shapes:
    return {**linear(f"{prefix}.fc", out_features, in_features), **batchnorm(f"{prefix}.bn", out_features)}


def _edge_extractor(prefix: str, channels: int, nodes: int) -> Shapes:
    shapes: Shapes = {}
    for attention in ("FAM", "ARM"):
        shapes.update(linear(f"{prefix}.{attention}.linear_q", channels // 2, channels))
        shapes.update(linear(f"{prefix}.{attention}.linear_k", channels // 2, channels))
        shapes.update(linear(f"{prefix}.{attention}.linear_v", channels, channels))
    shapes.update(linear(f"{prefix}.edge_proj", channels, channels))
    shapes.update(batchnorm(f"{prefix}.bn", nodes * nodes))
    return shapes


def mefarg(family: str, nodes: int, head: str, depth: str, subs: int = 14) -> Shapes:
    """ME-GraphAU (``family="megraphau"``) / OpenGraphAU (``"opengraphau"``) ``MEFARG`` with a ResNet backbone."""
    width = feature_dim(depth)
    channels = width // 4
    shapes = {**torchvision_resnet(depth, "backbone."), **linear_block("global_linear", channels, width)}
    blocks = "class_linears" if family == "megraphau" else "main_class_linears"
    for index in range(nodes):
        shapes.update(linear_block(f"head.{blocks}.{index}", channels, channels))
    if head == "anfl":
        shapes.update(linear("head.gnn.U", channels, channels))
        shapes.update(linear("head.gnn.V", channels, channels))
        shapes.update(batchnorm("head.gnn.bnv", nodes))
    else:
        shapes.update(_edge_extractor("head.edge_extractor", channels, nodes))
        if family == "megraphau":
            for layer in (1, 2):
                for name in "UVABE":
                    shapes.update(linear(f"head.gnn.{name}{layer}", channels, channels, bias=False))
                shapes.update(batchnorm(f"head.gnn.bnv{layer}", nodes))
                shapes.update(batchnorm(f"head.gnn.bne{layer}", nodes * nodes))
        else:
            for layer in (0, 1):
                for name in "UVABE":
                    shapes.update(linear(f"head.gnn.graph_layers.{layer}.{name}", channels, channels, bias=False))
                shapes.update(batchnorm(f"head.gnn.graph_layers.{layer}.bnv", nodes))
                shapes.update(batchnorm(f"head.gnn.graph_layers.{layer}.bne", nodes * nodes))
    if family == "megraphau":
        shapes["head.sc"] = (nodes, channels)
        if head == "mefl":
            shapes.update(linear("head.edge_fc", 4, channels))
    else:
        shapes["head.main_sc"] = (nodes, channels)
        shapes["head.sub_sc"] = (subs, channels)
    return shapes


def random_tensors(shapes: Shapes, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random values of the given shapes (positive running variances, int64 batch counters)."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            tensors[key] = torch.tensor(1000, dtype=torch.long)
        elif key.endswith("running_var"):
            tensors[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            tensors[key] = torch.randn(shape, generator=generator) * 0.05
    return tensors
