"""What the two stand-in trainings share: settings, seeded batches, the cosine schedule, the provenance text.

Both stand-ins (:mod:`augane.demo.train_au_detector`, :mod:`augane.demo.train_deca`)
train from random initialisation on the synthetic training crops with AdamW
and a per-step cosine learning rate (as OpenGraphAU's training scripts do),
then score themselves on the held-out identities.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from augane.errors import ConfigError

#: The text written into every stand-in checkpoint and score file.
STAND_IN_PROVENANCE = (
    "stand-in trained on the synthetic demo world (AUGANE demo face model renders); "
    "not a pretrained network: its outputs mean nothing on real faces"
)


@dataclass(frozen=True)
class TrainingSettings:
    """One stand-in's training (``demo.detectors.au_detector`` or ``demo.detectors.deca``).

    Attributes:
        epochs: passes over the training crops.
        batch_size: crops per step.
        lr: peak learning rate (AdamW; cosine decay to 0 over all steps).
        weight_decay: AdamW's decoupled weight decay.
    """

    epochs: int = 4
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 5e-4


@dataclass(frozen=True)
class DetectorData:
    """``demo.detectors``: which datasets the stand-ins learn from and are scored on."""

    train_dataset: str
    heldout_dataset: str
    label_threshold: int = 2
    seed: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DetectorData:
        section = config["demo"]["detectors"]
        datasets = config.get("datasets", {})
        for key in ("train_dataset", "heldout_dataset"):
            if section[key] not in datasets:
                raise ConfigError(
                    f"demo.detectors.{key}: {section[key]!r} is not a dataset of the config (known: {sorted(datasets)})"
                )
        return cls(section["train_dataset"], section["heldout_dataset"], int(section["label_threshold"]),
                   int(config.get("seed", 0)))


def training_settings(config: Mapping[str, Any], network: str) -> TrainingSettings:
    """The :class:`TrainingSettings` of ``demo.detectors.<network>``."""
    section = config["demo"]["detectors"][network]
    return TrainingSettings(int(section["epochs"]), int(section["batch_size"]), float(section["lr"]),
                            float(section["weight_decay"]))


def batches(count: int, batch_size: int, epoch: int, seed: int) -> Iterator[np.ndarray]:
    """Shuffled index batches of one epoch (seeded by ``seed`` and ``epoch``); the last short batch is dropped
    unless it is the only one (BatchNorm needs more than one sample)."""
    order = np.random.default_rng([seed, epoch]).permutation(count)
    full = max(1, count // batch_size) if count > 1 else 0
    for start in range(full):
        yield order[start * batch_size:(start + 1) * batch_size]


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Batches :func:`batches` yields per epoch."""
    return max(1, count // batch_size) if count > 1 else 0


def cosine_lr(optimizer: torch.optim.Optimizer, peak: float, step: int, total: int) -> float:
    """Set the learning rate of ``step`` (0-based) of ``total``: ``peak * (1 + cos(pi * step / total)) / 2``."""
    lr = peak * (1.0 + math.cos(math.pi * step / max(total, 1))) / 2.0
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def to_images(crops: np.ndarray) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)


def colour_jitter(images: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Random brightness, contrast and saturation factors in ``[1 - strength, 1 + strength]`` per image
    (torchvision's ColorJitter without hue), on (B, 3, H, W) in [0, 1]."""
    if strength <= 0:
        return images
    batch = images.shape[0]

    def factors() -> torch.Tensor:
        return (1.0 + (torch.rand(batch, 1, 1, 1, generator=generator) * 2.0 - 1.0) * strength).to(images.dtype)

    images = images * factors()
    grey = (0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]).unsqueeze(1)
    images = (images - grey.mean(dim=(2, 3), keepdim=True)) * factors() + grey.mean(dim=(2, 3), keepdim=True)
    grey = (0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]).unsqueeze(1)
    images = (images - grey) * factors() + grey
    return images.clamp(0.0, 1.0)
