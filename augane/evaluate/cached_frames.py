"""Selected frames read back from a dataset's cache, in batches shaped like training's.

The evaluation reconstructs the (subject, frame) pairs chosen by
``augane evaluate-select`` from what the preprocess and feature stages
cached (ARCHITECTURE.md): per shard ``preprocess.zarr`` (crop, landmarks,
crop transform, status) and ``features.zarr`` (AU scores, AFG features,
DECA feature and parameters, EMOCA's expression and pose when cached).

A frame is *usable* when its features are ``valid`` (which the feature stage
sets only for preprocess status ok). Unusable frames are listed, never
read, so that the predictions can record them as "no output".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from augane.errors import DataError
from augane.io.manifest import shard_name
from augane.io.shards import open_store
from augane.preprocess.status import Status
from augane.train.dataset import CacheLayout, parse_au_name

#: Columns a frames table (``augane evaluate-select --frames-out``) must have to be read from the cache.
FRAME_COLUMNS: tuple[str, ...] = ("subject", "frame", "sample_id", "shard", "row")

_PREPROCESS = ("image", "landmarks_ndc", "transform", "source_size", "status")
_FEATURES = ("valid", "au_prob", "afg", "deca_feature", "deca_params")
_EMOCA = ("emoca_exp", "emoca_pose")


def read_frames_table(path: str | Path) -> pd.DataFrame:
    """Read and check a frames table (CSV or parquet) with :data:`FRAME_COLUMNS`.

    Raises:
        DataError: the file is missing or lacks columns.
    """
    from augane.evaluate.predictions import read_table

    table = read_table(path, "frames")
    missing = [column for column in FRAME_COLUMNS if column not in table.columns]
    if missing:
        raise DataError(
            f"{path}: the frames table lacks {missing}; write it with `augane evaluate-select --features "
            "<inputs table with sample_id, shard, row> --frames-out ...`"
        )
    if table[["shard", "row"]].isna().any().any():
        unknown = table.loc[table["shard"].isna() | table["row"].isna(), "sample_id"].head(3).tolist()
        raise DataError(f"{path}: frames without a shard/row in the cache, e.g. {unknown}")
    table = table.astype({"shard": np.int64, "row": np.int64, "frame": np.int64})
    table["subject"] = table["subject"].fillna("").astype(str)
    table["sample_id"] = table["sample_id"].astype(str)
    return table.reset_index(drop=True)


def layout_of_store(features: Any, preprocess: Any, where: Path) -> CacheLayout:
    """The :class:`CacheLayout` a features store (and its preprocess twin) describes in its attributes."""
    attrs = features.attrs
    for key in ("au_names", "afg_aus", "deca_layout"):
        if key not in attrs:
            raise DataError(f"{where / 'features.zarr'} lacks the attribute {key!r} (see ARCHITECTURE.md)")
    layout = attrs["deca_layout"]
    pairs = tuple(layout.items()) if isinstance(layout, Mapping) else tuple(layout)
    return CacheLayout(
        detector_aus=tuple(parse_au_name(name) for name in attrs["au_names"]),
        afg_aus=tuple(parse_au_name(name) for name in attrs["afg_aus"]),
        node_dim=int(features["afg"].shape[-1]),
        global_dim=int(features["deca_feature"].shape[-1]),
        param_layout=tuple((str(name), int(size)) for name, size in pairs),
        image_size=int(preprocess["image"].shape[1]),
    )


@dataclass
class FrameBatch:
    """Usable frames of one shard, read from the cache.

    Attributes:
        keys: (B rows) ``subject, frame, sample_id, shard, row`` of the frames.
        batch: the training-layout batch (see :mod:`augane.train.dataset`) on the requested device,
            plus ``emoca_exp``/``emoca_pose`` when cached.
        transform: (B, 2, 3) float64 source pixels -> crop pixels.
        source_size: (B, 2) source (width, height).
        crops: (B, S, S, 3) uint8 crops as cached.
    """

    keys: pd.DataFrame
    batch: dict[str, Any]
    transform: np.ndarray
    source_size: np.ndarray
    crops: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)


class CachedFrames:
    """The frames of ``frames`` in one dataset's cache.

    Args:
        cache_dir: ``results/cache/<dataset>``.
        frames: a frames table (:func:`read_frames_table`).
    """

    def __init__(self, cache_dir: str | Path, frames: pd.DataFrame) -> None:
        self.cache_dir = Path(cache_dir)
        missing = [column for column in FRAME_COLUMNS if column not in frames.columns]
        if missing:
            raise DataError(f"the frames table lacks {missing}")
        self.frames = frames.sort_values(["shard", "row"], kind="stable").reset_index(drop=True)
        self._layout: CacheLayout | None = None
        self._has_emoca: bool | None = None
        self.unusable: pd.DataFrame = self.frames.iloc[0:0].assign(reason="")

    def _shard_dir(self, shard: int) -> Path:
        return self.cache_dir / f"shard-{shard_name(shard)}"

    def _open(self, shard: int) -> tuple[Any, Any]:
        folder = self._shard_dir(shard)
        preprocess = open_store(folder / "preprocess.zarr", required=_PREPROCESS)
        features = open_store(folder / "features.zarr", required=_FEATURES)
        layout = layout_of_store(features, preprocess, folder)
        has_emoca = all(name in set(features.array_keys()) for name in _EMOCA)
        if self._layout is None:
            self._layout, self._has_emoca = layout, has_emoca
        elif layout != self._layout or has_emoca != self._has_emoca:
            raise DataError(
                f"{folder}: cached features differ from the other shards' ({layout} vs {self._layout}); "
                "rerun the features stage for the whole dataset"
            )
        return preprocess, features

    @property
    def layout(self) -> CacheLayout:
        """The cache layout (read from the first shard holding a selected frame)."""
        if self._layout is None:
            if self.frames.empty:
                raise DataError("no frames to reconstruct")
            self._open(int(self.frames["shard"].iloc[0]))
        return self._layout

    @property
    def has_emoca(self) -> bool:
        """Whether EMOCA's expression and pose were cached."""
        if self._has_emoca is None:
            self._open(int(self.frames["shard"].iloc[0]))
        return bool(self._has_emoca)

    def networks(self) -> dict[str, Any]:
        """The feature stage's network provenance (store attribute ``networks``) of the first shard."""
        _, features = self._open(int(self.frames["shard"].iloc[0]))
        return dict(features.attrs.get("networks") or {})

    def batches(self, batch_size: int, device: torch.device | str = "cpu") -> Iterator[FrameBatch]:
        """Yield the usable frames in batches of at most ``batch_size`` (one shard per batch, in row order).

        Unusable frames (features not valid, status not ok) are collected in :attr:`unusable`
        with a ``reason`` instead.

        Raises:
            DataError: a store lists another sample at a row than the frames table (stale tables).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        skipped = []
        for shard, keys in self.frames.groupby("shard", sort=True):
            preprocess, features = self._open(int(shard))
            self._check_ids(int(shard), keys, preprocess)
            rows = keys["row"].to_numpy()
            valid = np.asarray(features["valid"].oindex[rows], dtype=bool)
            status = np.asarray(preprocess["status"].oindex[rows])
            usable = valid & (status == int(Status.OK))
            if (~usable).any():
                names = [Status(int(code)).name.lower() for code in status[~usable]]
                skipped.append(keys[~usable].assign(reason=[f"preprocess status {n}" if n != "ok" else
                                                            "features not valid" for n in names]))
            keys = keys[usable]
            for start in range(0, len(keys), batch_size):
                yield self._read(preprocess, features, keys.iloc[start:start + batch_size], device)
        if skipped:
            self.unusable = pd.concat(skipped, ignore_index=True)

    def _check_ids(self, shard: int, keys: pd.DataFrame, preprocess: Any) -> None:
        stored = preprocess.attrs.get("sample_ids")
        if stored is None:
            return
        rows = keys["row"].to_numpy()
        if rows.max(initial=-1) >= len(stored):
            raise DataError(f"{self._shard_dir(shard)}: rows up to {rows.max()} requested, the store has {len(stored)}")
        found = np.asarray(stored, dtype=object)[rows]
        wrong = found != keys["sample_id"].to_numpy(dtype=object)
        if wrong.any():
            position = int(np.flatnonzero(wrong)[0])
            raise DataError(
                f"{self._shard_dir(shard)}: row {rows[position]} holds {found[position]!r}, the frames table says "
                f"{keys['sample_id'].iloc[position]!r}; the frames table is stale: rerun the evaluation's selection"
            )

    def _read(self, preprocess: Any, features: Any, keys: pd.DataFrame, device: torch.device | str) -> FrameBatch:
        rows = keys["row"].to_numpy()
        layout = self._layout

        def tensor(array: Any) -> torch.Tensor:
            return torch.from_numpy(np.asarray(array.oindex[rows], dtype=np.float32)).to(device)

        crops = np.asarray(preprocess["image"].oindex[rows])
        params = tensor(features["deca_params"])
        names, sizes = zip(*layout.param_layout)
        split = dict(zip(names, params.split(list(sizes), dim=1)))
        if split.get("light") is not None and split["light"].shape[1] == 27:
            split["light"] = split["light"].reshape(-1, 9, 3)
        batch: dict[str, Any] = {
            "image": torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float().div_(255.0),
            "landmarks_ndc": tensor(preprocess["landmarks_ndc"]),
            "au_prob": tensor(features["au_prob"]),
            "afg": tensor(features["afg"]),
            "deca_feature": tensor(features["deca_feature"]),
            "deca_params": split,
            "sample_id": keys["sample_id"].tolist(),
        }
        if self._has_emoca:
            batch["emoca_exp"] = tensor(features["emoca_exp"])
            batch["emoca_pose"] = tensor(features["emoca_pose"])
        return FrameBatch(
            keys=keys.reset_index(drop=True),
            batch=batch,
            transform=np.asarray(preprocess["transform"].oindex[rows], dtype=np.float64),
            source_size=np.asarray(preprocess["source_size"].oindex[rows]),
            crops=crops,
        )


def select_frames(frames: pd.DataFrame, pairs: Sequence[tuple[str, int]]) -> pd.DataFrame:
    """The rows of ``frames`` for the given (subject, frame) pairs (pairs absent from ``frames`` are dropped)."""
    wanted = pd.DataFrame(list(pairs), columns=["subject", "frame"]).astype({"subject": str, "frame": np.int64})
    return frames.merge(wanted, on=["subject", "frame"], how="inner")
