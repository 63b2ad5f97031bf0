"""The networks of the feature stage, built from the ``resources:`` section of a config.

Other stages (training's AU feature loss, the evaluation's baselines) load
the same networks with the same settings through these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from augane.errors import ConfigError
from augane.nets.au_preprocess import FrozenAuDetector
from augane.nets.deca import DecaCoarseEncoder, load_deca
from augane.nets.emoca import EmocaCoarse, load_emoca
from augane.nets.mefarg import MEFARG, load_au_detector


@dataclass(frozen=True)
class AuDetectorSettings:
    """``resources.au_detector``: file, declared layout and preprocessing sizes."""

    checkpoint: str
    variant: str = "opengraphau"
    head: str = "anfl"
    backbone: str = "resnet50"
    resize: int = 256
    input_size: int = 224

    @classmethod
    def from_config(cls, resources: Mapping[str, Any]) -> AuDetectorSettings:
        section = dict(resources.get("au_detector", {}))
        if not section.get("checkpoint"):
            raise ConfigError("resources.au_detector.checkpoint is not set (the AU detector is required)")
        if section.get("input_size", 224) > section.get("resize", 256):
            raise ConfigError(
                f"resources.au_detector: input_size {section['input_size']} must not exceed resize {section['resize']} "
                "(the input is a centre crop of the resized image)"
            )
        keys = ("checkpoint", "variant", "head", "backbone", "resize", "input_size")
        return cls(**{key: section[key] for key in keys if key in section})


def load_au_detector_from_config(resources: Mapping[str, Any], device: str | torch.device = "cpu") -> MEFARG:
    """The AU detector of ``resources.au_detector`` on ``device`` (eval mode)."""
    settings = AuDetectorSettings.from_config(resources)
    detector = load_au_detector(settings.checkpoint, settings.variant, head=settings.head,
                                backbone=settings.backbone, map_location="cpu")
    return detector.to(device)


def frozen_au_detector_from_config(resources: Mapping[str, Any], device: str | torch.device = "cpu") -> FrozenAuDetector:
    """The AU detector of ``resources.au_detector`` wrapped for use inside a loss (frozen, eval mode,
    with its preprocessing at the configured sizes); input (B, 3, H, W) RGB in [0, 1]."""
    settings = AuDetectorSettings.from_config(resources)
    detector = load_au_detector_from_config(resources, device)
    return FrozenAuDetector(detector, resize=settings.resize, crop=settings.input_size)


def load_deca_from_config(resources: Mapping[str, Any], device: str | torch.device = "cpu") -> DecaCoarseEncoder:
    """DECA's coarse encoder of ``resources.deca`` on ``device`` (eval mode)."""
    section = resources.get("deca", {})
    if not section.get("checkpoint"):
        raise ConfigError("resources.deca.checkpoint is not set (DECA is required)")
    return load_deca(section["checkpoint"], backbone=section.get("backbone"), map_location="cpu").to(device)


def load_emoca_from_config(resources: Mapping[str, Any], device: str | torch.device = "cpu") -> EmocaCoarse | None:
    """EMOCA's coarse model of ``resources.emoca`` on ``device``, or ``None`` when no checkpoint is configured."""
    section = resources.get("emoca", {})
    if not section.get("checkpoint"):
        return None
    return load_emoca(section["checkpoint"], backbone=section.get("backbone"), map_location="cpu").to(device)


@dataclass
class FeatureNetworks:
    """Everything the feature stage runs.

    Attributes:
        au_detector: the MEFARG detector (eval mode).
        au_settings: its preprocessing sizes and declared layout.
        deca: DECA's coarse encoder (eval mode).
        deca_input_size: side of DECA's square input (``resources.deca.input_size``).
        emoca: EMOCA's coarse model, or ``None``.
    """

    au_detector: MEFARG
    au_settings: AuDetectorSettings
    deca: DecaCoarseEncoder
    deca_input_size: int
    emoca: EmocaCoarse | None = None

    def provenance(self) -> dict[str, Any]:
        """Checkpoint names, sha256 digests and layouts, JSON-ready."""
        detector = self.au_detector
        networks: dict[str, Any] = {
            "au_detector": {
                **detector.checkpoint_info.provenance(),
                "variant": detector.variant.name, "head": detector.graph_head, "backbone": detector.backbone_depth,
                "channels": detector.channels, "resize": self.au_settings.resize, "input_size": self.au_settings.input_size,
            },
            "deca": {**self.deca.checkpoint_info.provenance(), "backbone": self.deca.backbone,
                     "input_size": self.deca_input_size},
            "emoca": None,
        }
        if self.emoca is not None:
            networks["emoca"] = {**self.emoca.checkpoint_info.provenance(), "backbone": self.emoca.backbone,
                                 "layout": "parallel" if self.emoca.parallel else "clone",
                                 "pose_outputs": self.emoca.pose_outputs}
        return networks

    @property
    def untrained(self) -> bool:
        """Whether any network's weights come from ``augane dev-weights --untrained``."""
        modules = [self.au_detector, self.deca] + ([self.emoca] if self.emoca is not None else [])
        return any(module.checkpoint_info.untrained for module in modules)


def load_feature_networks(config: Mapping[str, Any], device: str | torch.device = "cpu") -> FeatureNetworks:
    """Load the AU detector, DECA and (when configured) EMOCA of a validated config onto ``device``."""
    resources = config.get("resources", {})
    return FeatureNetworks(
        au_detector=load_au_detector_from_config(resources, device),
        au_settings=AuDetectorSettings.from_config(resources),
        deca=load_deca_from_config(resources, device),
        deca_input_size=int(resources.get("deca", {}).get("input_size", 224)),
        emoca=load_emoca_from_config(resources, device),
    )
