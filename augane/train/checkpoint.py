"""GANE checkpoints: what training writes (``last.pt``, ``best.pt``) and how any stage reads them back.

A checkpoint is a plain ``torch.save`` dict that ``torch.load(...,
weights_only=True)`` reads (tensors, numbers, strings, lists, dicts only)::

    format            "augane-gane"            marks the file as a GANE checkpoint
    format_version    1
    model             {"section": the validated ``model:`` config section,
                       "num_aus": N, "node_dim": d, "global_dim": D, "expression_dim": 50}
                      -> GANE.from_config(section, num_aus, node_dim, global_dim, expression_dim)
    state_dict        GANE's weights (no DistributedDataParallel ``module.`` prefix)
    cache_layout      {"detector_aus", "afg_aus", "node_dim", "global_dim",
                       "param_layout": [[name, size], ...], "image_size"} of the cached features trained on
    cache_networks    the feature stage's network provenance (file names, sha256) of the training cache
    config            the resolved config of the run
    code              {"augane_version", "git_commit" (or None), "torch_version"}
    training          {"epoch", "step", "batch_in_epoch", "finished", "world_size",
                       "resume_digest", "best_value", "best_step", "best_metric"}
    metrics           validation metrics at this point ({"gane": {...}, "deca": {...}}; may be empty)
    optimizer         the optimiser's state_dict (None in weights-only exports)
    rng               one entry per training process (rank order): {"torch", "cuda", "numpy", "python"}

``last.pt`` also carries ``best_state_dict`` and ``best_metrics`` (the weights
and metrics of ``best.pt``), so that a resumed run can write ``best.pt``
again if it was removed.

``epoch`` counts finished epochs when ``batch_in_epoch`` is 0; otherwise the
run stopped ``batch_in_epoch`` batches into epoch ``epoch`` (0-based) and a
resumed run continues from the next batch.

Readers: :func:`load_gane_checkpoint` (model + :class:`CheckpointMetadata`,
for evaluation and reconstruction) and :func:`read_gane_checkpoint` (the raw
dict, for resuming training). Both raise :class:`CheckpointError` naming the
file when it is not a GANE checkpoint, or when it does not fit the cached
features it is used with (:meth:`CheckpointMetadata.check_layout`).
"""

from __future__ import annotations

import functools
import io
import logging
import random
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import augane
from augane.errors import CheckpointError
from augane.io.atomic import write_bytes_atomic
from augane.model import GANE
from augane.train.dataset import CacheLayout

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "augane-gane"
FORMAT_VERSION = 1
_REQUIRED = ("format", "format_version", "model", "state_dict", "cache_layout", "config", "code", "training")


