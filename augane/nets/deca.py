"""DECA's coarse encoder ``E_flame``, loaded from ``deca_model.tar``.

``E_flame`` is a ResNet trunk (``encoder.*``, torchvision names, no ``fc``)
whose pooled feature goes through ``layers`` = Linear(D, 1024) -> ReLU ->
Linear(1024, 236). The pooled D-dimensional vector (2048 for the released
ResNet-50) is the paper's global feature X_DECA; the 236 outputs are FLAME
and rendering parameters in the order of :data:`DECA_PARAM_LAYOUT`.

Input: RGB in [0, 1], no mean/std normalisation, ``resources.deca.input_size``
pixels square (224 for the release) on DECA's face crop.

``deca_model.tar`` also holds the detail encoder ``E_detail`` and the detail
decoder ``D_detail``; AUGANE uses only the coarse model and reports those
parts as ignored. The backbone depth and the hidden width of ``layers`` are
read from the file, so the demo world's smaller stand-in (same format, a
ResNet-18 trunk) loads through the same path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from augane.errors import CheckpointError
from augane.nets.checkpoint import (
    CheckpointInfo,
    checkpoint_info,
    load_state_dict_strict,
    read_checkpoint,
)
from augane.nets.resnet import ResNet, infer_resnet_depth, resnet_feature_dim

#: DECA's parameter vector, in order: name -> size (236 in all).
DECA_PARAM_LAYOUT: dict[str, int] = {"shape": 100, "tex": 50, "exp": 50, "pose": 6, "cam": 3, "light": 27}

#: Length of DECA's parameter vector.
DECA_NUM_PARAMS: int = sum(DECA_PARAM_LAYOUT.values())

#: Width of the hidden layer of DECA's regressor.
DECA_HIDDEN: int = 1024

#: Entries of ``deca_model.tar`` that AUGANE does not use (detail model, training state).
DECA_IGNORED_ENTRIES: tuple[str, ...] = ("E_detail", "D_detail", "opt", "global_step")


def split_deca_params(params: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split (B, 236) DECA parameters by name.

    Returns:
        ``shape`` (B, 100), ``tex`` (B, 50), ``exp`` (B, 50), ``pose`` (B, 6:
        global axis-angle then jaw axis-angle, radians), ``cam`` (B, 3:
        ``s, tx, ty``), ``light`` (B, 9, 3: SH coefficients x RGB).
    """
    if params.shape[-1] != DECA_NUM_PARAMS:
        raise ValueError(f"DECA parameters must have {DECA_NUM_PARAMS} entries, got shape {tuple(params.shape)}")
    parts = dict(zip(DECA_PARAM_LAYOUT, torch.split(params, list(DECA_PARAM_LAYOUT.values()), dim=-1)))
    parts["light"] = parts["light"].reshape(*params.shape[:-1], 9, 3)
    return parts


@dataclass
class DecaOutput:
    """Output of :class:`DecaCoarseEncoder`.

    Attributes:
        feature: (B, D) pooled backbone feature (X_DECA; D = 2048 for ResNet-50).
        params: (B, 236) parameters in :data:`DECA_PARAM_LAYOUT` order.
    """

    feature: torch.Tensor
    params: torch.Tensor

    def split(self) -> dict[str, torch.Tensor]:
        """The parameters by name (see :func:`split_deca_params`)."""
        return split_deca_params(self.params)


