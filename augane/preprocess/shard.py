"""The preprocessing of one shard: every sample of the shard into one Zarr store, written whole.

Samples are read in manifest order (frames of a video in increasing order,
one decoder per video). A sample that cannot be read or has no usable face
gets a :class:`~augane.preprocess.status.Status`; the rest of the shard goes
on. The store holds exactly the arrays of the preprocess contract in
ARCHITECTURE.md.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import augane
from augane.config import digest
from augane.errors import ConfigError, DataError
from augane.flame.camera import pixels_to_normalised
from augane.io.images import read_image
from augane.io.manifest import manifest_info, read_manifest, shard_name
from augane.io.shards import ArraySpec, write_store
from augane.io.source_errors import SourceReadError
from augane.io.videos import VideoFrames
from augane.landmarks import MEDIAPIPE_105, NUM_LANDMARKS, NUM_MEDIAPIPE_POINTS, select_105
from augane.preprocess.crop import CropSettings
from augane.preprocess.faces import FaceCropper, FaceSample
from augane.preprocess.landmarkers import build_landmarker
from augane.preprocess.status import Status, status_codes

log = logging.getLogger(__name__)

#: Arrays of a preprocess store, in the order of the contract.
PREPROCESS_ARRAYS: tuple[str, ...] = (
    "image", "landmarks_mp", "landmarks", "landmarks_ndc", "transform", "source_size", "confidence", "face_count", "status",
)


def crop_settings(preprocess: Mapping[str, Any]) -> CropSettings:
    """The :class:`CropSettings` of a ``preprocess`` config section."""
    crop = preprocess.get("crop", {})
    return CropSettings(
        size=int(crop.get("size", 224)),
        box_scale=float(crop.get("box_scale", 1.1)),
        crop_scale=float(crop.get("crop_scale", 1.25)),
    )


def stage_digest(config: Mapping[str, Any], dataset: str) -> str:
    """Digest of everything that determines a dataset's preprocess stores."""
    return digest(
        {
            "preprocess": config.get("preprocess"),
            "dataset": config["datasets"][dataset],
            "mediapipe_task": config.get("resources", {}).get("mediapipe_task"),
        }
    )


class _ShardArrays:
    """The store's arrays for ``n`` samples, filled row by row."""

    def __init__(self, n: int, size: int):
        self.image = np.zeros((n, size, size, 3), np.uint8)
        self.landmarks_mp = np.full((n, NUM_MEDIAPIPE_POINTS, 3), np.nan, np.float32)
        self.transform = np.full((n, 2, 3), np.nan, np.float64)
        self.source_size = np.zeros((n, 2), np.int32)
        self.confidence = np.zeros(n, np.float32)
        self.face_count = np.zeros(n, np.int16)
        self.status = np.full(n, int(Status.FAILED), np.uint8)
        self.size = size

    def put(self, row: int, sample: FaceSample) -> None:
        self.status[row] = int(sample.status)
        self.source_size[row] = sample.source_size
        self.confidence[row] = sample.confidence
        self.face_count[row] = sample.face_count
        if sample.image is not None:
            self.image[row] = sample.image
            self.transform[row] = sample.transform
        if sample.mesh is not None:
            self.landmarks_mp[row] = sample.mesh

    def specs(self) -> dict[str, ArraySpec]:
        landmarks = select_105(self.landmarks_mp)[..., :2]
        ndc = pixels_to_normalised(landmarks, self.size).astype(np.float32)
        return {
            "image": ArraySpec(self.image, ("sample", "y", "x", "channel")),
            "landmarks_mp": ArraySpec(self.landmarks_mp, ("sample", "point", "coord")),
            "landmarks": ArraySpec(np.ascontiguousarray(landmarks), ("sample", "point", "coord")),
            "landmarks_ndc": ArraySpec(ndc, ("sample", "point", "coord")),
            "transform": ArraySpec(self.transform, ("sample", "row", "column")),
            "source_size": ArraySpec(self.source_size, ("sample", "axis")),
            "confidence": ArraySpec(self.confidence, ("sample",)),
            "face_count": ArraySpec(self.face_count, ("sample",)),
            "status": ArraySpec(self.status, ("sample",)),
        }


def _failed_status(error: SourceReadError) -> Status:
    return Status[error.kind.upper()]