# --- code version and random states ----------------------------------------------------


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """``git describe --always --dirty`` of the checkout holding the ``augane`` package, or None outside git."""
    folder = Path(augane.__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"],
            cwd=folder, capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def code_version() -> dict[str, Any]:
    """``{"augane_version", "git_commit", "torch_version"}`` of the running code."""
    return {"augane_version": augane.__version__, "git_commit": git_commit(), "torch_version": str(torch.__version__)}


def capture_rng_state() -> dict[str, Any]:
    """This process's random states (torch CPU and CUDA, numpy's global, Python's), weights-only serialisable."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "state": list(python_state), "gauss_next": gauss_next},
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Set the random states captured by :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        cuda = [s.cpu() for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            log.warning("checkpoint holds CUDA random states for %d devices, %d are visible; CUDA states not restored",
                        len(cuda), torch.cuda.device_count())
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss_next"]))


# --- layout -----------------------------------------------------------------------------


def layout_to_dict(layout: CacheLayout) -> dict[str, Any]:
    """A :class:`CacheLayout` as plain lists and numbers."""
    return {
        "detector_aus": list(layout.detector_aus),
        "afg_aus": list(layout.afg_aus),
        "node_dim": int(layout.node_dim),
        "global_dim": int(layout.global_dim),
        "param_layout": [[str(name), int(size)] for name, size in layout.param_layout],
        "image_size": int(layout.image_size),
    }


def layout_from_dict(values: Mapping[str, Any]) -> CacheLayout:
    """Inverse of :func:`layout_to_dict`."""
    return CacheLayout(
        detector_aus=tuple(values["detector_aus"]),
        afg_aus=tuple(values["afg_aus"]),
        node_dim=int(values["node_dim"]),
        global_dim=int(values["global_dim"]),
        param_layout=tuple((str(name), int(size)) for name, size in values["param_layout"]),
        image_size=int(values["image_size"]),
    )


# --- writing ----------------------------------------------------------------------------


def save_checkpoint(
    path: str | Path,
    gane: GANE,
    *,
    model_section: Mapping[str, Any],
    layout: CacheLayout,
    config: Mapping[str, Any],
    training: Mapping[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    rng_states: Sequence[Mapping[str, Any]] = (),
    metrics: Mapping[str, Any] | None = None,
    cache_networks: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a GANE checkpoint atomically (temporary sibling, then rename).

    Args:
        path: the ``.pt`` file.
        gane: the model (unwrapped, not the DistributedDataParallel wrapper).
        model_section: the validated ``model:`` config section it was built from.
        layout: the cached features' layout it consumes.
        config: the resolved config of the run.
        training: progress (see the module docstring's ``training`` keys).
        optimizer: its state is saved when given.
        rng_states: :func:`capture_rng_state` of every training process, rank order.
        metrics: validation metrics at this point.
        cache_networks: the feature stage's network provenance of the training cache.
        extra: further entries (e.g. ``best_state_dict``); they may not replace the standard ones.
    Returns:
        ``path``.
    """
    content = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "model": {
            "section": _plain(model_section),
            "num_aus": gane.num_aus,
            "node_dim": gane.node_dim,
            "global_dim": gane.global_dim,
            "expression_dim": gane.expression_dim,
        },
        "state_dict": {name: value.detach().cpu() for name, value in gane.state_dict().items()},
        "cache_layout": layout_to_dict(layout),
        "cache_networks": _plain(cache_networks or {}),
        "config": _plain(config),
        "code": code_version(),
        "training": _plain(training),
        "metrics": _plain(metrics or {}),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "rng": list(rng_states),
    }
    clashes = sorted(set(extra or {}) & set(content))
    if clashes:
        raise ValueError(f"extra checkpoint entries {clashes} would replace standard ones")
    content.update(extra or {})
    buffer = io.BytesIO()
    torch.save(content, buffer)
    write_bytes_atomic(path, buffer.getvalue())
    return Path(path)


