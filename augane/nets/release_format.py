"""Writing networks as checkpoints in their released file formats.

The demo world saves its trained stand-in detectors with these functions, and
``augane dev-weights --untrained`` saves randomly initialised ones, so every
consumer reads them through the very loaders that read the released files:

- DECA: ``{"E_flame": state_dict}`` (``deca_model.tar``; the release also has
  ``E_detail``/``D_detail``, which AUGANE never reads);
- EMOCA: a Lightning-style ``{"state_dict": {"deca.E_flame.*", "deca.E_expression.*"}, "epoch", "global_step"}``;
- MEFARG: ``{"epoch", "state_dict"}`` (ME-GraphAU/OpenGraphAU).

A file written with ``untrained=True`` carries :data:`UNTRAINED_MARKER`; the
loaders then warn that its weights are random, and the feature stores record it.
A file written with ``provenance=`` carries that text under
:data:`PROVENANCE_ENTRY` (e.g. the demo world's "stand-in trained on the
synthetic demo world"); loaders report it as an ignored entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from augane.io.atomic import atomic_path
from augane.nets.checkpoint import UNTRAINED_MARKER
from augane.nets.deca import DecaCoarseEncoder
from augane.nets.emoca import EmocaCoarse
from augane.nets.mefarg import MEFARG


def _tensors(module: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {f"{prefix}{key}": value.detach().cpu().clone() for key, value in module.state_dict().items()}


#: Top-level entry holding a text that says where the weights come from.
PROVENANCE_ENTRY = "augane_provenance"


def _save(content: dict[str, Any], path: str | Path, untrained: bool, provenance: str | None = None) -> Path:
    if provenance:
        content[PROVENANCE_ENTRY] = provenance
    if untrained:
        content[UNTRAINED_MARKER] = "random initialisation written by `augane dev-weights --untrained`; NOT pretrained"
    path = Path(path)
    with atomic_path(path) as temporary:
        torch.save(content, temporary)
    return path


def save_deca_checkpoint(encoder: DecaCoarseEncoder, path: str | Path, *, untrained: bool = False,
                         provenance: str | None = None) -> Path:
    """Write DECA's coarse encoder as ``deca_model.tar`` does (``E_flame`` entry), atomically."""
    return _save({"E_flame": _tensors(encoder)}, path, untrained, provenance)


def save_emoca_checkpoint(model: EmocaCoarse, path: str | Path, *, epoch: int = 0, global_step: int = 0,
                          untrained: bool = False) -> Path:
    """Write EMOCA's coarse model in its Lightning checkpoint layout (``deca.`` prefix), atomically."""
    state = _tensors(model, prefix="deca.")
    if model.parallel:
        state.update(_tensors(model.E_flame, prefix="deca.E_expression.resnet."))
    return _save({"epoch": epoch, "global_step": global_step, "state_dict": state}, path, untrained)


def save_au_detector_checkpoint(detector: MEFARG, path: str | Path, *, epoch: int = 0, untrained: bool = False,
                                provenance: str | None = None) -> Path:
    """Write a MEFARG detector as ME-GraphAU/OpenGraphAU do (``{'epoch', 'state_dict'}``), atomically."""
    return _save({"epoch": epoch, "state_dict": _tensors(detector)}, path, untrained, provenance)
