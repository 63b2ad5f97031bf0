"""The training objective (paper §III.B, eq. 4-8) and one training step, as pure composition.

For parameters ``{exp, pose, cam}`` (GANE's prediction, or DECA's own cached
estimate for the baseline) and a batch of cached samples::

    DECA shape + exp + pose --FLAME--> 105 landmarks --camera--> projected (B, 105, 2)
        -> L_auLmk (eq. 5, weighted by the detector's AU scores on the input)
        -> L_auRel (eq. 6, the 23 configural features)
    mesh + DECA tex (UV albedo) + DECA light --render over the input crop--> (B, 3, S, S)
        --frozen AU detector (its differentiable preprocessing)--> AFG of the render
        -> L_auFeat (eq. 7) against the cached AFG of the input
    exp, pose, cam vs DECA's cam -> L_reg (eq. 8)

Rigid parameters and L_auFeat: the rasteriser draws hard edges (as DECA's),
so where the silhouette or an occlusion boundary moves, pixels switch
between the face and the input crop with no gradient. L_auFeat's gradient
with respect to the camera and the global head rotation, which move the
whole silhouette, then only sees shading and texture sliding inside the face
and points the wrong way (measured on the tiny test world and the demo
world: the face drifts off the landmarks and the validation objective gets
worse). The jaw's sideways yaw and roll (``pose[:, 4:6]``) move the chin's
outline the same way; left to L_auFeat they wander (measured on the demo
world: 0.05-0.075 rad of spurious sideways jaw, which doubled the vertex
error against ground truth, while the landmark terms alone keep them within
0.013 rad). By default (``train.au_feature_rigid_gradients: false``) the
render for L_auFeat therefore uses the camera, the global rotation and the
jaw's yaw and roll detached: L_auFeat trains expression and jaw opening (as
EMOCA's perceptual expression loss trains only its expression branch),
L_auLmk, L_auRel and L_reg train everything.

Terms are named as the keys of ``losses.weights`` and summed with those
weights (:func:`augane.losses.weighted_total`). Every term is a mean over the
batch of a per-sample quantity, so a batch split across processes recombines
exactly as a weighted mean (see :mod:`augane.train.distributed`).

Precision: on CUDA with ``train.bf16``, GANE and the AU detector run under
bf16 autocast; FLAME, projection, rendering and the losses always run in
float32 (landmark errors are small differences of large coordinates).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from augane.errors import DataError
from augane.flame.layer import FlameOutput
from augane.losses import (
    au_feature_loss,
    au_landmark_loss,
    au_relative_loss,
    project_landmarks,
    regularisation_terms,
    weighted_total,
)
from augane.nets.au_preprocess import FrozenAuDetector
from augane.render.renderer import RenderOutput
from augane.train.dataset import CacheLayout
from augane.train.face import FaceDecoder

#: The parameters GANE predicts (the rest comes from DECA's cache).
PREDICTED = ("exp", "pose", "cam")

#: Every loss term the objective computes, in logging order.
TERM_NAMES = ("au_landmark", "au_relative", "au_feature", "reg_expression", "reg_pose", "reg_camera")


@dataclass(frozen=True)
class LossSettings:
    """``losses:`` and the detector threshold.

    Attributes:
        weights: term name -> weight (``losses.weights``).
        activation: how detector scores become the p_i of eq. 5 (``score`` or ``binary``).
        threshold: the detector's decision threshold (``resources.au_detector.threshold``).
    """

    weights: Mapping[str, float]
    activation: str = "score"
    threshold: float = 0.5

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LossSettings:
        losses = config["losses"]
        return cls(
            weights=dict(losses["weights"]),
            activation=losses["au_activation"],
            threshold=float(config["resources"]["au_detector"]["threshold"]),
        )

    @property
    def renders(self) -> bool:
        """Whether the total needs a render (L_auFeat has a non-zero weight)."""
        return bool(self.weights.get("au_feature", 0.0))


def precision_context(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked, else nothing."""
    if bf16 and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def full_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast switched off (inside a bf16 region)."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", enabled=False)
    return contextlib.nullcontext()


@dataclass
class Reconstruction:
    """What the objective computed for one batch.

    Attributes:
        terms: unweighted loss terms, each a scalar batch mean (float32).
        total: their weighted sum.
        params: the ``exp`` (B, 50), ``pose`` (B, 6), ``cam`` (B, 3) that were decoded.
        face: FLAME's output (vertices (B, V, 3), landmarks105 (B, 105, 3), metres).
        landmarks: (B, 105, 2) projected landmarks, normalised image coordinates.
        render: the render over the input crop, when one was made.
        rendered_prob: (B, K) detector scores on the render, when rendered.
        rendered_afg: (B, N, d) AFG features of the render, when rendered.
    """

    terms: dict[str, Tensor]
    total: Tensor
    params: dict[str, Tensor]
    face: FlameOutput
    landmarks: Tensor
    render: RenderOutput | None = None
    rendered_prob: Tensor | None = None
    rendered_afg: Tensor | None = None


