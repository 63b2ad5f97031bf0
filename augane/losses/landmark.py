"""AU-weighted landmark reprojection loss L_auLmk (paper eq. 5).

Eq. 5 sums, over the AUs i of the paper's Table 1 and the landmarks j of
each AU's facial part, ``p_i * ||k_j - (s * Pi(M_j) + t)||_1``: image
landmarks ``k`` against the model's 105 landmarks projected with the
predicted camera (:func:`project_landmarks`, i.e. :func:`augane.flame.camera.project`).

Table 1 (:data:`augane.landmarks.AU_REGIONS`), AU names -> FACS numbers
-> facial part (positions among the 105 landmarks):

==========================================  ===========  ==================================
AU (Table 1 name)                           FACS number  part (landmarks)
==========================================  ===========  ==================================
Brow Lowerer                                AU4          Brow (0-19, 20)
Inner Brow Raiser                           AU1          Inner brow (12)
Outer Brow Raiser                           AU2          Outer brow = Brow - Inner brow (8)
Lid Tightener                               AU7          Eye (20-51, 32)
Cheek Raiser                                AU6          Lower eye (18)
Upper Lid Raiser                            AU5          Upper eye = Eye - Lower eye (14)
Nose Wrinkler                               AU9          Nose (52-64, 13)
Lip Pucker, Lip Stretcher, Lip Tightener    AU18, 20, 23 Mouth (65-104, 40)
Upper Lip Raiser                            AU10         Upper mouth (22)
Lip Corner Puller, Lip Corner Depressor     AU12, AU15   Mouth corner (22)
==========================================  ===========  ==================================

Choices this implementation makes (eq. 5 leaves them open):

* Activation ``p_i``: the AU detector's output on the input image, taken
  from the cached ``au_prob`` through the detector's AU order
  (:func:`augane.aus.indices_in`). ``activation="score"`` (default) uses the
  raw score clamped to [0, 1] — ME-GraphAU/OpenGraphAU emit a cosine
  similarity in [-1, 1] (negative = clearly absent), so clamping keeps the
  detector's confidence as a soft weight and gives zero weight to absent
  AUs; ``activation="binary"`` uses ``score >= threshold`` (the detector's
  decision, 0.5 for the released models) as a hard 0/1 weight. ``p`` is
  data, never differentiated.
* Missing AUs: an AU of Table 1 that the detector does not emit (e.g. the
  DISFA 8-AU model lacks AU5, AU7, AU10, AU15, AU18, AU20, AU23) has no
  ``p_i``; its term is dropped, and the dropped AUs are logged once per
  detector AU order and listed by :func:`au_region_coverage`.
* Normalisation: the double sum of eq. 5 is divided by the constant
  ``sum_i L_i`` over the AUs kept (L_i = landmarks of AU i's part, counted
  once per AU), then averaged over the batch. This is eq. 5 times a
  constant, so the relative weight of every AU and landmark (and the
  gradient direction) is exactly eq. 5's; only the overall scale changes,
  which becomes a p-weighted per-landmark mean L1 error in normalised
  image coordinates, independent of how many AUs the detector has and of
  the size of their parts.
* The L1 norm of a landmark error is ``|dx| + |dy|`` in DECA's normalised
  image coordinates ([-1, 1] across the crop).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from augane.aus import indices_in
from augane.errors import DataError
from augane.flame.camera import project
from augane.landmarks import AU_REGIONS, NUM_LANDMARKS

LOGGER = logging.getLogger(__name__)

ACTIVATIONS = ("score", "binary")


@dataclass(frozen=True)
class RegionTable:
    """Table 1 resolved against one detector's AU order.

    Attributes:
        used: Table 1 AUs the detector emits, in Table 1 order.
        missing: Table 1 AUs it lacks (their terms are dropped).
        columns: for each AU of ``used``, its column in the detector output.
        membership: (len(used), 105) 0/1, landmark j belongs to AU i's part.
        normaliser: sum of the parts' sizes over ``used`` (sum_i L_i).
    """

    used: tuple[int, ...]
    missing: tuple[int, ...]
    columns: tuple[int, ...]
    membership: Tensor
    normaliser: int


@functools.lru_cache(maxsize=16)
def _region_table(detector_aus: tuple[int | str, ...], regions_key: tuple) -> RegionTable:
    regions = dict(regions_key)
    table_aus = tuple(regions)
    columns = indices_in(table_aus, detector_aus)
    used = tuple(au for au in table_aus if au in columns)
    missing = tuple(au for au in table_aus if au not in columns)
    if not used:
        raise DataError(
            f"the AU detector's outputs {list(detector_aus)} contain none of the AUs of the paper's Table 1 "
            f"({list(table_aus)}); the AU-weighted landmark loss cannot weight any facial part"
        )
    if missing:
        LOGGER.warning(
            "AU-weighted landmark loss: the AU detector (outputs %s) lacks Table 1 AUs %s; their terms are dropped",
            list(detector_aus),
            list(missing),
        )
    membership = torch.zeros(len(used), NUM_LANDMARKS)
    for row, au in enumerate(used):
        membership[row, list(regions[au])] = 1.0
    return RegionTable(
        used=used,
        missing=missing,
        columns=tuple(columns[au] for au in used),
        membership=membership,
        normaliser=int(membership.sum().item()),
    )


def au_region_coverage(
    detector_aus: Sequence[int | str], regions: Mapping[int, Sequence[int]] = AU_REGIONS
) -> RegionTable:
    """Which Table 1 AUs a detector covers (``used``) and which terms are dropped (``missing``).

    Args:
        detector_aus: the detector's output order (AU numbers; sub-AU names
            such as ``"L1"`` are ignored).
        regions: AU number -> positions among the 105 landmarks (Table 1).
    """
    return _region_table(tuple(detector_aus), tuple((au, tuple(part)) for au, part in regions.items()))


def au_activation(scores: Tensor, activation: str = "score", threshold: float = 0.5) -> Tensor:
    """Detector scores -> weights p in [0, 1] (``score``: clamped; ``binary``: ``score >= threshold``)."""
    if activation == "score":
        return scores.clamp(0.0, 1.0)
    if activation == "binary":
        return (scores >= threshold).to(scores.dtype)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def project_landmarks(points: Tensor, cam: Tensor) -> Tensor:
    """Model-space landmarks (B, 105, 3) -> (B, 105, 2) normalised image coordinates with camera (B, 3)."""
    return project(points, cam)[..., :2]


def au_landmark_loss(
    predicted: Tensor,
    target: Tensor,
    au_prob: Tensor,
    detector_aus: Sequence[int | str],
    *,
    activation: str = "score",
    threshold: float = 0.5,
    regions: Mapping[int, Sequence[int]] = AU_REGIONS,
) -> dict[str, Tensor]:
    """L_auLmk (eq. 5), normalised as described in the module docstring.

    Args:
        predicted: (B, 105, 2) projected model landmarks, normalised image coordinates.
        target: (B, 105, 2) image landmarks (the cache's ``landmarks_ndc``).
        au_prob: (B, K) detector scores on the input image, in ``detector_aus`` order.
        detector_aus: the detector's K outputs (AU numbers, sub-AU names ignored).
        activation, threshold: how scores become p (see :func:`au_activation`).
        regions: Table 1 (AU -> landmark positions).
    Returns:
        ``{"au_landmark": scalar}``.
    """
    _check_landmarks(predicted, target)
    if au_prob.ndim != 2 or au_prob.shape != (predicted.shape[0], len(detector_aus)):
        raise ValueError(
            f"au_prob must be (B={predicted.shape[0]}, K={len(detector_aus)}) in the detector's order, "
            f"got {tuple(au_prob.shape)}"
        )
    table = au_region_coverage(detector_aus, regions)
    weights = au_activation(au_prob.detach()[:, list(table.columns)], activation, threshold)
    membership = table.membership.to(device=predicted.device, dtype=predicted.dtype)
    landmark_weight = weights.to(predicted.dtype) @ membership  # (B, 105): sum_i p_i [j in part i]
    error = (predicted - target).abs().sum(dim=-1)  # (B, 105): L1 over (x, y)
    loss = (landmark_weight * error).sum(dim=1) / table.normaliser
    return {"au_landmark": loss.mean()}


def _check_landmarks(predicted: Tensor, target: Tensor) -> None:
    expected = (NUM_LANDMARKS, 2)
    if predicted.ndim != 3 or predicted.shape[1:] != expected or predicted.shape != target.shape:
        raise ValueError(
            f"predicted and target landmarks must both be (B, {NUM_LANDMARKS}, 2) normalised image "
            f"coordinates, got {tuple(predicted.shape)} and {tuple(target.shape)}"
        )
