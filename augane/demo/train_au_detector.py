"""The stand-in AU detector: a MEFARG network trained on the demo world's crops, in the released checkpoint format.

Architecture and sizes are those of ``resources.au_detector`` (the default
config: OpenGraphAU layout, ANFL head, ResNet-18 trunk), so the file it writes
loads through :func:`augane.features.networks.load_au_detector_from_config`
like a released one. Training follows OpenGraphAU's recipe, scaled down:

* inputs: the preprocess crops, ``Resize(resize)`` then a random
  ``input_size`` crop, the reference's training transform without its colour
  jitter (the world varies light and albedo already); ImageNet normalisation;
* targets: an output is on when its AU's label reaches
  ``demo.detectors.label_threshold`` (DISFA's convention: intensity >= 2).
  Left/right sub-AUs take their AU's label (the demo face is symmetric).
  Outputs for AUs the demo face model cannot show are trained towards 0: the
  world never shows them;
* loss: OpenGraphAU's weighted asymmetric loss on the cosine scores,
  ``-w_k [y log p + (1 - y) p log(1 - p)]`` with the ``p`` weighting the
  negative term taken without gradient, and ``w_k`` the inverse positive rate
  of output ``k`` normalised to mean 1 over the outputs that have positives
  (outputs without positives get weight 1);
* an auxiliary training-only term (not saved: the checkpoint keeps the
  released layout): a linear read-out of each AU node's AFG feature f_v
  regresses the AU's intensity / 5 (smooth L1, weight :data:`INTENSITY_WEIGHT`).
  Graded targets on every image teach a network trained from scratch
  faster than binary ones, and make f_v (the paper's AU-specific features)
  carry intensity;
* AdamW with a per-step cosine learning rate, from random initialisation.

Then the checkpoint is read back through the loader and scored on the
held-out identities (centre crop, the feature stage's preprocessing):
F1 per demo AU at the detector's 0.5 threshold, and their mean.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import precision_recall_fscore_support

from augane.aus import PAPER_EVAL_AUS, au_label
from augane.demo.detector_data import CropSet, load_crops
from augane.demo.face_model import DEMO_AUS
from augane.demo.standin_training import (
    STAND_IN_PROVENANCE,
    DetectorData,
    batches,
    cosine_lr,
    steps_per_epoch,
    to_images,
    training_settings,
)
from augane.errors import DataError
from augane.features.networks import AuDetectorSettings
from augane.io.atomic import write_text_atomic
from augane.nets.au_preprocess import IMAGENET_MEAN, IMAGENET_STD, au_detector_input
from augane.nets.imaging import resize_shorter_side
from augane.nets.mefarg import MEFARG, load_au_detector
from augane.nets.release_format import save_au_detector_checkpoint

log = logging.getLogger(__name__)

#: Decision threshold on the cosine scores (the reference's).
DECISION_THRESHOLD = 0.5
#: Weight of the auxiliary intensity read-out of the AFG features.
INTENSITY_WEIGHT = 2.0


def _base_au(output: int | str) -> int:
    """AU number of an output: ``4`` -> 4, sub-AU ``"L4"`` -> 4."""
    return output if isinstance(output, int) else int(str(output)[1:])


def output_targets(labels: pd.DataFrame, outputs: Sequence[int | str], threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary targets and a validity mask per detector output.

    Args:
        labels: rows with ``AU<k>`` intensity columns (-1 = not annotated) for every demo AU.
        outputs: the detector's outputs (:attr:`MEFARG.au_names`).
        threshold: intensity at which an AU counts as present.
    Returns:
        ``(targets, mask)``: (N, K) float32 in {0, 1} and (N, K) bool.
    Raises:
        DataError: a demo AU without its label column.
    """
    count = len(labels)
    targets = np.zeros((count, len(outputs)), np.float32)
    mask = np.ones((count, len(outputs)), bool)
    for position, output in enumerate(outputs):
        au = _base_au(output)
        if au not in DEMO_AUS:
            continue
        column = au_label(au)
        if column not in labels.columns:
            raise DataError(f"the training labels lack column {column} (the demo face model shows AU{au})")
        values = labels[column].to_numpy()
        mask[:, position] = values >= 0
        targets[:, position] = values >= threshold
    return targets, mask


