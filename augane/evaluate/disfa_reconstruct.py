"""The evaluation's reconstruction step: selected DISFA frames -> one method's renders -> AU predictions.

For one method, every frame of the frames table is read from the cache
(:class:`~augane.evaluate.cached_frames.CachedFrames`), reconstructed,
rendered over its crop and scored by the AU detector
(:class:`~augane.evaluate.reconstruction.Reconstructor`), in batches on
the configured device. The result is the method's rows of the predictions
table (:mod:`augane.evaluate.predictions`): ``subject``, ``frame``,
``method``, ``sample_id``, ``prob_<AU>`` for every detector output, and the
checks ``render_coverage`` and ``landmark_nme_input`` of
:mod:`augane.evaluate.fidelity` (a warning is logged when a method's renders
leave much of the input face uncovered). Frames
the cache has no face for keep NaN probabilities ("no output"). On the
synthetic world, per-frame errors against the ground truth are computed from
the same reconstructions (:mod:`augane.evaluate.ground_truth`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from augane.aus import au_label
from augane.errors import DataError
from augane.evaluate.cached_frames import CachedFrames, FrameBatch
from augane.evaluate.fidelity import LOW_COVERAGE, landmark_agreement, render_coverage
from augane.evaluate.ground_truth import ERROR_COLUMNS, GroundTruth, frame_errors
from augane.evaluate.reconstruction import Reconstructor, check_method
from augane.features.runtime import resolve_device
from augane.io.atomic import atomic_path

log = logging.getLogger(__name__)

#: Key columns of the predictions and error rows written here.
KEYS: tuple[str, ...] = ("subject", "frame", "method", "sample_id")
#: Per-frame checks written beside the probabilities (see :mod:`augane.evaluate.fidelity`).
CHECKS: tuple[str, ...] = ("render_coverage", "landmark_nme_input")


@dataclass
class MethodResult:
    """One method's rows for the evaluated frames.

    Attributes:
        predictions: ``subject, frame, method, sample_id, prob_<AU>..., render_coverage, landmark_nme_input``
            (one row per frame of the table).
        errors: ``subject, frame, method, sample_id`` + :data:`~augane.evaluate.ground_truth.ERROR_COLUMNS`,
            or None without ground truth.
        provenance: method, checkpoint, networks, device, timings (JSON-ready).
    """

    predictions: pd.DataFrame
    errors: pd.DataFrame | None
    provenance: dict[str, Any] = field(default_factory=dict)


def probability_columns(reconstructor: Reconstructor) -> list[str]:
    """``prob_<AU>`` column of each detector output (``prob_AU4``, ``prob_AU_L1``), in output order."""
    return [f"prob_{au_label(au)}" for au in reconstructor.detector_aus]


def _rows(keys: pd.DataFrame, method: str) -> pd.DataFrame:
    rows = keys[["subject", "frame", "sample_id"]].reset_index(drop=True).copy()
    rows.insert(2, "method", method)
    return rows


def _progress(total: int, description: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="frame", disable=None, mininterval=1.0)


def reconstruct_frames(
    config: Mapping[str, Any],
    cache_dir: str | Path,
    frames: pd.DataFrame,
    method: str,
    *,
    checkpoint: str | Path | None = None,
    ground_truth: str | Path | None = None,
    batch_size: int = 16,
    device: torch.device | str | None = None,
) -> MethodResult:
    """Reconstruct every frame of ``frames`` with ``method`` and score the renders with the AU detector.

    Args:
        config: the validated config.
        cache_dir: ``results/cache/<dataset>``.
        frames: a frames table (:func:`~augane.evaluate.cached_frames.read_frames_table`).
        method: ``augane``, ``deca`` or ``emoca``.
        checkpoint: GANE checkpoint for ``augane`` (default: the config's training run).
        ground_truth: the dataset's ``GroundTruth`` folder, to compute per-frame errors.
        batch_size: frames per batch.
        device: default: the config's ``device``.
    Raises:
        DataError, CheckpointError, ConfigError: naming the file or setting at fault.
    """
    check_method(method)
    if frames.empty:
        raise DataError("the frames table is empty: no frame was selected for the evaluation")
    device = resolve_device(config["device"]) if device is None else torch.device(device)
    cached = CachedFrames(cache_dir, frames)
    if method == "emoca" and not cached.has_emoca:
        raise DataError(
            f"{cache_dir}: the features hold no EMOCA output (emoca_exp, emoca_pose); set resources.emoca.checkpoint "
            "and rerun the features stage, or leave emoca out of evaluate.disfa.methods"
        )
    networks = cached.networks()
    reconstructor = Reconstructor.from_config(
        config, method, cached.layout, device, checkpoint=checkpoint, networks=networks
    )
    truth = GroundTruth(ground_truth) if ground_truth is not None else None
    columns = probability_columns(reconstructor)
    predictions, errors = [], []
    started = time.perf_counter()
    done = 0
    with _progress(len(cached.frames), f"{method}") as bar:
        for part in cached.batches(batch_size, device):
            result = reconstructor(part.batch)
            rows = _rows(part.keys, method)
            rows[columns] = result.rendered_prob.float().cpu().numpy().astype(np.float64)
            input_landmarks = part.batch["landmarks_ndc"].cpu().numpy()
            rows["render_coverage"] = render_coverage(result.render.mask[:, 0].cpu().numpy(), input_landmarks)
            rows["landmark_nme_input"] = landmark_agreement(result.landmarks.cpu().numpy(), input_landmarks)
            predictions.append(rows)
            if truth is not None:
                errors.append(pd.concat([_rows(part.keys, method), _errors(reconstructor, truth, part, result)],
                                        axis=1))
            done += len(part)
            bar.update(len(part))
    seconds = time.perf_counter() - started
    unusable = cached.unusable
    if len(unusable):
        log.warning("%s: %d of %d frames have no usable face in the cache (e.g. %s: %s); they count as no output",
                    method, len(unusable), len(cached.frames), unusable["sample_id"].iloc[0], unusable["reason"].iloc[0])
        predictions.append(_rows(unusable, method).reindex(columns=[*KEYS, *columns, *CHECKS]))
        if truth is not None:
            errors.append(_rows(unusable, method).reindex(columns=[*KEYS, *ERROR_COLUMNS]))
    table = _ordered(pd.concat(predictions, ignore_index=True), cached.frames)
    error_table = _ordered(pd.concat(errors, ignore_index=True), cached.frames) if truth is not None else None
    rate = done / seconds if seconds > 0 else float("nan")
    checks = {name: _mean(table[name]) for name in CHECKS}
    if checks["render_coverage"] is not None and checks["render_coverage"] < LOW_COVERAGE:
        log.warning(
            "%s: the renders cover on average only %.0f%% of the input face (landmark NME against the input %.2f): "
            "where they miss it, the AU detector sees the input itself through the composite, so this method's F1 "
            "does not measure its reconstructions", method, 100 * checks["render_coverage"], checks["landmark_nme_input"])
    log.info("%s: %d frames reconstructed, rendered and scored in %.1f s (%.1f frames/s on %s)",
             method, done, seconds, rate, device)
    provenance = {
        "method": method,
        "frames": int(len(cached.frames)),
        "reconstructed": int(done),
        "no_face": int(len(unusable)),
        "device": str(device),
        "seconds": round(seconds, 3),
        "frames_per_second": round(rate, 3) if done else None,
        "mean_render_coverage": checks["render_coverage"],
        "mean_landmark_nme_input": checks["landmark_nme_input"],
        "networks": networks,
        "checkpoint": _checkpoint_provenance(reconstructor),
    }
    return MethodResult(predictions=table, errors=error_table, provenance=provenance)


def _mean(values: pd.Series) -> float | None:
    finite = values.dropna()
    return round(float(finite.mean()), 4) if len(finite) else None


def _errors(reconstructor: Reconstructor, truth: GroundTruth, part: FrameBatch, result: Any) -> pd.DataFrame:
    rows = truth.rows(part.keys)
    return frame_errors(reconstructor.face, rows, result.params["exp"], result.params["pose"], result.landmarks,
                        part.transform)


def _ordered(table: pd.DataFrame, frames: pd.DataFrame) -> pd.DataFrame:
    """Rows in the frames table's order (subject, frame)."""
    order = frames[["sample_id"]].reset_index(drop=True).reset_index().rename(columns={"index": "_order"})
    return table.merge(order, on="sample_id", how="left").sort_values("_order").drop(columns="_order").reset_index(
        drop=True
    )


def _checkpoint_provenance(reconstructor: Reconstructor) -> dict[str, Any] | None:
    metadata = reconstructor.checkpoint
    if metadata is None:
        return None
    return {"path": str(metadata.path), "training": metadata.training, "code": metadata.code}


def write_table(table: pd.DataFrame, path: str | Path, provenance: Mapping[str, Any]) -> Path:
    """Write a parquet table atomically with ``provenance`` as its ``augane`` metadata."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    metadata = dict(arrow.schema.metadata or {})
    metadata[b"augane"] = json.dumps(provenance, default=str).encode("utf-8")
    with atomic_path(path) as temporary:
        pq.write_table(arrow.replace_schema_metadata(metadata), temporary)
    return Path(path)
