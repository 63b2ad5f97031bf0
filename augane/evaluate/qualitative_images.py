"""The images behind the qualitative grid: input crops and each method's render of the chosen frames.

The report (``augane evaluate-report``) picks the grid's frames from the
predictions (:func:`augane.evaluate.qualitative.choose_frames`, through
:func:`augane.evaluate.pipeline.evaluate`); :func:`grid_frames` makes the
same choice from the same inputs, so the images written here are the ones
the grid asks for, at :func:`augane.evaluate.qualitative.image_path`:

    <images>/input/<subject>/<frame:06d>.png     the cached crop
    <images>/<method>/<subject>/<frame:06d>.png  the render composited over it (what the AU detector saw)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from augane.evaluate.cached_frames import CachedFrames, select_frames
from augane.evaluate.predictions import REFERENCE_METHOD
from augane.evaluate.qualitative import image_path
from augane.evaluate.reconstruction import Reconstructor
from augane.io.images import write_image

log = logging.getLogger(__name__)


def grid_frames(predictions: pd.DataFrame, config: Mapping[str, Any]) -> pd.DataFrame:
    """``subject, frame, score`` of the qualitative grid, as ``augane evaluate-report`` chooses them.

    Args:
        predictions: a validated predictions table with the ``input`` rows and every method's rows.
        config: the validated config (``evaluate.disfa``, the detector threshold).
    """
    from augane.evaluate.pipeline import evaluate
    from augane.evaluate.settings import EvaluationSettings

    return evaluate(predictions, EvaluationSettings.from_config(config)).chosen


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) float in [0, 1] -> (B, H, W, 3) uint8, rounded."""
    return (images.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def write_grid_images(
    config: Mapping[str, Any],
    cache_dir: str | Path,
    frames: pd.DataFrame,
    chosen: pd.DataFrame,
    methods: Sequence[str],
    out_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    device: torch.device | str = "cpu",
) -> list[Path]:
    """Write the input crop and each method's render of every chosen frame.

    Args:
        config: the validated config.
        cache_dir: ``results/cache/<dataset>``.
        frames: the frames table of the evaluation (locates the chosen frames in the cache).
        chosen: ``subject, frame`` to draw.
        methods: reconstruction methods to render.
        out_dir: the images folder.
        checkpoint: GANE checkpoint for ``augane``.
        device: where to reconstruct.
    Returns:
        the paths written.
    """
    written: list[Path] = []
    if chosen.empty:
        log.info("no qualitative frames requested (evaluate.disfa.qualitative_frames is 0); no image written")
        return written
    selected = select_frames(frames, list(zip(chosen["subject"].astype(str), chosen["frame"].astype(int))))
    if selected.empty:
        log.warning("none of the %d chosen frames is in the frames table; no qualitative image written", len(chosen))
        return written
    device = torch.device(device)
    cached = CachedFrames(cache_dir, selected)
    reconstructors = {
        method: Reconstructor.from_config(config, method, cached.layout, device, checkpoint=checkpoint,
                                          networks=cached.networks())
        for method in methods
    }
    for part in cached.batches(len(selected), device):
        for subject, frame, crop in zip(part.keys["subject"], part.keys["frame"], part.crops):
            written.append(write_image(image_path(out_dir, REFERENCE_METHOD, subject, frame), crop))
        for method, reconstructor in reconstructors.items():
            renders = to_uint8(reconstructor(part.batch).render.image)
            for subject, frame, render in zip(part.keys["subject"], part.keys["frame"], renders):
                written.append(write_image(image_path(out_dir, method, subject, frame), render))
    if len(cached.unusable):
        log.warning("%d chosen frame(s) have no face in the cache; the grid shows them as missing",
                    len(cached.unusable))
    return written