class AuObjective(nn.Module):
    """The AU-based losses of parameters on a batch (no trainable parameters).

    Args:
        face: FLAME, albedo and renderer at the crop size.
        detector: the frozen AU detector (the one that made the cached features).
        layout: the cache layout (AU orders, parameter sizes).
        settings: loss weights and activation.
        bf16: run the detector under bf16 autocast on CUDA.
        rigid_feature_gradients: let L_auFeat's gradient reach the camera, the global
            head rotation and the jaw's yaw and roll (see the module docstring).
    Raises:
        DataError: the detector's outputs or AFG nodes differ from the cache's.
    """

    def __init__(
        self,
        face: FaceDecoder,
        detector: FrozenAuDetector,
        layout: CacheLayout,
        settings: LossSettings,
        *,
        bf16: bool = True,
        rigid_feature_gradients: bool = False,
    ) -> None:
        super().__init__()
        check_detector_matches(detector, layout)
        self.rigid_feature_gradients = rigid_feature_gradients
        self.face = face
        self.detector = detector
        self.detector_aus: tuple[int | str, ...] = tuple(layout.detector_aus)
        self.settings = settings
        self.bf16 = bf16

    def forward(self, params: Mapping[str, Tensor], batch: Mapping[str, Any], render: bool | None = None) -> Reconstruction:
        """Losses of ``params`` on ``batch``.

        Args:
            params: ``exp`` (B, 50), ``pose`` (B, 6), ``cam`` (B, 3).
            batch: a collated batch (see :mod:`augane.train.dataset`) on the objective's device.
            render: make the render and L_auFeat; default: when its weight is non-zero.
        """
        render = self.settings.renders if render is None else render
        device = batch["image"].device
        deca = batch["deca_params"]
        params = {name: params[name].float() for name in PREDICTED}
        terms: dict[str, Tensor] = {}
        with full_precision(device):
            face = self.face.decode(deca["shape"], params["exp"], params["pose"])
            landmarks = project_landmarks(face.landmarks105, params["cam"])
            target = batch["landmarks_ndc"]
            terms.update(au_landmark_loss(landmarks, target, batch["au_prob"], self.detector_aus,
                                          activation=self.settings.activation, threshold=self.settings.threshold))
            terms.update(au_relative_loss(landmarks, target))
            terms.update(regularisation_terms(params["exp"], params["pose"], params["cam"], deca["cam"]))
            rendered = None
            if render:
                vertices, cam = face.vertices, params["cam"]
                if not self.rigid_feature_gradients:
                    cam = cam.detach()
                    pose = torch.cat([params["pose"][:, :3].detach(), params["pose"][:, 3:4],
                                      params["pose"][:, 4:].detach()], dim=1)
                    vertices = self.face.decode(deca["shape"], params["exp"], pose).vertices
                rendered = self.face.render(vertices, cam, deca["tex"], deca["light"], batch["image"])
        prob = afg = None
        if rendered is not None:
            with precision_context(device, self.bf16):
                output = self.detector(rendered.image)
            prob, afg = output.prob.float(), output.afg.float()
            terms.update(au_feature_loss(batch["afg"], afg))
        weights = {name: self.settings.weights.get(name, 0.0) for name in terms}
        return Reconstruction(
            terms=terms,
            total=weighted_total(terms, weights),
            params=params,
            face=face,
            landmarks=landmarks,
            render=rendered,
            rendered_prob=prob,
            rendered_afg=afg,
        )


def check_detector_matches(detector: FrozenAuDetector, layout: CacheLayout) -> None:
    """Raise :class:`DataError` unless the detector emits the cache's AU outputs and AFG nodes.

    L_auFeat compares the cached AFG features with the detector's features of
    the render: both must come from the same detector.
    """
    from augane.train.dataset import parse_au_name

    network = detector.detector
    outputs = tuple(parse_au_name(name) for name in network.au_names)
    nodes = tuple(parse_au_name(name) for name in network.afg_aus)
    problems = []
    if outputs != tuple(layout.detector_aus):
        problems.append(f"outputs {list(outputs)} instead of the cache's {list(layout.detector_aus)}")
    if nodes != tuple(layout.afg_aus):
        problems.append(f"AFG nodes {list(nodes)} instead of {list(layout.afg_aus)}")
    if network.channels != layout.node_dim:
        problems.append(f"AFG feature size {network.channels} instead of {layout.node_dim}")
    if problems:
        source = network.checkpoint_info.path if network.checkpoint_info is not None else "the AU detector"
        raise DataError(
            f"{source} (resources.au_detector) is not the detector that cached the training features: it has "
            f"{'; '.join(problems)}. Train with the detector the features stage used."
        )


class TrainingStep(nn.Module):
    """One forward pass of training: batch -> GANE -> parameters -> :class:`AuObjective`.

    Args:
        gane: GANE, or GANE wrapped in DistributedDataParallel.
        objective: the losses.
        bf16: GANE under bf16 autocast on CUDA.
    """

    def __init__(self, gane: nn.Module, objective: AuObjective, *, bf16: bool = True) -> None:
        super().__init__()
        self.gane = gane
        self.objective = objective
        self.bf16 = bf16

    def predict(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """GANE's ``exp``, ``pose``, ``cam`` (float32) for a batch."""
        deca = batch["deca_params"]
        with precision_context(batch["afg"].device, self.bf16):
            out = self.gane(batch["afg"], batch["deca_feature"], {name: deca[name] for name in PREDICTED})
        return {name: out[name].float() for name in PREDICTED}

    def forward(self, batch: Mapping[str, Any], render: bool | None = None) -> Reconstruction:
        return self.objective(self.predict(batch), batch, render=render)


def deca_estimate(batch: Mapping[str, Any]) -> dict[str, Tensor]:
    """DECA's own cached ``exp``, ``pose``, ``cam`` for a batch (the baseline)."""
    return {name: batch["deca_params"][name].float() for name in PREDICTED}