def intensity_targets(labels: pd.DataFrame, nodes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Intensity / 5 per AU node, (N, len(nodes)) float32, and its mask; 0 for AUs the world never shows."""
    values = np.zeros((len(labels), len(nodes)), np.float32)
    mask = np.ones(values.shape, bool)
    for position, au in enumerate(nodes):
        if au in DEMO_AUS:
            column = labels[au_label(au)].to_numpy()
            values[:, position] = np.clip(column, 0, 5) / 5.0
            mask[:, position] = column >= 0
    return values, mask


class IntensityReadout(torch.nn.Module):
    """Training-only linear read-out of each AU node's AFG feature: (B, N, d) -> (B, N) intensity / 5."""

    def __init__(self, nodes: int, channels: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(nodes, channels))
        self.bias = torch.nn.Parameter(torch.zeros(nodes))

    def forward(self, afg: torch.Tensor) -> torch.Tensor:
        return (afg * self.weight[None]).sum(dim=-1) + self.bias


def class_weights(targets: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(K,) inverse positive rates normalised to mean 1 over outputs with positives; 1 for the others."""
    valid = mask.sum(axis=0)
    rate = np.where(valid > 0, (targets * mask).sum(axis=0) / np.maximum(valid, 1), 0.0)
    weights = np.ones(targets.shape[1], np.float64)
    present = rate > 0
    if present.any():
        inverse = 1.0 / rate[present]
        weights[present] = inverse / inverse.mean()
    return weights.astype(np.float32)


def weighted_asymmetric_loss(prob: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
                             eps: float = 1e-8) -> torch.Tensor:
    """OpenGraphAU's loss on (B, K) cosine scores: mean over valid entries of
    ``-w_k [y log p + (1 - y) * stopgrad(p) * log(1 - p)]``."""
    positive = target * torch.log(prob.clamp(min=eps))
    negative = (1.0 - target) * torch.log((1.0 - prob).clamp(min=eps)) * prob.detach()
    loss = -(positive + negative) * weight[None]
    return loss[mask].mean()


def training_input(crops: np.ndarray, resize: int, input_size: int, generator: torch.Generator) -> torch.Tensor:
    """The reference's training transform on (B, S, S, 3) uint8 crops (without colour jitter): Resize, RandomCrop,
    Normalize."""
    images = resize_shorter_side(to_images(crops), resize)
    height, width = images.shape[-2:]
    tops = torch.randint(0, height - input_size + 1, (len(images),), generator=generator).tolist()
    lefts = torch.randint(0, width - input_size + 1, (len(images),), generator=generator).tolist()
    images = torch.stack([image[:, t:t + input_size, l:l + input_size] for image, t, l in zip(images, tops, lefts)])
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


@torch.inference_mode()
def predict(detector: MEFARG, crops: np.ndarray, resize: int, input_size: int, batch_size: int = 64) -> np.ndarray:
    """(N, K) cosine scores of (N, S, S, 3) uint8 crops, with the feature stage's preprocessing."""
    detector.eval()
    scores = [detector(au_detector_input(to_images(crops[start:start + batch_size]), resize, input_size)).prob
              for start in range(0, len(crops), batch_size)]
    return torch.cat(scores).numpy()


def score_detections(scores: np.ndarray, labels: pd.DataFrame, outputs: Sequence[int | str], threshold: int,
                     aus: Sequence[int] = DEMO_AUS) -> dict[str, Any]:
    """F1, precision, recall and support per AU of ``aus`` (decision at :data:`DECISION_THRESHOLD`), their mean
    (``macro_f1``), the mean over the paper's evaluated AUs among them, and how often the outputs of AUs the
    world never shows fire."""
    per_au = {}
    for au in aus:
        position = list(outputs).index(au)
        values = labels[au_label(au)].to_numpy()
        known = values >= 0
        truth = values[known] >= threshold
        decision = scores[known, position] >= DECISION_THRESHOLD
        precision, recall, f1, _ = precision_recall_fscore_support(truth, decision, average="binary", zero_division=0)
        per_au[au_label(au)] = {"f1": round(float(f1), 4), "precision": round(float(precision), 4),
                                "recall": round(float(recall), 4), "positives": int(truth.sum()),
                                "predicted": int(decision.sum())}
    absent = [position for position, output in enumerate(outputs)
              if isinstance(output, int) and output not in DEMO_AUS]
    paper = [au for au in PAPER_EVAL_AUS if au in aus]
    return {
        "macro_f1": round(float(np.mean([entry["f1"] for entry in per_au.values()])), 4),
        "macro_f1_paper_aus": round(float(np.mean([per_au[au_label(au)]["f1"] for au in paper])), 4),
        "paper_aus": list(paper),
        "per_au": per_au,
        "absent_aus_false_positive_rate": round(float((scores[:, absent] >= DECISION_THRESHOLD).mean()), 4)
        if absent else None,
    }


def _fit(detector: MEFARG, train: CropSet, targets: np.ndarray, mask: np.ndarray, au: AuDetectorSettings,
         config: Mapping[str, Any], seed: int, max_steps: int | None) -> dict[str, Any]:
    settings = training_settings(config, "au_detector")
    weight = torch.from_numpy(class_weights(targets, mask))
    intensity, intensity_mask = intensity_targets(train.labels, detector.afg_aus)
    readout = IntensityReadout(len(detector.afg_aus), detector.channels)
    optimizer = torch.optim.AdamW([*detector.parameters(), *readout.parameters()], lr=settings.lr,
                                  weight_decay=settings.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    total = steps_per_epoch(len(train), settings.batch_size) * settings.epochs
    if max_steps is not None:
        total = min(total, max_steps)
    step, started, recent = 0, time.perf_counter(), []
    detector.train()
    for epoch in range(settings.epochs):
        for index in batches(len(train), settings.batch_size, epoch, seed):
            if step >= total:
                break
            cosine_lr(optimizer, settings.lr, step, total)
            images = training_input(train.images[index], au.resize, au.input_size, generator)
            output = detector(images)
            loss = weighted_asymmetric_loss(output.prob, torch.from_numpy(targets[index]), torch.from_numpy(mask[index]),
                                            weight)
            known = torch.from_numpy(intensity_mask[index])
            loss = loss + INTENSITY_WEIGHT * torch.nn.functional.smooth_l1_loss(
                readout(output.afg)[known], torch.from_numpy(intensity[index])[known], beta=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            recent.append(float(loss.detach()))
            step += 1
            if step % 50 == 0 or step == total:
                log.info("AU detector: epoch %d, step %d/%d, loss %.4f (%.2f s/step)", epoch + 1, step, total,
                         np.mean(recent[-50:]), (time.perf_counter() - started) / step)
    seconds = time.perf_counter() - started
    return {"epochs": settings.epochs, "steps": step, "batch_size": settings.batch_size, "lr": settings.lr,
            "weight_decay": settings.weight_decay, "intensity_weight": INTENSITY_WEIGHT, "seconds": round(seconds, 1),
            "seconds_per_step": round(seconds / max(step, 1), 3),
            "final_loss": round(float(np.mean(recent[-50:])), 5) if recent else None}


def train_au_detector(config: Mapping[str, Any], out: str | Path, score_path: str | Path,
                      max_steps: int | None = None) -> dict[str, Any]:
    """Train, save and score the stand-in AU detector.

    Args:
        config: a validated config (``resources.au_detector``, ``demo.detectors``, ``datasets``).
        out: checkpoint to write (OpenGraphAU/ME-GraphAU format).
        score_path: JSON file for the held-out scores.
        max_steps: stop after this many steps (smoke tests).
    Returns:
        The score record written to ``score_path``.
    """
    data = DetectorData.from_config(config)
    au = AuDetectorSettings.from_config(config["resources"])
    torch.manual_seed(data.seed)
    train, heldout = load_crops(data.train_dataset), load_crops(data.heldout_dataset)
    log.info("AU detector: %d training crops (%s), %d held-out crops (%s), crop %d px -> resize %d -> input %d",
             len(train), train.dataset, len(heldout), heldout.dataset, train.crop_size, au.resize, au.input_size)
    detector = MEFARG(au.variant, au.head, au.backbone)
    targets, mask = output_targets(train.labels, detector.au_names, data.label_threshold)
    training = _fit(detector, train, targets, mask, au, config, data.seed, max_steps)
    save_au_detector_checkpoint(detector, out, epoch=training["epochs"], provenance=STAND_IN_PROVENANCE)
    reloaded = load_au_detector(out, au.variant, head=au.head, backbone=au.backbone)
    scores = predict(reloaded, heldout.images, au.resize, au.input_size)
    heldout_scores = score_detections(scores, heldout.labels, reloaded.au_names, data.label_threshold)
    record = {
        "network": "au_detector",
        "provenance": STAND_IN_PROVENANCE,
        "checkpoint": str(out),
        "sha256": reloaded.checkpoint_info.sha256,
        "layout": {"variant": au.variant, "head": au.head, "backbone": au.backbone, "channels": reloaded.channels,
                   "crop_size": train.crop_size, "resize": au.resize, "input_size": au.input_size},
        "datasets": {"train": train.dataset, "heldout": heldout.dataset},
        "samples": {"train": len(train), "heldout": len(heldout)},
        "detection": {train.dataset: train.detection, heldout.dataset: heldout.detection},
        "label_threshold": data.label_threshold,
        "decision_threshold": DECISION_THRESHOLD,
        "training": training,
        "heldout": heldout_scores,
    }
    write_text_atomic(score_path, json.dumps(record, indent=2) + "\n")
    log.info("AU detector: held-out macro-F1 %.3f over %d demo AUs (%s) -> %s", heldout_scores["macro_f1"],
             len(DEMO_AUS), ", ".join(f"{k} {v['f1']:.2f}" for k, v in heldout_scores["per_au"].items()), out)
    return record
