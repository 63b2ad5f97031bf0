"""Training samples from the cached shards: a map-style Dataset and a locality-aware batch sampler.

Reads, for one or more datasets, ``results/cache/<dataset>/index.parquet``
and ``features.parquet`` (to select samples without opening any store) and
per shard ``shard-XXXX/preprocess.zarr`` and ``shard-XXXX/features.zarr``
(the contract in ARCHITECTURE.md).

* Selection: a sample is used when its features are ``valid`` (the features
  stage computed them, which it does only for preprocess status ok) and,
  where the index carries it, its preprocess ``status`` is ok. Reading a
  batch re-checks both in the stores and raises :class:`DataError` if the
  index files and the stores disagree (stale index).
* Stores are opened lazily, in the process that reads (never in
  ``__init__``), and dropped when the dataset is pickled, so it can be
  sent to DataLoader workers (fork or spawn); a worker reopens what it needs.
* ``__getitems__`` reads a whole batch with one orthogonal selection per
  array and shard; :class:`ShardBatchSampler` builds batches from a few
  store chunks at a time, so that a batch decodes few chunks.
* Train/validation split (:func:`validation_mask`): by sample or by subject,
  seeded and deterministic, computed over every manifest row (before
  filtering), so which samples are held out does not change when a
  sample's features are recomputed.

One sample is a dict of tensors::

    image          float32 (3, S, S) in [0, 1]     the RGB crop
    landmarks_ndc  float32 (105, 2)                MediaPipe's 105 landmarks, normalised [-1, 1]
    au_prob        float32 (K,)                    AU detector scores, order ``detector_aus``
    afg            float32 (N, d)                  AU-specific features f_v, order ``afg_aus``
    deca_feature   float32 (D,)                    DECA's global feature X_DECA
    deca_params    {name: float32 tensor}          DECA's parameters split by the store's layout
                                                   (shape, tex, exp, pose, cam; light as (9, 3))
    gt_<name>      float32 (n,)                    ground-truth label groups ``gt_<name>_<i>``, when present
    au_intensity   int64 (L,)                      AU labels, order ``label_aus`` (-1 = not annotated), when present
    index          int64 ()                        position in this dataset
    dataset, sample_id  str
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from augane.errors import ConfigError, DataError
from augane.io.manifest import shard_name
from augane.io.shards import SAMPLE_CHUNK, open_store
from augane.preprocess.status import Status

#: Where the cached datasets live, relative to the working directory.
CACHE_ROOT = Path("results/cache")

SUBSETS = ("train", "val", "all")
SPLIT_BY = ("sample", "subject")

_PREPROCESS_ARRAYS = ("image", "landmarks_ndc", "status")
_FEATURE_ARRAYS = ("valid", "au_prob", "afg", "deca_feature", "deca_params")
_GT_COLUMN = re.compile(r"^gt_(?P<name>.+?)(?:_(?P<index>\d+))?$")
_AU_COLUMN = re.compile(r"^AU(\d+)$")


def parse_au_name(name: int | str) -> int | str:
    """An AU output name as stored (``4``, ``"AU4"``, ``"AU_L1"``, ``"L1"``) -> ``4`` or ``"L1"``."""
    if isinstance(name, (int, np.integer)):
        return int(name)
    text = str(name)
    match = re.fullmatch(r"AU(\d+)", text)
    if match:
        return int(match.group(1))
    return text[3:] if text.startswith("AU_") else text


@dataclass(frozen=True)
class CacheLayout:
    """What every shard of the selected datasets must agree on (read from the first store opened).

    Attributes:
        detector_aus: AU of each ``au_prob`` column (ints; sub-AU names as str).
        afg_aus: AU of each AFG node.
        node_dim: d, size of an AU-specific feature.
        global_dim: D, size of DECA's global feature.
        param_layout: DECA parameter name -> size, in stored order.
        image_size: S, crop side in pixels.
    """

    detector_aus: tuple[int | str, ...]
    afg_aus: tuple[int | str, ...]
    node_dim: int
    global_dim: int
    param_layout: tuple[tuple[str, int], ...]
    image_size: int

    @property
    def num_aus(self) -> int:
        """N, the number of AFG nodes."""
        return len(self.afg_aus)


def validation_mask(table: pd.DataFrame, val_fraction: float, split_by: str, seed: int) -> np.ndarray:
    """Which rows are held out for validation.

    Keys are ``<dataset>/<sample_id>`` (``split_by="sample"``) or
    ``<dataset>/<subject>`` (``"subject"``; a sample with an empty subject
    is its own key). The sorted unique keys are permuted with ``seed`` and
    the first ``round(val_fraction * keys)`` are held out — at least one
    and at most all but one when ``val_fraction > 0`` and there are two or
    more keys. All rows of a held-out key are held out.

    Args:
        table: rows with columns ``dataset``, ``sample_id`` and (for subjects) ``subject``.
    Returns:
        (len(table),) bool.
    """
    if split_by not in SPLIT_BY:
        raise ConfigError(f"train.split_by must be one of {SPLIT_BY}, got {split_by!r}")
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"train.val_fraction must be in [0, 1), got {val_fraction}")
    names = table["sample_id"].astype(str)
    if split_by == "subject":
        subjects = table["subject"].fillna("").astype(str)
        names = subjects.where(subjects != "", "sample:" + names)
    keys = (table["dataset"].astype(str) + "/" + names).to_numpy()
    unique, inverse = np.unique(keys, return_inverse=True)
    held_out = 0
    if val_fraction > 0 and len(unique) >= 2:
        held_out = min(max(int(round(val_fraction * len(unique))), 1), len(unique) - 1)
    chosen = np.zeros(len(unique), dtype=bool)
    chosen[np.random.default_rng(seed).permutation(len(unique))[:held_out]] = True
    return chosen[inverse]


def _read_tables(cache_dir: Path, dataset: str) -> pd.DataFrame:
    """``index.parquet`` joined with ``features.parquet`` of one dataset."""
    index_path, features_path = cache_dir / "index.parquet", cache_dir / "features.parquet"
    for path, stage in ((index_path, "preprocess"), (features_path, "features")):
        if not path.is_file():
            raise DataError(f"{path} does not exist; run the {stage} stage for dataset {dataset!r} first")
    index = pd.read_parquet(index_path)
    features = pd.read_parquet(features_path)
    checks = ((index_path, index, ("sample_id", "shard", "row")), (features_path, features, ("sample_id", "valid")))
    for path, frame, required in checks:
        missing = [column for column in required if column not in frame.columns]
        if missing:
            raise DataError(f"{path} lacks columns {missing} (has {list(frame.columns)})")
    extra = ["sample_id", *(column for column in features.columns if column not in index.columns)]
    try:
        table = index.merge(features[extra], on="sample_id", how="left", validate="one_to_one")
    except pd.errors.MergeError as err:
        raise DataError(f"{index_path} / {features_path}: sample_id is not unique: {err}") from err
    table["valid"] = table["valid"].eq(True)  # samples features.parquet does not list are not valid
    table.insert(0, "dataset", dataset)
    return table


def _usable(table: pd.DataFrame) -> np.ndarray:
    """Rows with valid features and (where recorded) preprocess status ok."""
    usable = table["valid"].to_numpy(dtype=bool)
    if "status" in table.columns:
        status = table["status"]
        if pd.api.types.is_numeric_dtype(status):
            usable &= status.fillna(-1).to_numpy() == int(Status.OK)
        else:
            usable &= status.astype(str).str.lower().to_numpy() == Status.OK.name.lower()
    return usable


def _label_groups(
    table: pd.DataFrame, datasets: Sequence[str], frames: Mapping[str, pd.DataFrame]
) -> dict[str, list[str]]:
    """``gt_<name>`` -> its columns in index order, for groups every dataset has in full."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for column in table.columns:
        match = _GT_COLUMN.match(column)
        if match:
            groups.setdefault(f"gt_{match.group('name')}", []).append((int(match.group("index") or 0), column))
    complete = {}
    for name, members in sorted(groups.items()):
        columns = [column for _, column in sorted(members)]
        if all(all(column in frames[dataset].columns for column in columns) for dataset in datasets):
            complete[name] = columns
    return complete


