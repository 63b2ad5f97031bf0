"""The stand-in DECA coarse encoder: ``E_flame`` trained on the demo world's crops to regress the known parameters.

Architecture and input size are those of ``resources.deca`` (the default
config: ResNet-18 trunk, 112 px), written as ``deca_model.tar`` is (an
``E_flame`` entry), so it loads through
:func:`augane.features.networks.load_deca_from_config` like the release.

Supervision, all known exactly in the synthetic world:

* every entry of DECA's 236-vector (shape, tex, exp, pose, cam, light), the
  camera expressed in the crop's frame (:func:`augane.demo.world_camera.camera_to_crop`
  with the crop transform the preprocess stage stored for the sample).
  Entries are standardised with the training set's mean and standard
  deviation; each group's squared error is summed over its entries and
  divided by the number of entries that vary (the demo model fills only the
  first 20 shape, 10 tex and 15 exp entries; the others are trained towards
  their constant value 0);
* the 105 landmarks: decoded from the predicted shape, expression and pose
  with the face model of ``resources`` and projected with the predicted
  camera, against the true landmarks mapped into the crop (L1 in normalised
  crop coordinates, weight :data:`LANDMARK_WEIGHT`).

Input: the crop resized to ``input_size`` (the feature stage's DECA input),
not augmented (a geometric change would change the camera, a colour change
the light and albedo it regresses).
Scores on the held-out identities: RMSE per parameter group over its varying
entries, landmark error in crop pixels and as NME (inter-ocular), and the
expression-only vertex error in mm (true identity, no head rotation).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augane.demo.detector_data import CropSet, load_crops
from augane.demo.standin_training import (
    STAND_IN_PROVENANCE,
    DetectorData,
    batches,
    cosine_lr,
    steps_per_epoch,
    to_images,
    training_settings,
)
from augane.demo.world_camera import camera_to_crop
from augane.demo.world_params import FaceParameters, landmark_columns_to_points
from augane.errors import ConfigError
from augane.evaluate.geometry import landmark_nme, vertex_error_mm
from augane.flame.camera import normalised_to_pixels, pixels_to_normalised, project
from augane.flame.layer import FlameLayer
from augane.io.atomic import write_text_atomic
from augane.nets.deca import DECA_PARAM_LAYOUT, DecaCoarseEncoder, load_deca, split_deca_params
from augane.nets.imaging import resize
from augane.nets.release_format import save_deca_checkpoint
from augane.preprocess.crop import apply_transform

log = logging.getLogger(__name__)

#: Weight of the landmark term (L1 in normalised crop coordinates) against the standardised parameter terms.
LANDMARK_WEIGHT = 10.0
#: Entries whose training standard deviation is below this are treated as constant.
CONSTANT_STD = 1e-8


@dataclass
class DecaTargets:
    """Supervision of N crops.

    Attributes:
        params: (N, 236) float32 true parameters, camera in the crop's frame.
        landmarks: (N, 105, 2) float32 true landmarks in normalised crop coordinates.
    """

    params: np.ndarray
    landmarks: np.ndarray


def deca_targets(crops: CropSet) -> DecaTargets:
    """The true parameters and landmarks of a crop set, in each crop's frame."""
    truth = FaceParameters.from_columns(crops.labels)
    truth.cam = camera_to_crop(truth.cam, crops.transform, crops.source_size, crops.crop_size)
    points = landmark_columns_to_points(crops.labels)
    in_crop = np.stack([apply_transform(p, t) for p, t in zip(points, crops.transform)])
    return DecaTargets(params=truth.vector().astype(np.float32),
                       landmarks=pixels_to_normalised(in_crop, crops.crop_size).astype(np.float32))


