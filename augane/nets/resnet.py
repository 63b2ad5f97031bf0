"""ResNet-18/34/50/101 backbones in plain PyTorch, with torchvision's parameter names.

Written by hand because torchvision cannot be installed next to the pinned
torch here (and timm needs torchvision). The module tree mirrors
torchvision's ``ResNet`` (``conv1``, ``bn1``, ``layer1`` .. ``layer4`` of
``BasicBlock``/``Bottleneck`` with ``downsample.0``/``downsample.1``, optional
``fc``), the "v1.5" variant with the stride on the 3x3 convolution of a
bottleneck: exactly the layout of the backbones inside DECA (``E_flame.encoder``),
EMOCA and ME-GraphAU/OpenGraphAU, so their state dicts load unchanged.

Nothing here downloads weights: a freshly built backbone is randomly
initialised (He init for convolutions, unit BatchNorm), and trained values
only ever come from a checkpoint the user brings.

The forward pass returns both the last feature map and its global average.
DECA pools with ``AvgPool2d(7)``, which equals the global average at its
224-pixel input (7x7 map); the adaptive global average used here also works
for the smaller inputs of the demo world.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

#: Blocks per stage of each supported depth (He et al. 2016, Table 1).
RESNET_LAYOUTS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
}


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 convolutions with a residual connection (ResNet-50/101)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


@dataclass
class BackboneOutput:
    """What a backbone returns.

    Attributes:
        feature_map: (B, C, h, w) output of ``layer4`` (C = 512 for ResNet-18/34,
            2048 for ResNet-50/101; h = w = 7 at a 224-pixel input).
        pooled: (B, C) global average of ``feature_map``.
    """

    feature_map: torch.Tensor
    pooled: torch.Tensor

    def tokens(self) -> torch.Tensor:
        """The feature map as (B, h*w, C) tokens in row-major order (ME-GraphAU's view)."""
        batch, channels = self.feature_map.shape[:2]
        return self.feature_map.reshape(batch, channels, -1).transpose(1, 2)


class ResNet(nn.Module):
    """A torchvision-compatible ResNet trunk.

    Args:
        depth: one of :data:`RESNET_LAYOUTS` (``"resnet18"`` .. ``"resnet101"``).
        num_classes: size of an ``fc`` classifier on the pooled vector; ``None``
            (the default, as in DECA and ME-GraphAU) builds no ``fc``.
    Input: (B, 3, H, W) images, normalised as the checkpoint expects.
    """

    def __init__(self, depth: str, num_classes: int | None = None):
        super().__init__()
        if depth not in RESNET_LAYOUTS:
            raise ValueError(f"unknown ResNet depth {depth!r}; expected one of {sorted(RESNET_LAYOUTS)}")
        kind, blocks = RESNET_LAYOUTS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.depth = depth
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = 64
        stages = []
        for index, (width, count) in enumerate(zip((64, 128, 256, 512), blocks)):
            stride = 1 if index == 0 else 2
            stage, channels = _make_stage(block, channels, width, count, stride)
            stages.append(stage)
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = channels
        self.fc = nn.Linear(channels, num_classes) if num_classes is not None else None
        _initialise(self)

    def forward(self, images: torch.Tensor) -> BackboneOutput:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return BackboneOutput(feature_map=x, pooled=x.mean(dim=(2, 3)))


def _make_stage(block: type[nn.Module], in_channels: int, width: int, count: int, stride: int) -> tuple[nn.Sequential, int]:
    out_channels = width * block.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )
    layers = [block(in_channels, width, stride, downsample)]
    layers += [block(out_channels, width) for _ in range(count - 1)]
    return nn.Sequential(*layers), out_channels


def _initialise(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def resnet_feature_dim(depth: str) -> int:
    """Channels of the last feature map of a ResNet depth (512 or 2048)."""
    if depth not in RESNET_LAYOUTS:
        raise ValueError(f"unknown ResNet depth {depth!r}; expected one of {sorted(RESNET_LAYOUTS)}")
    return 512 if RESNET_LAYOUTS[depth][0] == "basic" else 2048


def infer_resnet_depth(state_dict: dict[str, torch.Tensor], prefix: str = "") -> str:
    """The ResNet depth whose layout a state dict holds under ``prefix``.

    Counts the blocks of each stage (``{prefix}layerK.{i}.``) and checks for
    bottleneck convolutions (``conv3``).

    Raises:
        ValueError: when the keys match no supported depth.
    """
    counts = []
    for stage in range(1, 5):
        marker = f"{prefix}layer{stage}."
        indices = {key[len(marker):].split(".", 1)[0] for key in state_dict if key.startswith(marker)}
        counts.append(len({i for i in indices if i.isdigit()}))
    bottleneck = any(key.startswith(f"{prefix}layer1.0.conv3.") for key in state_dict)
    kind = "bottleneck" if bottleneck else "basic"
    for depth, layout in RESNET_LAYOUTS.items():
        if layout == (kind, tuple(counts)):
            return depth
    raise ValueError(
        f"keys under {prefix!r} hold a ResNet with {counts} {kind} blocks per stage, "
        f"which is none of {sorted(RESNET_LAYOUTS)}"
    )