class CachedShardDataset(Dataset):
    """The cached samples of one or more datasets (see the module docstring for a sample's fields).

    Args:
        datasets: dataset names (folders under ``cache_root``).
        cache_root: folder holding ``<dataset>/index.parquet`` and the shards.
        subset: ``"train"``, ``"val"`` or ``"all"``.
        val_fraction, split_by, seed: the split (:func:`validation_mask`).
    """

    def __init__(
        self,
        datasets: Sequence[str],
        *,
        cache_root: str | Path = CACHE_ROOT,
        subset: str = "all",
        val_fraction: float = 0.0,
        split_by: str = "sample",
        seed: int = 0,
    ) -> None:
        if subset not in SUBSETS:
            raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
        if not datasets:
            raise ConfigError("no dataset to train on: train.datasets is empty")
        self.cache_root = Path(cache_root)
        self.datasets = tuple(datasets)
        self.subset = subset
        frames = {name: _read_tables(self.cache_root / name, name) for name in self.datasets}
        table = pd.concat(list(frames.values()), ignore_index=True)
        held_out = validation_mask(table, val_fraction, split_by, seed)
        keep = _usable(table)
        if subset == "train":
            keep &= ~held_out
        elif subset == "val":
            keep &= held_out
        table = table[keep].sort_values(["dataset", "shard", "row"], kind="stable").reset_index(drop=True)
        if table.empty:
            raise DataError(
                f"no usable {subset} samples in {[str(self.cache_root / name) for name in self.datasets]} "
                f"(valid features, status ok; val_fraction={val_fraction}, split_by={split_by})"
            )
        self._dataset_code = pd.Categorical(table["dataset"], categories=list(self.datasets)).codes.astype(np.int64)
        self._shard = table["shard"].to_numpy(dtype=np.int64)
        self._row = table["row"].to_numpy(dtype=np.int64)
        self._sample_id = table["sample_id"].astype(str).to_numpy()
        self.label_groups = _label_groups(table, self.datasets, frames)
        self._labels = {name: table[columns].to_numpy(dtype=np.float32) for name, columns in self.label_groups.items()}
        au_columns = sorted((c for c in table.columns if _AU_COLUMN.match(c)), key=lambda c: int(c[2:]))
        self.label_aus: tuple[int, ...] = tuple(int(c[2:]) for c in au_columns)
        self._au_intensity = table[au_columns].fillna(-1).to_numpy(dtype=np.int64) if au_columns else None
        self._layout: CacheLayout | None = None
        self._stores: dict[tuple[int, int], tuple[Any, Any]] = {}
        self._owner_pid: int | None = None

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], subset: str, cache_root: str | Path = CACHE_ROOT
    ) -> CachedShardDataset:
        """The ``train.datasets`` of a validated config, split by ``train.split_by``/``val_fraction`` and ``seed``."""
        train = config["train"]
        names = list(train["datasets"])
        if not names:
            raise ConfigError("train.datasets is empty: name at least one dataset declared under datasets:")
        unknown = [name for name in names if name not in config.get("datasets", {})]
        if unknown:
            declared = sorted(config.get("datasets", {}))
            raise ConfigError(f"train.datasets names {unknown}, which are not declared under datasets: ({declared})")
        return cls(
            names,
            cache_root=cache_root,
            subset=subset,
            val_fraction=float(train["val_fraction"]),
            split_by=train["split_by"],
            seed=int(config["seed"]),
        )

    def __len__(self) -> int:
        return len(self._row)

    # --- stores --------------------------------------------------------------------------

    def _shard_dir(self, code: int, shard: int) -> Path:
        return self.cache_root / self.datasets[code] / f"shard-{shard_name(shard)}"

    def _open(self, code: int, shard: int) -> tuple[Any, Any]:
        """The (preprocess, features) stores of one shard, opened once per process."""
        if self._owner_pid != os.getpid():
            self._stores, self._owner_pid = {}, os.getpid()
        key = (code, shard)
        if key not in self._stores:
            folder = self._shard_dir(code, shard)
            preprocess = open_store(folder / "preprocess.zarr", required=_PREPROCESS_ARRAYS)
            features = open_store(folder / "features.zarr", required=_FEATURE_ARRAYS)
            layout = _layout_of(preprocess, features, folder)
            if self._layout is None:
                self._layout = layout
            elif layout != self._layout:
                raise DataError(
                    f"{folder}: cached features differ from the other shards ({layout} vs {self._layout}); "
                    "every dataset trained together must be cached with the same AU detector and DECA"
                )
            self._stores[key] = (preprocess, features)
        return self._stores[key]

    def first_shard_dirs(self) -> dict[str, Path]:
        """Each dataset's first shard folder holding selected samples (to read store-level provenance)."""
        folders = {}
        for code, name in enumerate(self.datasets):
            shards = self._shard[self._dataset_code == code]
            if shards.size:
                folders[name] = self._shard_dir(code, int(shards.min()))
        return folders

    @property
    def layout(self) -> CacheLayout:
        """AU orders and feature sizes of the cache (opens the first shard if nothing is open yet)."""
        if self._layout is None:
            self._open(int(self._dataset_code[0]), int(self._shard[0]))
        return self._layout

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_stores"], state["_owner_pid"] = {}, None
        return state

    # --- reading -------------------------------------------------------------------------

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Read the samples ``indices`` with one selection per array and shard."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"sample indices must be in [0, {len(self)}), got {indices.min()}..{indices.max()}")
        samples: list[dict[str, Any] | None] = [None] * len(indices)
        groups = pd.DataFrame({"code": self._dataset_code[indices], "shard": self._shard[indices]}).groupby(
            ["code", "shard"], sort=False
        )
        for (code, shard), positions in groups.indices.items():
            for position, sample in zip(positions, self._read_shard(int(code), int(shard), indices[positions])):
                samples[position] = sample
        return samples

    def _read_shard(self, code: int, shard: int, indices: np.ndarray) -> list[dict[str, Any]]:
        preprocess, features = self._open(code, shard)
        rows, inverse = np.unique(self._row[indices], return_inverse=True)
        self._check_rows(code, shard, rows, preprocess, features)
        layout = self._layout
        image = torch.from_numpy(preprocess["image"].oindex[rows]).permute(0, 3, 1, 2).float().div_(255.0)
        landmarks = torch.from_numpy(np.asarray(preprocess["landmarks_ndc"].oindex[rows], dtype=np.float32))
        au_prob = torch.from_numpy(np.asarray(features["au_prob"].oindex[rows], dtype=np.float32))
        afg = torch.from_numpy(np.asarray(features["afg"].oindex[rows], dtype=np.float32))
        deca_feature = torch.from_numpy(np.asarray(features["deca_feature"].oindex[rows], dtype=np.float32))
        params = torch.from_numpy(np.asarray(features["deca_params"].oindex[rows], dtype=np.float32))
        names, sizes = zip(*layout.param_layout)
        split = dict(zip(names, params.split(list(sizes), dim=1)))
        if "light" in split and split["light"].shape[1] == 27:
            split["light"] = split["light"].reshape(-1, 9, 3)
        dataset = self.datasets[code]
        samples = []
        for index, row in zip(indices, inverse):
            sample = {
                "image": image[row],
                "landmarks_ndc": landmarks[row],
                "au_prob": au_prob[row],
                "afg": afg[row],
                "deca_feature": deca_feature[row],
                "deca_params": {name: value[row] for name, value in split.items()},
                "index": torch.tensor(int(index)),
                "dataset": dataset,
                "sample_id": str(self._sample_id[index]),
            }
            for name, values in self._labels.items():
                sample[name] = torch.from_numpy(values[index])
            if self._au_intensity is not None:
                sample["au_intensity"] = torch.from_numpy(self._au_intensity[index])
            samples.append(sample)
        return samples

    def _check_rows(self, code: int, shard: int, rows: np.ndarray, preprocess: Any, features: Any) -> None:
        valid = np.asarray(features["valid"].oindex[rows], dtype=bool)
        status = np.asarray(preprocess["status"].oindex[rows])
        bad = rows[~valid | (status != int(Status.OK))]
        if bad.size:
            raise DataError(
                f"{self._shard_dir(code, shard)}: rows {bad.tolist()} are not usable (features not valid or "
                "status not ok) although the dataset's index.parquet/features.parquet say they are; "
                "the index files are stale: rerun the preprocess/features gather steps"
            )