def _plain(value: Any) -> Any:
    """Mappings and sequences as dicts and lists (tuples become lists; weights-only loading reads both)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- reading ----------------------------------------------------------------------------


@dataclass
class CheckpointMetadata:
    """Everything in a GANE checkpoint besides the weights.

    Attributes:
        path: the file.
        layout: the cache layout GANE was trained on (its input contract).
        model_section: the ``model:`` config section GANE was built from.
        config: the resolved config of the training run.
        code: augane version, git commit, torch version of the training code.
        training: progress (epoch, step, best value ...).
        metrics: validation metrics stored with it.
        cache_networks: network provenance (sha256) of the training cache.
    """

    path: Path
    layout: CacheLayout
    model_section: dict[str, Any]
    config: dict[str, Any]
    code: dict[str, Any]
    training: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    cache_networks: dict[str, Any] = field(default_factory=dict)

    @property
    def expression_dim(self) -> int:
        return int(dict(self.layout.param_layout).get("exp", 50))

    def check_layout(self, layout: CacheLayout) -> None:
        """Raise :class:`CheckpointError` unless ``layout`` (of the cache GANE is fed from) fits GANE's inputs.

        GANE reads the AFG nodes (order and size), DECA's global feature and
        DECA's ``exp``/``pose``/``cam``; the detector's full output order only
        matters for training losses and is not compared.
        """
        mine, theirs = self.layout, layout
        problems = []
        if tuple(mine.afg_aus) != tuple(theirs.afg_aus):
            problems.append(f"AFG node AUs {list(theirs.afg_aus)} instead of {list(mine.afg_aus)}")
        if mine.node_dim != theirs.node_dim:
            problems.append(f"AFG feature size d = {theirs.node_dim} instead of {mine.node_dim}")
        if mine.global_dim != theirs.global_dim:
            problems.append(f"DECA feature size D = {theirs.global_dim} instead of {mine.global_dim}")
        for name in ("exp", "pose", "cam"):
            trained, given = dict(mine.param_layout).get(name), dict(theirs.param_layout).get(name)
            if trained != given:
                problems.append(f"DECA parameter {name!r} of size {given} instead of {trained}")
        if problems:
            raise CheckpointError(
                f"GANE checkpoint {self.path} was trained on cached features of another layout: the cache it is "
                f"used with has {'; '.join(problems)}. Cache the features with the AU detector and DECA the "
                "checkpoint was trained with (see its cache_layout and cache_networks), or train on this cache."
            )


def read_gane_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw content of a GANE checkpoint (weights-only loading), validated.

    Raises:
        CheckpointError: the file is missing, unreadable, or not a GANE checkpoint of a known format version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"GANE checkpoint {path} does not exist")
    try:
        content = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{path} is not a readable GANE checkpoint (weights-only torch loading failed: {err})"
        ) from err
    if not isinstance(content, Mapping) or content.get("format") != CHECKPOINT_FORMAT:
        found = sorted(str(key) for key in content)[:12] if isinstance(content, Mapping) else type(content).__name__
        raise CheckpointError(
            f"{path} is not a GANE checkpoint written by `augane train` (expected format {CHECKPOINT_FORMAT!r}; "
            f"found {found})"
        )
    if content.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: GANE checkpoint format version {content.get('format_version')!r} is not supported by "
            f"augane {augane.__version__} (expected {FORMAT_VERSION})"
        )
    missing = [key for key in _REQUIRED if key not in content]
    if missing:
        raise CheckpointError(f"{path}: GANE checkpoint lacks the entries {missing}")
    return dict(content)


def metadata_from_content(path: str | Path, content: Mapping[str, Any]) -> CheckpointMetadata:
    """:class:`CheckpointMetadata` of a checkpoint dict read by :func:`read_gane_checkpoint`."""
    try:
        layout = layout_from_dict(content["cache_layout"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: malformed cache_layout in GANE checkpoint ({err})") from err
    return CheckpointMetadata(
        path=Path(path),
        layout=layout,
        model_section=dict(content["model"]["section"]),
        config=dict(content["config"]),
        code=dict(content["code"]),
        training=dict(content["training"]),
        metrics=dict(content.get("metrics") or {}),
        cache_networks=dict(content.get("cache_networks") or {}),
    )


def build_gane(path: str | Path, content: Mapping[str, Any]) -> GANE:
    """GANE rebuilt from a checkpoint's constructor settings, with its weights loaded strictly."""
    from augane.config import validate_config

    model = content["model"]
    try:
        section = validate_config({"model": dict(model["section"])}, source=f"{path} (model settings)")["model"]
        gane = GANE.from_config(section, int(model["num_aus"]), int(model["node_dim"]), int(model["global_dim"]),
                                expression_dim=int(model["expression_dim"]))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot rebuild GANE from the checkpoint's model settings ({err})") from err
    state = content["state_dict"]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: state_dict is a {type(state).__name__}, expected tensors by name")
    state = {(key[len("module."):] if key.startswith("module.") else key): value for key, value in state.items()}
    expected = gane.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(key for key in set(expected) & set(state) if tuple(expected[key].shape) != tuple(state[key].shape))
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{path}: weights do not fit the GANE its settings describe (missing {missing[:8]}, "
            f"unexpected {unexpected[:8]}, wrong shape {wrong[:8]})"
        )
    gane.load_state_dict(state, strict=True)
    return gane


def load_gane_checkpoint(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    layout: CacheLayout | None = None,
) -> tuple[GANE, CheckpointMetadata]:
    """Load a trained GANE for inference.

    Args:
        path: ``results/train/<run>/checkpoints/best.pt`` (or ``last.pt``).
        map_location: device of the returned model.
        layout: when given, the layout of the cache GANE will be fed from;
            checked with :meth:`CheckpointMetadata.check_layout`.
    Returns:
        (GANE in eval mode on ``map_location``, its metadata).
    Raises:
        CheckpointError: naming ``path``: not a GANE checkpoint, weights that do
            not fit, or a cache layout GANE cannot read.
    """
    content = read_gane_checkpoint(path, map_location="cpu")
    metadata = metadata_from_content(path, content)
    if layout is not None:
        metadata.check_layout(layout)
    gane = build_gane(path, content).to(map_location)
    gane.eval()
    return gane, metadata
