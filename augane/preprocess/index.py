"""The per-dataset index: the manifest joined with each sample's preprocessing outcome.

``results/cache/<dataset>/index.parquet`` adds ``status`` (uint8 code),
``status_name``, ``confidence`` and ``face_count`` to the manifest, so that
later stages select samples without opening the stores.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from augane.errors import DataError
from augane.io.atomic import atomic_path
from augane.io.manifest import manifest_info, read_manifest, shard_name
from augane.io.shards import open_store
from augane.preprocess.status import status_codes, status_name

log = logging.getLogger(__name__)


def preprocess_store_path(cache_dir: str | Path, shard: int) -> Path:
    """``<cache_dir>/shard-XXXX/preprocess.zarr``."""
    return Path(cache_dir) / f"shard-{shard_name(shard)}" / "preprocess.zarr"


def gather_index(manifest_path: str | Path, out: str | Path) -> pd.DataFrame:
    """Join a dataset's manifest with the status, confidence and face count of its preprocess stores.

    The stores are found beside the manifest (``shard-XXXX/preprocess.zarr``).

    Raises:
        DataError: a store is missing or does not match its manifest rows.
    """
    manifest_path = Path(manifest_path)
    info = manifest_info(manifest_path)
    manifest = read_manifest(manifest_path)
    columns = {"status": [], "confidence": [], "face_count": []}
    for shard in range(info["num_shards"]):
        path = preprocess_store_path(manifest_path.parent, shard)
        store = open_store(path, required=list(columns))
        expected = manifest.loc[manifest["shard"] == shard, "sample_id"].tolist()
        if store.attrs.get("sample_ids") != expected:
            raise DataError(f"{path} does not hold the samples its manifest lists for shard {shard}; rerun preprocessing")
        for name in columns:
            columns[name].append(np.asarray(store[name][:]))
    index = manifest.copy()
    for name, parts in columns.items():
        index[name] = np.concatenate(parts) if parts else np.zeros(0)
    index["status_name"] = [status_name(code) for code in index["status"]]
    counts = index["status_name"].value_counts().to_dict()
    table = pa.Table.from_pandas(index, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[b"augane"] = json.dumps({**info, "status_codes": status_codes(), "status_counts": counts}).encode("utf-8")
    with atomic_path(out) as temporary:
        pq.write_table(table.replace_schema_metadata(metadata), temporary)
    log.info("%s: %d samples, %s", out, len(index), ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return index