def _attribute(group: Any, array: str, *keys: str) -> Any:
    """The first of ``keys`` found among the store's attributes, else among the array's."""
    for attributes in (group.attrs, group[array].attrs):
        for key in keys:
            if key in attributes:
                return attributes[key]
    return None


def _layout_of(preprocess: Any, features: Any, folder: Path) -> CacheLayout:
    au_names = _attribute(features, "au_prob", "au_names")
    afg_aus = _attribute(features, "afg", "afg_aus")
    layout = _attribute(features, "deca_params", "layout", "deca_layout")
    for key, value in (("au_names", au_names), ("afg_aus", afg_aus), ("layout (or deca_layout)", layout)):
        if value is None:
            raise DataError(f"{folder / 'features.zarr'} lacks the attribute {key!r} (see ARCHITECTURE.md)")
    if isinstance(layout, Mapping):
        layout = tuple((str(name), int(size)) for name, size in layout.items())
    else:
        layout = tuple((str(name), int(size)) for name, size in layout)
    shapes = {name: features[name].shape for name in _FEATURE_ARRAYS}
    expected = {
        "au_prob": (len(au_names),),
        "afg": (len(afg_aus), shapes["afg"][-1]),
        "deca_params": (sum(size for _, size in layout),),
    }
    for name, tail in expected.items():
        if tuple(shapes[name][1:]) != tail:
            raise DataError(
                f"{folder / 'features.zarr'}: array {name!r} has shape {shapes[name]}, "
                f"expected (n, {', '.join(map(str, tail))}) from the store's attributes"
            )
    missing = [name for name in ("exp", "pose", "cam") if name not in dict(layout)]
    if missing:
        raise DataError(f"{folder / 'features.zarr'}: deca_params layout {dict(layout)} lacks {missing}")
    return CacheLayout(
        detector_aus=tuple(parse_au_name(name) for name in au_names),
        afg_aus=tuple(parse_au_name(name) for name in afg_aus),
        node_dim=int(shapes["afg"][-1]),
        global_dim=int(shapes["deca_feature"][-1]),
        param_layout=layout,
        image_size=int(preprocess["image"].shape[1]),
    )