class DecaCoarseEncoder(nn.Module):
    """DECA's ``E_flame``: ResNet trunk ``encoder`` + regressor ``layers``.

    Args:
        backbone: ResNet depth of ``encoder`` (``resnet50`` in the release).
        hidden: width of the regressor's hidden layer (1024 in the release).
        num_params: outputs of the regressor (236 for DECA's layout; EMOCA's
            expression encoder reuses this class with 50 or more).
    """

    def __init__(self, backbone: str = "resnet50", hidden: int = DECA_HIDDEN, num_params: int = DECA_NUM_PARAMS):
        super().__init__()
        self.encoder = ResNet(backbone)
        feature_dim = resnet_feature_dim(backbone)
        self.layers = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_params))
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.checkpoint_info: CheckpointInfo | None = None

    def forward(self, images: torch.Tensor) -> DecaOutput:
        """Encode (B, 3, S, S) RGB images in [0, 1] (no normalisation)."""
        feature = self.encoder(images).pooled
        return DecaOutput(feature=feature, params=self.layers(feature))


def encoder_dims(state_dict: Mapping[str, torch.Tensor], source: str, prefix: str = "") -> tuple[str, int, int]:
    """Backbone depth, hidden width and output count of an ``E_flame``-style state dict under ``prefix``.

    Raises:
        CheckpointError: when the keys are not a ResNet trunk plus a two-layer regressor.
    """
    stripped = {key.removeprefix("module."): value for key, value in state_dict.items()}
    try:
        depth = infer_resnet_depth(stripped, prefix=f"{prefix}encoder.")
    except ValueError as err:
        raise CheckpointError(f"checkpoint {source}: {err}") from err
    first, last = stripped.get(f"{prefix}layers.0.weight"), stripped.get(f"{prefix}layers.2.weight")
    if first is None or last is None or first.ndim != 2 or last.ndim != 2:
        raise CheckpointError(
            f"checkpoint {source} lacks the regressor {prefix}layers.0.weight / {prefix}layers.2.weight "
            "(Linear -> ReLU -> Linear) of a DECA-style encoder"
        )
    return depth, int(first.shape[0]), int(last.shape[0])


def check_backbone(expected: str | None, found: str, source: str) -> None:
    """Raise :class:`CheckpointError` when the config declares a backbone depth other than the file's."""
    if expected is not None and expected != found:
        raise CheckpointError(
            f"checkpoint {source} holds a {found} trunk but the config declares {expected}; "
            "set the backbone to match the file"
        )


def load_deca(path: str | Path, backbone: str | None = None, map_location: str | torch.device = "cpu") -> DecaCoarseEncoder:
    """Build DECA's coarse encoder from ``deca_model.tar`` (or a file in its format).

    Args:
        path: checkpoint with an ``E_flame`` state dict (``E_detail``, ``D_detail``,
            ``opt``, ``global_step`` are ignored and reported as such).
        backbone: the ResNet depth the config declares; ``None`` accepts the file's.
        map_location: where tensors are loaded.
    Returns:
        The encoder in eval mode, with :attr:`checkpoint_info` (path, sha256).
    Raises:
        CheckpointError: missing ``E_flame``, wrong output size, or any key/shape mismatch.
    """
    path = Path(path)
    content = read_checkpoint(path, map_location=map_location)
    if not isinstance(content, Mapping) or "E_flame" not in content:
        entries = sorted(map(str, content)) if isinstance(content, Mapping) else type(content).__name__
        raise CheckpointError(
            f"{path} is not a DECA checkpoint: expected an 'E_flame' entry (deca_model.tar layout), found {entries}"
        )
    state = content["E_flame"]
    depth, hidden, outputs = encoder_dims(state, f"{path}:E_flame")
    check_backbone(backbone, depth, f"{path}:E_flame")
    if outputs != DECA_NUM_PARAMS:
        raise CheckpointError(
            f"{path}:E_flame regresses {outputs} values but DECA's layout {DECA_PARAM_LAYOUT} has {DECA_NUM_PARAMS}"
        )
    encoder = DecaCoarseEncoder(depth, hidden=hidden)
    report = load_state_dict_strict(encoder, state, f"{path}:E_flame", network=f"DECA E_flame ({depth})")
    ignored = [name for name in content if name != "E_flame"]
    encoder.checkpoint_info = checkpoint_info(path, content, report, ignored)
    return encoder.eval()
