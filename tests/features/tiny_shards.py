"""Tiny preprocess stores (written here, following ARCHITECTURE.md's contract) and tiny networks in release formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from augane.config import validate_config
from augane.io.shards import ArraySpec, write_store
from augane.nets.deca import DecaCoarseEncoder
from augane.nets.emoca import EmocaCoarse
from augane.nets.mefarg import MEFARG
from augane.nets.release_format import save_au_detector_checkpoint, save_deca_checkpoint, save_emoca_checkpoint
from augane.preprocess.status import Status, status_codes

CROP = 64


def photo_crops(photo: np.ndarray, count: int, size: int = CROP) -> np.ndarray:
    """(count, size, size, 3) uint8 crops of a real photo: shifted windows, downsampled."""
    crops = []
    for index in range(count):
        offset = 16 * index
        window = photo[offset:offset + 256, offset:offset + 256]
        crops.append(window[:: 256 // size, :: 256 // size][:size, :size])
    return np.ascontiguousarray(np.stack(crops))


def write_preprocess_store(path: Path, crops: np.ndarray, statuses: list[Status], sample_ids: list[str]) -> Path:
    """A preprocess.zarr as the preprocess stage writes it (black crops and NaN landmarks where no face)."""
    count, size = crops.shape[0], crops.shape[1]
    ok = np.array([status == Status.OK for status in statuses])
    crops = crops.copy()
    crops[~ok] = 0
    landmarks = np.where(ok[:, None, None], 20.0, np.nan).astype(np.float32)
    arrays = {
        "image": ArraySpec(crops, ("sample", "y", "x", "channel")),
        "landmarks_mp": ArraySpec(np.repeat(landmarks, 3, axis=2)[:, :1].repeat(478, axis=1), ("sample", "point", "coord")),
        "landmarks": ArraySpec(np.repeat(landmarks, 2, axis=2).repeat(105, axis=1), ("sample", "point", "coord")),
        "landmarks_ndc": ArraySpec(np.repeat(landmarks, 2, axis=2).repeat(105, axis=1) / size, ("sample", "point", "coord")),
        "transform": ArraySpec(np.tile(np.eye(2, 3), (count, 1, 1)), ("sample", "row", "column")),
        "source_size": ArraySpec(np.full((count, 2), 256, dtype=np.int32), ("sample", "axis")),
        "confidence": ArraySpec(ok.astype(np.float32) * 0.9, ("sample",)),
        "face_count": ArraySpec(ok.astype(np.int16), ("sample",)),
        "status": ArraySpec(np.array([int(status) for status in statuses], dtype=np.uint8), ("sample",)),
    }
    attributes = {"stage": "preprocess", "sample_ids": sample_ids, "status_codes": status_codes(), "config_digest": "test"}
    return write_store(path, arrays, attributes)


def tiny_config(folder: Path, emoca: bool = False, seed: int = 0, **features: Any) -> dict[str, Any]:
    """A validated config whose resources are small ResNet-18 networks saved in their release formats."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    deca = save_deca_checkpoint(DecaCoarseEncoder("resnet18", hidden=64), folder / "deca_model.tar")
    detector = save_au_detector_checkpoint(MEFARG("opengraphau", "anfl", "resnet18", channels=32), folder / "au.pth")
    resources: dict[str, Any] = {
        "deca": {"checkpoint": str(deca), "backbone": "resnet18", "input_size": CROP},
        "au_detector": {"checkpoint": str(detector), "backbone": "resnet18", "resize": 72, "input_size": CROP},
    }
    if emoca:
        path = save_emoca_checkpoint(EmocaCoarse("resnet18", hidden=64, expression_outputs=53), folder / "emoca.ckpt")
        resources["emoca"] = {"checkpoint": str(path), "backbone": "resnet18"}
    config = {
        "device": "cpu",
        "resources": resources,
        "datasets": {"tiny": {"type": "images", "path": str(folder)}},
        "features": {"batch_size": 2, **features},
    }
    return validate_config(config)