@dataclass
class Standardiser:
    """Per-entry mean and scale of the training parameters, and the entries that vary."""

    mean: torch.Tensor
    scale: torch.Tensor
    varying: torch.Tensor

    @classmethod
    def fit(cls, params: np.ndarray) -> Standardiser:
        std = params.std(axis=0)
        varying = std > CONSTANT_STD
        return cls(torch.from_numpy(params.mean(axis=0)), torch.from_numpy(np.where(varying, std, 1.0)).float(),
                   torch.from_numpy(varying))

    def loss(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Sum over groups of the group's standardised squared error summed over entries / its varying entries."""
        error = ((predicted - target) / self.scale).square().mean(dim=0)
        total, start = predicted.new_zeros(()), 0
        for size in DECA_PARAM_LAYOUT.values():
            part = slice(start, start + size)
            total = total + error[part].sum() / max(int(self.varying[part].sum()), 1)
            start += size
        return total


def load_face_layer(resources: Mapping[str, Any]) -> FlameLayer:
    """The face model of ``resources`` with its 105-landmark embedding (needed for the landmark term)."""
    if not resources.get("mediapipe_embedding"):
        raise ConfigError("resources.mediapipe_embedding is needed to train the stand-in DECA (landmark term)")
    return FlameLayer.from_files(resources["face_model"], mediapipe_embedding_path=resources["mediapipe_embedding"])


def projected_landmarks(layer: FlameLayer, params: torch.Tensor) -> torch.Tensor:
    """(B, 105, 2) normalised crop coordinates of the landmarks of (B, 236) parameters."""
    parts = split_deca_params(params)
    output = layer(parts["shape"][:, : layer.n_shape], parts["exp"][:, : layer.n_exp], parts["pose"])
    return project(output.landmarks105, parts["cam"])[..., :2]


def _fit(encoder: DecaCoarseEncoder, layer: FlameLayer, train: CropSet, targets: DecaTargets, input_size: int,
         config: Mapping[str, Any], seed: int, max_steps: int | None) -> dict[str, Any]:
    settings = training_settings(config, "deca")
    standardiser = Standardiser.fit(targets.params)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    total = steps_per_epoch(len(train), settings.batch_size) * settings.epochs
    if max_steps is not None:
        total = min(total, max_steps)
    # the regressor's last layer starts at the mean parameters
    with torch.no_grad():
        encoder.layers[2].bias.copy_(standardiser.mean)
        encoder.layers[2].weight.mul_(standardiser.scale[:, None] * 0.1)
    step, started, recent = 0, time.perf_counter(), []
    encoder.train()
    for epoch in range(settings.epochs):
        for index in batches(len(train), settings.batch_size, epoch, seed + 1):
            if step >= total:
                break
            cosine_lr(optimizer, settings.lr, step, total)
            images = resize(to_images(train.images[index]), input_size, input_size)
            predicted = encoder(images).params
            target = torch.from_numpy(targets.params[index])
            landmarks = projected_landmarks(layer, predicted)
            landmark_loss = (landmarks - torch.from_numpy(targets.landmarks[index])).norm(dim=-1).mean()
            loss = standardiser.loss(predicted, target) + LANDMARK_WEIGHT * landmark_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            recent.append(float(loss.detach()))
            step += 1
            if step % 50 == 0 or step == total:
                log.info("DECA: epoch %d, step %d/%d, loss %.4f (%.2f s/step)", epoch + 1, step, total,
                         np.mean(recent[-50:]), (time.perf_counter() - started) / step)
    seconds = time.perf_counter() - started
    return {"epochs": settings.epochs, "steps": step, "batch_size": settings.batch_size, "lr": settings.lr,
            "weight_decay": settings.weight_decay, "landmark_weight": LANDMARK_WEIGHT, "seconds": round(seconds, 1),
            "seconds_per_step": round(seconds / max(step, 1), 3),
            "final_loss": round(float(np.mean(recent[-50:])), 5) if recent else None}


@torch.inference_mode()
def predict_params(encoder: DecaCoarseEncoder, crops: np.ndarray, input_size: int, batch_size: int = 64) -> np.ndarray:
    """(N, 236) parameters of (N, S, S, 3) uint8 crops, with the feature stage's DECA input."""
    encoder.eval()
    outputs = [encoder(resize(to_images(crops[start:start + batch_size]), input_size, input_size)).params
               for start in range(0, len(crops), batch_size)]
    return torch.cat(outputs).numpy()


@torch.inference_mode()
def score_parameters(layer: FlameLayer, predicted: np.ndarray, targets: DecaTargets, crop_size: int,
                     varying: np.ndarray) -> dict[str, Any]:
    """Held-out errors: RMSE per group over its varying entries, landmarks (px, NME), expression vertices (mm)."""
    groups, start = {}, 0
    for name, size in DECA_PARAM_LAYOUT.items():
        part = slice(start, start + size)
        used = varying[part]
        difference = (predicted[:, part] - targets.params[:, part])[:, used] if used.any() else np.zeros((1, 1))
        groups[name] = {"rmse": round(float(np.sqrt(np.mean(difference ** 2))), 5), "entries": int(used.sum())}
        start += size
    pred = torch.from_numpy(predicted)
    true = torch.from_numpy(targets.params)
    landmarks = normalised_to_pixels(projected_landmarks(layer, pred).numpy(), crop_size)
    truth = normalised_to_pixels(targets.landmarks.astype(np.float64), crop_size)
    pixel_error = np.linalg.norm(landmarks - truth, axis=-1).mean(axis=1)
    nme = landmark_nme(landmarks, truth)
    pred_parts, true_parts = split_deca_params(pred), split_deca_params(true)
    jaw_only = torch.zeros_like(true_parts["pose"])
    shape = true_parts["shape"][:, : layer.n_shape]
    predicted_pose, true_pose = jaw_only.clone(), jaw_only.clone()
    predicted_pose[:, 3:], true_pose[:, 3:] = pred_parts["pose"][:, 3:], true_parts["pose"][:, 3:]
    predicted_mesh = layer(shape, pred_parts["exp"][:, : layer.n_exp], predicted_pose).vertices.numpy()
    true_mesh = layer(shape, true_parts["exp"][:, : layer.n_exp], true_pose).vertices.numpy()
    vertices = vertex_error_mm(predicted_mesh, true_mesh)
    scale_error = np.abs(pred_parts["cam"][:, 0] / true_parts["cam"][:, 0] - 1.0).numpy()
    return {
        "parameters": groups,
        "camera_scale_relative_error": round(float(np.mean(scale_error)), 5),
        "landmark_error_px": round(float(np.mean(pixel_error)), 4),
        "landmark_nme_interocular": round(float(np.nanmean(nme)), 5),
        "expression_vertex_error_mm": round(float(np.mean(vertices)), 4),
        "crop_size": crop_size,
    }


def train_deca(config: Mapping[str, Any], out: str | Path, score_path: str | Path,
               max_steps: int | None = None) -> dict[str, Any]:
    """Train, save and score the stand-in DECA coarse encoder.

    Args:
        config: a validated config (``resources.deca``, the face model of ``resources``, ``demo.detectors``).
        out: checkpoint to write (``deca_model.tar`` format).
        score_path: JSON file for the held-out scores.
        max_steps: stop after this many steps (smoke tests).
    Returns:
        The score record written to ``score_path``.
    """
    data = DetectorData.from_config(config)
    resources = config["resources"]
    section = resources["deca"]
    torch.manual_seed(data.seed)
    train, heldout = load_crops(data.train_dataset), load_crops(data.heldout_dataset)
    input_size = int(section["input_size"])
    log.info("DECA: %d training crops (%s), %d held-out crops (%s), crop %d px -> input %d", len(train),
             train.dataset, len(heldout), heldout.dataset, train.crop_size, input_size)
    layer = load_face_layer(resources)
    train_targets, heldout_targets = deca_targets(train), deca_targets(heldout)
    encoder = DecaCoarseEncoder(section["backbone"])
    training = _fit(encoder, layer, train, train_targets, input_size, config, data.seed, max_steps)
    save_deca_checkpoint(encoder, out, provenance=STAND_IN_PROVENANCE)
    reloaded = load_deca(out, backbone=section["backbone"])
    predicted = predict_params(reloaded, heldout.images, input_size)
    varying = train_targets.params.std(axis=0) > CONSTANT_STD
    scores = score_parameters(layer, predicted, heldout_targets, heldout.crop_size, varying)
    record = {
        "network": "deca",
        "provenance": STAND_IN_PROVENANCE,
        "checkpoint": str(out),
        "sha256": reloaded.checkpoint_info.sha256,
        "layout": {"backbone": section["backbone"], "crop_size": train.crop_size, "input_size": input_size,
                   "camera": "DECA (s, tx, ty) in the crop's normalised coordinates"},
        "datasets": {"train": train.dataset, "heldout": heldout.dataset},
        "samples": {"train": len(train), "heldout": len(heldout)},
        "detection": {train.dataset: train.detection, heldout.dataset: heldout.detection},
        "training": training,
        "heldout": scores,
    }
    write_text_atomic(score_path, json.dumps(record, indent=2) + "\n")
    log.info("DECA: held-out landmark error %.2f px (NME %.4f), expression vertex error %.2f mm -> %s",
             scores["landmark_error_px"], scores["landmark_nme_interocular"], scores["expression_vertex_error_mm"], out)
    return record
