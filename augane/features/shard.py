"""The feature-caching stage for one shard: ``preprocess.zarr`` -> ``features.zarr``.

Samples whose preprocessing status is not ``ok`` are skipped: their rows are
NaN and ``valid`` is false. A sample whose network outputs are not finite is
marked invalid the same way (and counted), never stopping the shard. Crops
are read in whole store chunks, the next ones in background threads while
a batch computes, and regrouped into batches of ``features.batch_size``. The store is
written whole and renamed into place, with provenance: the checkpoints'
sha256 digests, the detector variant, devices and a digest of the settings.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import augane
from augane.config import digest
from augane.errors import DataError
from augane.features.extract import BatchFeatures, FeatureExtractor
from augane.io.shards import ArraySpec, open_store, write_store
from augane.nets.deca import DECA_NUM_PARAMS, DECA_PARAM_LAYOUT
from augane.nets.emoca import EMOCA_NUM_EXP
from augane.preprocess.status import Status, status_name

log = logging.getLogger(__name__)

#: Arrays of ``preprocess.zarr`` this stage reads.
PREPROCESS_ARRAYS: tuple[str, ...] = ("image", "status")


def features_digest(config: Mapping[str, Any]) -> str:
    """Digest of the settings that decide a features store (networks, their sizes, precision)."""
    resources = config.get("resources", {})
    return digest({
        "resources": {name: resources.get(name) for name in ("au_detector", "deca", "emoca")},
        "features": config.get("features"),
        "device": config.get("device"),
    })


@dataclass
class ShardTimings:
    """Seconds spent waiting for crops from the store and in the networks."""

    read: float = 0.0
    compute: float = 0.0
    samples: int = 0

    def describe(self) -> dict[str, float]:
        total = self.read + self.compute
        return {"read": round(self.read, 3), "compute": round(self.compute, 3),
                "read_fraction": round(self.read / total, 4) if total else 0.0,
                "images_per_second": round(self.samples / total, 2) if total else 0.0}


@dataclass
class ShardFeatures:
    """The arrays of one features store before writing (rows of skipped samples are NaN)."""

    valid: np.ndarray
    au_prob: np.ndarray
    afg: np.ndarray
    deca_feature: np.ndarray
    deca_params: np.ndarray
    emoca_exp: np.ndarray | None = None
    emoca_pose: np.ndarray | None = None
    timings: ShardTimings = field(default_factory=ShardTimings)
    nonfinite: int = 0

    def specs(self) -> dict[str, ArraySpec]:
        specs = {
            "valid": ArraySpec(self.valid, ("sample",)),
            "au_prob": ArraySpec(self.au_prob, ("sample", "au")),
            "afg": ArraySpec(self.afg, ("sample", "au", "channel")),
            "deca_feature": ArraySpec(self.deca_feature, ("sample", "channel")),
            "deca_params": ArraySpec(self.deca_params, ("sample", "param")),
        }
        if self.emoca_exp is not None:
            specs["emoca_exp"] = ArraySpec(self.emoca_exp, ("sample", "param"))
            specs["emoca_pose"] = ArraySpec(self.emoca_pose, ("sample", "param"))
        return specs


def ok_status_code(store_attributes: Mapping[str, Any], path: str | Path) -> int:
    """The stored code of status ``ok`` (from the store's ``status_codes``; AUGANE's own when absent)."""
    codes = store_attributes.get("status_codes")
    if codes is None:
        return int(Status.OK)
    if "ok" not in codes:
        raise DataError(f"{path}: attribute status_codes {codes} has no 'ok' entry")
    return int(codes["ok"])


def _blocks(valid: np.ndarray, block: int) -> list[tuple[int, int]]:
    """Store ranges of ``block`` samples (aligned to the store's chunks) that hold a valid sample."""
    ranges = [(start, min(start + block, valid.size)) for start in range(0, valid.size, block)]
    return [(start, stop) for start, stop in ranges if valid[start:stop].any()]


def _read_block(store, valid: np.ndarray, bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    start, stop = bounds
    rows = np.flatnonzero(valid[start:stop]) + start
    return rows, np.asarray(store["image"][start:stop])[rows - start]


def _read_blocks(store, valid: np.ndarray, block: int, read_ahead: int) -> Iterator[tuple[np.ndarray, np.ndarray, float]]:
    """Yield (row indices, crops, seconds waited) per block; ``read_ahead`` blocks are read in background threads."""
    ranges = _blocks(valid, block)
    if read_ahead <= 0:
        for bounds in ranges:
            started = time.perf_counter()
            rows, crops = _read_block(store, valid, bounds)
            yield rows, crops, time.perf_counter() - started
        return
    with ThreadPoolExecutor(max_workers=read_ahead, thread_name_prefix="features-read") as pool:
        pending = deque(pool.submit(_read_block, store, valid, bounds) for bounds in ranges[:read_ahead])
        following = read_ahead
        while pending:
            started = time.perf_counter()
            rows, crops = pending.popleft().result()
            waited = time.perf_counter() - started
            if following < len(ranges):
                pending.append(pool.submit(_read_block, store, valid, ranges[following]))
                following += 1
            yield rows, crops, waited


def _batches(store, valid: np.ndarray, batch_size: int, read_ahead: int) -> Iterator[tuple[np.ndarray, np.ndarray, float]]:
    """Yield (row indices, crops, seconds waited) in batches of ``batch_size`` valid samples (the last may be smaller).

    Crops are read in whole store chunks (a chunk is decompressed once, whatever
    the batch size) and regrouped, so skipped samples do not shrink batches.
    """
    chunk = int(store["image"].chunks[0])
    block = chunk * max(1, -(-batch_size // chunk))
    rows_buffer, crops_buffer, waited_total = [], [], 0.0
    buffered = 0
    for rows, crops, waited in _read_blocks(store, valid, block, read_ahead):
        rows_buffer.append(rows)
        crops_buffer.append(crops)
        buffered += rows.size
        waited_total += waited
        if buffered < batch_size:
            continue
        all_rows, all_crops = np.concatenate(rows_buffer), np.concatenate(crops_buffer)
        full = (all_rows.size // batch_size) * batch_size
        for offset in range(0, full, batch_size):
            yield all_rows[offset:offset + batch_size], all_crops[offset:offset + batch_size], waited_total
            waited_total = 0.0
        rows_buffer, crops_buffer = [all_rows[full:]], [all_crops[full:]]
        buffered = all_rows.size - full
    if buffered:
        yield np.concatenate(rows_buffer), np.concatenate(crops_buffer), waited_total


def _empty(count: int, extractor: FeatureExtractor) -> ShardFeatures:
    networks = extractor.networks
    outputs = len(networks.au_detector.au_names)
    nodes, channels = len(networks.au_detector.afg_aus), networks.au_detector.channels
    with_emoca = networks.emoca is not None
    return ShardFeatures(
        valid=np.zeros(count, dtype=bool),
        au_prob=np.full((count, outputs), np.nan, dtype=np.float32),
        afg=np.full((count, nodes, channels), np.nan, dtype=np.float16),
        deca_feature=np.full((count, networks.deca.feature_dim), np.nan, dtype=np.float16),
        deca_params=np.full((count, DECA_NUM_PARAMS), np.nan, dtype=np.float32),
        emoca_exp=np.full((count, EMOCA_NUM_EXP), np.nan, dtype=np.float32) if with_emoca else None,
        emoca_pose=np.full((count, 6), np.nan, dtype=np.float32) if with_emoca else None,
    )


def _store_batch(features: ShardFeatures, rows: np.ndarray, batch: BatchFeatures) -> None:
    finite = batch.finite()
    features.nonfinite += int((~finite).sum())
    rows, keep = rows[finite], np.flatnonzero(finite)
    features.valid[rows] = True
    for name in ("au_prob", "afg", "deca_feature", "deca_params", "emoca_exp", "emoca_pose"):
        target = getattr(features, name)
        if target is not None:
            target[rows] = getattr(batch, name)[keep]


def compute_features(store, ok: np.ndarray, extractor: FeatureExtractor) -> ShardFeatures:
    """Run the networks on the samples of an open preprocess store where ``ok`` is true."""
    settings = extractor.settings
    features = _empty(ok.size, extractor)
    for rows, crops, waited in _batches(store, ok, settings.batch_size, settings.read_ahead):
        started = time.perf_counter()
        batch = extractor(crops)
        features.timings.compute += time.perf_counter() - started
        features.timings.read += waited
        features.timings.samples += len(rows)
        _store_batch(features, rows, batch)
    return features


def features_shard(config: Mapping[str, Any], dataset: str, shard: str, preprocess_path: str | Path,
                   out: str | Path, extractor: FeatureExtractor) -> dict[str, Any]:
    """Compute and write ``features.zarr`` for one shard; returns the store's attributes.

    Args:
        config: the validated config (for the settings digest).
        dataset, shard: names recorded as provenance (shard as its 4-digit name).
        preprocess_path: the shard's ``preprocess.zarr``.
        out: the ``features.zarr`` to write (atomically).
        extractor: the loaded networks and inference settings.
    Raises:
        DataError: the preprocess store is missing or malformed.
    """
    store = open_store(preprocess_path, required=PREPROCESS_ARRAYS)
    status = np.asarray(store["status"][:])
    image_shape = store["image"].shape
    if len(image_shape) != 4 or image_shape[-1] != 3 or image_shape[0] != status.size:
        raise DataError(f"{preprocess_path}: image must be (n, S, S, 3) uint8 with n = {status.size}, got {image_shape}")
    ok = status == ok_status_code(store.attrs, preprocess_path)
    started = time.perf_counter()
    features = compute_features(store, ok, extractor)
    elapsed = time.perf_counter() - started
    networks = extractor.networks
    skipped = Counter(status_name(code) for code in status[~ok])
    attributes = {
        "augane_version": augane.__version__,
        "stage": "features",
        "dataset": dataset,
        "shard": shard,
        "config_digest": features_digest(config),
        "num_samples": int(status.size),
        "num_valid": int(features.valid.sum()),
        "sample_ids": list(store.attrs.get("sample_ids", [])),
        "preprocess_config_digest": store.attrs.get("config_digest"),
        "au_names": list(networks.au_detector.au_labels),
        "afg_aus": list(networks.au_detector.afg_aus),
        "deca_layout": dict(DECA_PARAM_LAYOUT),
        "networks": networks.provenance(),
        "untrained_weights": networks.untrained,
        "skipped": dict(skipped),
        "nonfinite_outputs": features.nonfinite,
        "runtime": {**extractor.settings.describe(), **features.timings.describe(), "seconds": round(elapsed, 3)},
    }
    write_store(out, features.specs(), attributes)
    timings = features.timings.describe()
    log.info(
        "%s shard %s: %d of %d samples in %.1f s (%.1f images/s, %.0f%% waiting for data)%s%s",
        dataset, shard, attributes["num_valid"], status.size, elapsed, timings["images_per_second"],
        100 * timings["read_fraction"],
        f"; skipped {dict(skipped)}" if skipped else "",
        f"; {features.nonfinite} with non-finite outputs" if features.nonfinite else "",
    )
    if networks.untrained:
        log.warning("%s: computed with UNTRAINED development weights; these features are not meaningful", out)
    return attributes
