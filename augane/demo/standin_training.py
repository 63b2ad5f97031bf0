"""What the two stand-in trainings share: settings, seeded batches, the cosine schedule, the provenance text.

Both stand-ins (:mod:`augane.demo.train_au_detector`, :mod:`augane.demo.train_deca`)
train from random initialisation on the synthetic training crops with AdamW
and a per-step cosine learning rate (as OpenGraphAU's training scripts do,
after a short warm-up), then score themselves on the held-out identities.
Neither uses colour jitter: the world already varies light, albedo and
background, and the DECA stand-in regresses light and albedo.
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

    epochs: int = 8
    batch_size: int = 16
    lr: float = 3e-3
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


#: Steps of linear warm-up before the cosine decay (training from random initialisation).
WARMUP_STEPS = 50


def cosine_lr(optimizer: torch.optim.Optimizer, peak: float, step: int, total: int) -> float:
    """Set the learning rate of ``step`` (0-based) of ``total``: ``peak * (1 + cos(pi * step / total)) / 2``,
    ramped up linearly over the first :data:`WARMUP_STEPS` steps."""
    lr = peak * (1.0 + math.cos(math.pi * step / max(total, 1))) / 2.0 * min(1.0, (step + 1) / WARMUP_STEPS)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def to_images(crops: np.ndarray) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)
