"""Predictions of trained GANE checkpoints on a whole cached dataset, for comparing two training runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import default_collate

from augane.train.checkpoint import load_gane_checkpoint
from augane.train.dataset import CachedShardDataset


def predict_with_checkpoints(
    config: Mapping[str, Any], cache_root: Path, checkpoints: Sequence[Path]
) -> tuple[dict[str, Any], list[dict[str, Tensor]]]:
    """Every sample of the config's datasets as one batch, and each checkpoint's ``exp``/``pose``/``cam`` on it."""
    dataset = CachedShardDataset.from_config(config, "all", cache_root=cache_root)
    batch = default_collate(dataset.__getitems__(list(range(len(dataset)))))
    predictions = []
    with torch.no_grad():
        for path in checkpoints:
            gane, _ = load_gane_checkpoint(path)
            predictions.append(gane(batch["afg"], batch["deca_feature"], batch["deca_params"]))
    return batch, predictions


def movement_from_deca(batch: Mapping[str, Any], prediction: Mapping[str, Tensor], name: str) -> float:
    """How far training moved parameter ``name`` from DECA's estimate: the largest absolute change."""
    return (prediction[name] - batch["deca_params"][name]).abs().max().item()
