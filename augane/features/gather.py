"""``results/cache/<dataset>/features.parquet``: validity and AU outputs of every sample, without opening stores."""

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

log = logging.getLogger(__name__)


def features_store_path(cache_dir: str | Path, shard: int) -> Path:
    """``<cache_dir>/shard-XXXX/features.zarr``."""
    return Path(cache_dir) / f"shard-{shard_name(shard)}" / "features.zarr"


def gather_features(manifest_path: str | Path, out: str | Path) -> pd.DataFrame:
    """Write ``features.parquet``: ``sample_id``, ``shard``, ``row``, ``valid`` and ``prob_AU<k>`` per output.

    The stores are found beside the manifest (``shard-XXXX/features.zarr``);
    invalid samples have NaN probabilities. The parquet metadata ``augane``
    records the detector and checkpoint digests of the stores.

    Raises:
        DataError: a store is missing, lists other samples than its manifest
            rows, or was computed with another detector than the other shards.
    """
    manifest_path = Path(manifest_path)
    info = manifest_info(manifest_path)
    manifest = read_manifest(manifest_path)
    parts, reference = [], None
    for shard in range(info["num_shards"]):
        path = features_store_path(manifest_path.parent, shard)
        store = open_store(path, required=["valid", "au_prob"])
        rows = manifest.loc[manifest["shard"] == shard, ["sample_id", "shard", "row"]].reset_index(drop=True)
        if store.attrs.get("sample_ids") != rows["sample_id"].tolist():
            raise DataError(f"{path} does not hold the samples its manifest lists for shard {shard}; rerun the features stage")
        signature = {"au_names": store.attrs["au_names"], "networks": store.attrs["networks"]}
        if reference is None:
            reference = signature
        elif signature != reference:
            raise DataError(f"{path} was computed with other networks than shard 0000 (settings changed?); rerun the features stage")
        probabilities = np.asarray(store["au_prob"][:], dtype=np.float32)
        table = rows.assign(valid=np.asarray(store["valid"][:], dtype=bool))
        columns = pd.DataFrame(probabilities, columns=[f"prob_{label}" for label in store.attrs["au_names"]])
        parts.append(pd.concat([table, columns], axis=1))
    gathered = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["sample_id", "shard", "row", "valid"])
    arrow = pa.Table.from_pandas(gathered, preserve_index=False)
    metadata = dict(arrow.schema.metadata or {})
    metadata[b"augane"] = json.dumps({**info, **(reference or {})}).encode("utf-8")
    with atomic_path(out) as temporary:
        pq.write_table(arrow.replace_schema_metadata(metadata), temporary)
    log.info("%s: %d samples, %d valid", out, len(gathered), int(gathered["valid"].sum()) if len(gathered) else 0)
    return gathered
