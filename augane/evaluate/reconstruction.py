"""One reconstruction path for the evaluation and for users' media: parameters -> FLAME -> render -> AU detector.

Every reconstruction in AUGANE goes through the training objective itself
(:class:`augane.train.objective.AuObjective`): DECA's shape, albedo and light
with a method's expression, pose and camera are decoded by the training
:class:`~augane.train.face.FaceDecoder` (FLAME-format model, UV albedo,
:class:`~augane.render.renderer.MeshRenderer` from ``render:``), the render
is composited over the input crop exactly as in training, and the frozen AU
detector (its differentiable preprocessing, the precision of the feature
stage) runs on the composite. Only the source of ``exp``, ``pose`` and
``cam`` differs between methods:

==========  ==================================================================
``augane``  GANE (a checkpoint written by ``augane train``) from the cached
            AFG features, DECA's feature and DECA's own estimate
            (:meth:`augane.train.objective.TrainingStep.predict`)
``deca``    DECA's own cached estimate (:func:`augane.train.objective.deca_estimate`)
``emoca``   EMOCA's expression and pose (``emoca_exp``, ``emoca_pose``) with
            DECA's camera. EMOCA keeps DECA's coarse encoder frozen, so DECA's
            cached shape, albedo, light and camera are EMOCA's own.
==========  ==================================================================

A batch is a dict in the layout of :mod:`augane.train.dataset` (``image``
(B, 3, S, S) in [0, 1], ``landmarks_ndc``, ``au_prob``, ``afg``,
``deca_feature``, ``deca_params`` by name) plus ``emoca_exp`` (B, 50) and
``emoca_pose`` (B, 6) for EMOCA.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from augane.errors import CheckpointError, ConfigError, DataError
from augane.features.networks import frozen_au_detector_from_config
from augane.model import GANE
from augane.train.checkpoint import CheckpointMetadata, load_gane_checkpoint
from augane.train.dataset import CacheLayout
from augane.train.face import FaceDecoder
from augane.train.objective import PREDICTED, AuObjective, LossSettings, Reconstruction, TrainingStep, deca_estimate

log = logging.getLogger(__name__)

#: Reconstruction methods, in the order of the paper's tables.
METHODS: tuple[str, ...] = ("augane", "deca", "emoca")

#: Where ``augane train`` writes the checkpoint evaluation uses, relative to the working directory.
TRAIN_CHECKPOINT = "results/train/{run_name}/checkpoints/best.pt"


def default_checkpoint(config: Mapping[str, Any]) -> Path:
    """The GANE checkpoint of the config's training run: ``results/train/<run_name>/checkpoints/best.pt``."""
    return Path(TRAIN_CHECKPOINT.format(run_name=config["run_name"]))


def check_method(method: str) -> str:
    """Raise :class:`ConfigError` unless ``method`` is one of :data:`METHODS`."""
    if method not in METHODS:
        raise ConfigError(f"unknown reconstruction method {method!r}; expected one of {list(METHODS)}")
    return method


def emoca_configured(config: Mapping[str, Any]) -> bool:
    """Whether ``resources.emoca.checkpoint`` is set (EMOCA is then cached and evaluated)."""
    return bool(config["resources"].get("emoca", {}).get("checkpoint"))


def describe_networks_mismatch(trained_on: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Networks whose checkpoint digest differs between GANE's training cache and the features used now.

    Args:
        trained_on: the checkpoint's ``cache_networks`` ({dataset: {"networks": provenance, ...}}).
        current: the provenance of the networks in use ({"au_detector": {"sha256", ...}, "deca": ...}).
    Returns:
        one sentence per differing network (empty when they agree or nothing is known).
    """
    problems = []
    for dataset, entry in trained_on.items():
        networks = (entry or {}).get("networks") or {}
        for name in ("au_detector", "deca"):
            trained, used = (networks.get(name) or {}).get("sha256"), (current.get(name) or {}).get("sha256")
            if trained and used and trained != used:
                problems.append(
                    f"{name}: GANE was trained on features of {dataset!r} from {trained[:12]}..., "
                    f"the features used now come from {used[:12]}..."
                )
    return problems


def load_gane(
    path: str | Path, layout: CacheLayout, device: torch.device, networks: Mapping[str, Any] | None = None
) -> tuple[GANE, CheckpointMetadata]:
    """A trained GANE for ``layout``'s features (eval mode on ``device``), with a warning when the feature
    networks differ from those of its training cache.

    Raises:
        CheckpointError: naming the file: missing (with how to make one), not a GANE checkpoint, or trained on
            features of another layout.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no GANE checkpoint at {path}: train one (`snakemake train`, or `augane train`), pass another with "
            "--checkpoint, or reconstruct with a baseline (--method deca)"
        )
    gane, metadata = load_gane_checkpoint(path, map_location=device, layout=layout)
    for problem in describe_networks_mismatch(metadata.cache_networks, networks or {}):
        log.warning("%s: %s; its predictions are not meaningful on these features", path, problem)
    if any((entry or {}).get("untrained_weights") for entry in metadata.cache_networks.values()):
        log.warning("%s was trained on features from UNTRAINED development networks", path)
    return gane, metadata