class ShardBatchSampler(Sampler[list[int]]):
    """Batches of indices of a :class:`CachedShardDataset` that touch few store chunks.

    Each epoch, with ``shuffle``, the dataset's chunks (runs of
    ``SAMPLE_CHUNK`` consecutive rows of one shard) are put in random order
    and taken ``chunks_per_pool`` at a time; the samples of a pool are
    shuffled together and cut into batches, so a batch mixes samples from
    about ``chunks_per_pool`` chunks instead of decoding one chunk per
    sample. Without ``shuffle`` the order is the dataset's.

    For distributed training, rank ``r`` of ``num_replicas`` takes every
    ``num_replicas``-th batch, the list being padded by repeating its first
    batches so that every rank runs the same number of steps. The order
    depends only on ``seed`` and the epoch (:meth:`set_epoch`).
    """

    def __init__(
        self,
        dataset: CachedShardDataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        chunks_per_pool: int = 4,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1 or chunks_per_pool < 1:
            raise ValueError(f"batch_size and chunks_per_pool must be positive, got {batch_size}, {chunks_per_pool}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.chunks_per_pool = chunks_per_pool
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        # The dataset is sorted by (dataset, shard, row): chunks are runs of equal keys.
        keys = np.stack([dataset._dataset_code, dataset._shard, dataset._row // SAMPLE_CHUNK], axis=1)
        boundaries = np.flatnonzero(np.any(np.diff(keys, axis=0) != 0, axis=1)) + 1
        self._chunks = np.split(np.arange(len(dataset)), boundaries)
        self._size = len(dataset)

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` for the next iteration."""
        self.epoch = epoch

    def _batches(self) -> list[np.ndarray]:
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            chunks = [self._chunks[i] for i in rng.permutation(len(self._chunks))]
            pools = [
                np.concatenate(chunks[start : start + self.chunks_per_pool])
                for start in range(0, len(chunks), self.chunks_per_pool)
            ]
            order = np.concatenate([rng.permutation(pool) for pool in pools])
        else:
            order = np.arange(self._size)
        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.num_replicas > 1 and batches:
            padded = -(-len(batches) // self.num_replicas) * self.num_replicas
            batches = (batches * (padded // len(batches) + 1))[:padded]
            batches = batches[self.rank :: self.num_replicas]
        return batches

    def __iter__(self):
        for batch in self._batches():
            yield batch.tolist()

    def __len__(self) -> int:
        batches = self._size // self.batch_size if self.drop_last else -(-self._size // self.batch_size)
        return -(-batches // self.num_replicas)


def move_to(batch: Any, device: torch.device | str, non_blocking: bool = True) -> Any:
    """A batch (nested dicts/lists of tensors and other values) with every tensor on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return {key: move_to(value, device, non_blocking) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], (torch.Tensor, Mapping)):
        return type(batch)(move_to(value, device, non_blocking) for value in batch)
    return batch