def _source_groups(rows: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """Consecutive rows of the same source, in manifest order."""
    change = rows["source"].ne(rows["source"].shift()).cumsum()
    for _, group in rows.groupby(change, sort=False):
        yield str(group["source"].iloc[0]), group


class ShardProcessor:
    """Reads a shard's sources and runs :class:`FaceCropper` on each sample."""

    def __init__(self, cropper: FaceCropper, max_image_pixels: int):
        self.cropper = cropper
        self.max_image_pixels = max_image_pixels

    def _process(self, read, label: str) -> FaceSample:
        """Run ``read()`` then the cropper, turning every failure into a status."""
        try:
            rgb = read()
        except SourceReadError as err:
            log.warning("%s: %s", _failed_status(err).name.lower(), err)
            return FaceSample(_failed_status(err))
        try:
            return self.cropper.process(rgb)
        except Exception:
            log.exception("failed: unexpected error while preprocessing %s", label)
            return FaceSample(Status.FAILED, (rgb.shape[1], rgb.shape[0]))

    def _images(self, source: str, rows: pd.DataFrame, arrays: _ShardArrays) -> None:
        for row in rows["row"]:
            sample = self._process(lambda: read_image(source, self.max_image_pixels), source)
            arrays.put(int(row), sample)

    def _video(self, source: str, rows: pd.DataFrame, arrays: _ShardArrays) -> None:
        ordered = rows.sort_values("frame")
        try:
            video = VideoFrames(source)
        except SourceReadError as err:
            log.warning("%s: %s (%d samples)", _failed_status(err).name.lower(), err, len(ordered))
            for row in ordered["row"]:
                arrays.put(int(row), FaceSample(_failed_status(err)))
            return
        self.cropper.landmarker.reset()
        with video:
            for frame, row in zip(ordered["frame"], ordered["row"]):
                sample = self._process(lambda: video.read(int(frame)), f"{source} frame {frame}")
                arrays.put(int(row), sample)
        self.cropper.landmarker.reset()

    def run(self, rows: pd.DataFrame) -> _ShardArrays:
        """Process the manifest rows of one shard (``row`` must be 0..n-1)."""
        arrays = _ShardArrays(len(rows), self.cropper.crop.size)
        if sorted(rows["row"].tolist()) != list(range(len(rows))):
            raise DataError("manifest rows of a shard must be numbered 0..n-1")
        started, done = time.perf_counter(), 0
        for source, group in _source_groups(rows):
            if int(group["frame"].iloc[0]) < 0:
                self._images(source, group, arrays)
            else:
                self._video(source, group, arrays)
            done += len(group)
            log.debug("%d/%d samples (%.1f samples/s)", done, len(rows), done / max(time.perf_counter() - started, 1e-9))
        return arrays


def preprocess_shard(
    config: Mapping[str, Any], dataset: str, manifest_path: str | Path, shard: int, out: str | Path
) -> dict[str, int]:
    """Preprocess shard ``shard`` of ``dataset`` into the Zarr store ``out``.

    Args:
        config: the validated config.
        dataset: a key of ``config["datasets"]``.
        manifest_path: the dataset's manifest.
        shard: shard number.
        out: the store to write (``.../shard-XXXX/preprocess.zarr``).
    Returns:
        Samples per status name.
    """
    if dataset not in config.get("datasets", {}):
        raise ConfigError(f"datasets.{dataset}: no such dataset in the config (known: {sorted(config.get('datasets', {}))})")
    info = manifest_info(manifest_path)
    if not 0 <= shard < info["num_shards"]:
        raise DataError(f"shard {shard} is not in manifest {manifest_path} ({info['num_shards']} shards)")
    rows = read_manifest(manifest_path, shard=shard)
    preprocess = config["preprocess"]
    is_video = bool((rows["frame"] >= 0).any())
    landmarker = build_landmarker(preprocess, config.get("resources", {}).get("mediapipe_task"), video=is_video)
    try:
        cropper = FaceCropper(
            landmarker,
            crop_settings(preprocess),
            min_face_size=float(preprocess.get("min_face_size", 24)),
            detect_max_side=int(preprocess.get("detect_max_side", 1920)),
        )
        started = time.perf_counter()
        arrays = ShardProcessor(cropper, int(preprocess.get("max_image_pixels", 100_000_000))).run(rows)
        elapsed = time.perf_counter() - started
        detector = landmarker.describe()
    finally:
        landmarker.close()
    counts = Counter(Status(code).name.lower() for code in arrays.status)
    attributes = {
        "augane_version": augane.__version__,
        "stage": "preprocess",
        "dataset": dataset,
        "shard": shard_name(shard),
        "config_digest": stage_digest(config, dataset),
        "num_samples": len(rows),
        "sample_ids": rows["sample_id"].tolist(),
        "status_codes": status_codes(),
        "status_counts": dict(counts),
        "detector": detector,
        "crop": {"size": cropper.crop.size, "box_scale": cropper.crop.box_scale, "crop_scale": cropper.crop.crop_scale},
        "landmark_indices": list(MEDIAPIPE_105),
        "num_landmarks": NUM_LANDMARKS,
        "coordinates": "continuous crop pixels (pixel i spans [i, i+1)); landmarks_ndc = u * 2 / S - 1, y down",
        "seconds": round(elapsed, 3),
    }
    write_store(out, arrays.specs(), attributes)
    log.info(
        "%s shard %s: %d samples in %.1f s (%.1f/s): %s",
        dataset, shard_name(shard), len(rows), elapsed, len(rows) / max(elapsed, 1e-9),
        ", ".join(f"{name} {count}" for name, count in sorted(counts.items())),
    )
    return dict(counts)