class Reconstructor:
    """Reconstructs batches with one method through the training objective (see the module docstring).

    Args:
        method: ``augane``, ``deca`` or ``emoca``.
        objective: the training objective (face decoder, renderer, frozen AU detector).
        gane: the trained GANE, for ``augane``.
        bf16: GANE under bf16 autocast on CUDA (as the AU detector inside ``objective``).
    """

    def __init__(self, method: str, objective: AuObjective, gane: GANE | None = None, *, bf16: bool = False) -> None:
        self.method = check_method(method)
        if method == "augane" and gane is None:
            raise ValueError("the augane method needs a GANE")
        self.objective = objective.eval()
        self.step = TrainingStep(gane, objective, bf16=bf16).eval() if gane is not None else None
        self.checkpoint: CheckpointMetadata | None = None

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        method: str,
        layout: CacheLayout,
        device: torch.device,
        *,
        checkpoint: str | Path | None = None,
        networks: Mapping[str, Any] | None = None,
    ) -> Reconstructor:
        """Build the face decoder at the crop size, the frozen AU detector and (for ``augane``) GANE.

        Args:
            config: the validated config (``resources``, ``render``, ``losses``, ``features.bf16``).
            method: see :data:`METHODS`.
            layout: the cached (or freshly computed) features' layout; GANE's inputs are checked against it.
            device: where everything runs.
            checkpoint: GANE checkpoint (default :func:`default_checkpoint`).
            networks: provenance of the networks that made the features, to compare with GANE's training cache.
        Raises:
            ConfigError, CheckpointError, AssetError, DataError: naming what is missing or does not fit.
        """
        check_method(method)
        sizes = dict(layout.param_layout)
        missing = [name for name in ("shape", "tex", "light", *PREDICTED) if name not in sizes]
        if missing:
            raise DataError(f"the cached DECA parameters (layout {sizes}) lack {missing}, which reconstruction needs")
        bf16 = bool(config.get("features", {}).get("bf16", True))
        face = FaceDecoder.from_config(
            config, layout.image_size, shape_dim=sizes["shape"], expression_dim=sizes["exp"], tex_dim=sizes["tex"]
        ).to(device)
        detector = frozen_au_detector_from_config(config["resources"], device)
        objective = AuObjective(face, detector, layout, LossSettings.from_config(config), bf16=bf16)
        gane, metadata = None, None
        if method == "augane":
            gane, metadata = load_gane(checkpoint or default_checkpoint(config), layout, device, networks)
        reconstructor = cls(method, objective, gane, bf16=bf16)
        reconstructor.checkpoint = metadata
        return reconstructor

    @property
    def face(self) -> FaceDecoder:
        """The face decoder (FLAME layer, albedo, renderer) shared with training."""
        return self.objective.face

    @property
    def detector_aus(self) -> tuple[int | str, ...]:
        """AU of each column of the detector's output."""
        return self.objective.detector_aus

    def parameters(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """The method's ``exp`` (B, 50), ``pose`` (B, 6) and ``cam`` (B, 3), float32."""
        if self.method == "augane":
            return self.step.predict(batch)
        params = deca_estimate(batch)
        if self.method == "emoca":
            if "emoca_exp" not in batch or "emoca_pose" not in batch:
                raise DataError(
                    "EMOCA's expression and pose are not in the features (emoca_exp, emoca_pose): cache the features "
                    "with resources.emoca.checkpoint set"
                )
            params["exp"], params["pose"] = batch["emoca_exp"].float(), batch["emoca_pose"].float()
        return params

    @torch.no_grad()
    def __call__(self, batch: Mapping[str, Any]) -> Reconstruction:
        """Reconstruct, render over ``batch["image"]`` and run the AU detector on the render (no gradients;
        not inference mode, whose tensors GANE's cached graph edges would keep).

        Returns:
            the objective's :class:`~augane.train.objective.Reconstruction`: ``params``, ``face``
            (vertices, landmarks105 in metres), ``landmarks`` (B, 105, 2) projected, normalised crop
            coordinates, ``render`` (image (B, 3, S, S) composited over the crop, mask (B, 1, S, S)),
            ``rendered_prob`` (B, K) detector scores on the render, and the loss terms.
        """
        return self.objective(self.parameters(batch), batch, render=True)
