"""Validation metrics of a reconstruction, per sample, and their accumulation over a validation set.

Computed for GANE's parameters and, side by side, for DECA's own cached
estimate of the same images (the baseline GANE has to beat):

* ``loss`` and each loss term: the training objective on the validation set.
* ``landmark_nme``: mean over the 105 landmarks of the Euclidean distance
  between the projected model landmarks and MediaPipe's landmarks on the
  image, in the normalised image frame, divided by the image landmarks'
  outer-eye-corner distance (the usual NME normaliser); ``landmark_error_px``
  is the same mean distance in crop pixels.
* AU consistency between the render and the input, as seen by the frozen
  detector: ``au_feature`` (L_auFeat, eq. 7), ``au_prob_error`` (mean absolute
  difference of the detector's scores over its outputs) and ``au_agreement``
  (fraction of outputs whose decision at the detector threshold is the same).
* Against ground truth, when the dataset carries it (the demo world's
  ``gt_exp``, optionally ``gt_shape`` and ``gt_pose``):
  ``expression_error``, the L2 norm of the difference of the expression
  coefficients that move the face model's mesh (all 50 for FLAME; the demo
  face model uses the first 15, and values predicted for blend shapes that
  are zero change nothing and are not counted; ground truth padded with
  zeros when it has fewer), and
  ``vertex_error_mm``, the mean vertex distance in millimetres between the
  mesh of the predicted expression and jaw and that of the true ones, both
  built with the true identity (DECA's shape when ``gt_shape`` is absent) and
  zero global rotation, so the error measures expression alone — the
  convention of :mod:`augane.evaluate.geometry`.

Every metric is a mean over samples; :class:`MetricTotals` keeps sums and
counts so the values of several processes combine exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from augane.landmarks import MEDIAPIPE_105, MP_LEFT_EYE_OUTER, MP_RIGHT_EYE_OUTER
from augane.train.face import FaceDecoder
from augane.train.objective import Reconstruction

_OUTER_EYES = (MEDIAPIPE_105.index(MP_RIGHT_EYE_OUTER), MEDIAPIPE_105.index(MP_LEFT_EYE_OUTER))

#: Metrics where larger is better (all others: smaller is better).
HIGHER_IS_BETTER = frozenset({"au_agreement"})


def landmark_distances(predicted: Tensor, target: Tensor) -> Tensor:
    """(B, 105, 2) and (B, 105, 2) normalised coordinates -> (B,) mean Euclidean distance."""
    return (predicted - target).norm(dim=-1).mean(dim=1)


def landmark_nme(predicted: Tensor, target: Tensor) -> Tensor:
    """(B,) mean landmark distance over the target's outer-eye-corner distance."""
    right, left = _OUTER_EYES
    interocular = (target[:, left] - target[:, right]).norm(dim=-1).clamp_min(1e-6)
    return landmark_distances(predicted, target) / interocular


def au_consistency(input_prob: Tensor, rendered_prob: Tensor, threshold: float) -> dict[str, Tensor]:
    """(B, K) detector scores on the input and on the render -> ``au_prob_error`` and ``au_agreement``, each (B,)."""
    agreement = ((input_prob >= threshold) == (rendered_prob >= threshold)).float().mean(dim=1)
    return {"au_prob_error": (rendered_prob - input_prob).abs().mean(dim=1), "au_agreement": agreement}


def _fit(values: Tensor, size: int) -> Tensor:
    """(B, n) -> (B, size): zero-padded or cut."""
    if values.shape[1] >= size:
        return values[:, :size]
    return torch.cat([values, values.new_zeros(values.shape[0], size - values.shape[1])], dim=1)


def ground_truth_errors(face: FaceDecoder, params: Mapping[str, Tensor], batch: Mapping[str, Any]) -> dict[str, Tensor]:
    """``expression_error`` and ``vertex_error_mm`` (each (B,)) against ``gt_exp`` (+ ``gt_shape``, ``gt_pose``);
    empty when the batch has no ``gt_exp``."""
    if "gt_exp" not in batch:
        return {}
    flame = face.flame
    exp = params["exp"].float()
    true_exp = _fit(batch["gt_exp"].float(), exp.shape[1])
    shape = _fit(batch["gt_shape"].float(), flame.n_shape) if "gt_shape" in batch else batch["deca_params"]["shape"]
    true_pose = torch.zeros_like(params["pose"])
    if "gt_pose" in batch and batch["gt_pose"].shape[1] >= 6:
        true_pose[:, 3:] = batch["gt_pose"][:, 3:6].float()
    pose = torch.zeros_like(params["pose"])
    pose[:, 3:] = params["pose"][:, 3:].float()
    predicted = face.decode(shape, exp, pose).vertices
    truth = face.decode(shape, true_exp, true_pose).vertices
    in_use = face.expression_in_use[: exp.shape[1]].to(exp.dtype)
    return {
        "expression_error": ((exp - true_exp) * in_use).norm(dim=1),
        "vertex_error_mm": (predicted - truth).norm(dim=-1).mean(dim=1) * 1000.0,
    }


def sample_metrics(
    face: FaceDecoder, result: Reconstruction, batch: Mapping[str, Any], threshold: float
) -> dict[str, Tensor]:
    """Every per-sample metric of one reconstruction (see the module docstring), each (B,)."""
    target = batch["landmarks_ndc"]
    metrics = {
        "landmark_nme": landmark_nme(result.landmarks, target),
        "landmark_error_px": landmark_distances(result.landmarks, target) * (batch["image"].shape[-1] / 2.0),
    }
    if result.rendered_prob is not None:
        metrics.update(au_consistency(batch["au_prob"].float(), result.rendered_prob, threshold))
    metrics.update(ground_truth_errors(face, result.params, batch))
    return metrics


class MetricTotals:
    """Sums and counts of metrics over samples (to combine across batches and processes)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, float] = {}

    def add_means(self, values: Mapping[str, Tensor], count: int) -> None:
        """Add batch means (scalars) of ``count`` samples."""
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value) * count
            self.counts[name] = self.counts.get(name, 0.0) + count

    def add_samples(self, values: Mapping[str, Tensor], count: int) -> None:
        """Add per-sample values (B,), of which the first ``count`` are real samples."""
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value[:count].double().sum())
            self.counts[name] = self.counts.get(name, 0.0) + count

    def names(self) -> list[str]:
        return sorted(self.sums)

    def as_tensor(self, names: list[str]) -> Tensor:
        """(2, M) float64 sums and counts in the order of ``names`` (0 where absent)."""
        return torch.tensor([[self.sums.get(n, 0.0) for n in names], [self.counts.get(n, 0.0) for n in names]],
                            dtype=torch.float64)

    @staticmethod
    def means(names: list[str], totals: Tensor) -> dict[str, float]:
        """Means from (2, M) sums and counts; metrics without samples are left out."""
        return {name: float(s / c) for name, s, c in zip(names, totals[0].tolist(), totals[1].tolist()) if c > 0}
