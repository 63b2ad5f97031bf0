"""The crops the stand-in detectors learn from: a dataset's preprocess stores with its manifest labels.

The stand-ins see exactly what the feature stage later feeds them: the
face crops of ``preprocess.zarr`` (MediaPipe's DECA-style crop of each
synthetic image), with the labels the manifest carries (``AU<k>`` and the
``gt_<name>_<i>`` ground truth of the demo world). Only samples whose
preprocess status is ``ok`` are used; the rest are counted
(:attr:`CropSet.detection`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from augane.errors import DataError
from augane.io.manifest import shard_name
from augane.io.shards import open_store
from augane.preprocess.status import Status

#: Where the cached datasets live, relative to the working directory (as the workflow writes them).
CACHE_ROOT = Path("results/cache")


@dataclass
class CropSet:
    """The usable crops of one dataset, in index order.

    Attributes:
        dataset: its name.
        images: (N, S, S, 3) uint8 RGB crops.
        transform: (N, 2, 3) source pixels -> crop pixels.
        source_size: (N, 2) source (width, height).
        labels: (N rows) the index rows (manifest columns: sample_id, subject, AU<k>, gt_*, ...).
        detection: ``{"samples", "ok", "rate", "statuses"}`` over every sample of the dataset.
    """

    dataset: str
    images: np.ndarray
    transform: np.ndarray
    source_size: np.ndarray
    labels: pd.DataFrame
    detection: dict

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def crop_size(self) -> int:
        return int(self.images.shape[1])


def load_crops(dataset: str, cache_root: str | Path = CACHE_ROOT) -> CropSet:
    """Read the ``ok`` crops of ``dataset`` from ``<cache_root>/<dataset>/`` (index.parquet and the shard stores).

    Raises:
        DataError: a missing index or store, a store that does not hold its manifest rows, or no usable crop.
    """
    folder = Path(cache_root) / dataset
    index_path = folder / "index.parquet"
    if not index_path.is_file():
        raise DataError(f"{index_path} does not exist; run the preprocess stage for dataset {dataset!r} first")
    index = pd.read_parquet(index_path)
    ok = index["status"].to_numpy() == int(Status.OK)
    counts = index["status_name"].value_counts().to_dict() if "status_name" in index.columns else {}
    detection = {"samples": int(len(index)), "ok": int(ok.sum()),
                 "rate": round(float(ok.mean()), 4) if len(index) else 0.0,
                 "statuses": {str(name): int(count) for name, count in sorted(counts.items())}}
    images, transforms, sizes = [], [], []
    for shard, rows in index[ok].groupby("shard", sort=True):
        path = folder / f"shard-{shard_name(int(shard))}" / "preprocess.zarr"
        store = open_store(path, required=["image", "transform", "source_size", "status"])
        expected = index.loc[index["shard"] == shard, "sample_id"].tolist()
        if store.attrs.get("sample_ids") != expected:
            raise DataError(f"{path} does not hold the samples {index_path} lists for shard {shard}; rerun preprocessing")
        positions = rows["row"].to_numpy()
        if not np.all(np.asarray(store["status"][:])[positions] == int(Status.OK)):
            raise DataError(f"{path}: statuses differ from {index_path}; rerun the gather step")
        images.append(np.asarray(store["image"][:])[positions])
        transforms.append(np.asarray(store["transform"][:])[positions])
        sizes.append(np.asarray(store["source_size"][:])[positions])
    if not images:
        raise DataError(f"dataset {dataset!r}: no sample has preprocess status ok ({detection['statuses']})")
    return CropSet(
        dataset=dataset,
        images=np.concatenate(images),
        transform=np.concatenate(transforms).astype(np.float64),
        source_size=np.concatenate(sizes).astype(np.int64),
        labels=index[ok].reset_index(drop=True),
        detection=detection,
    )
