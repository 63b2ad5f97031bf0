"""features.parquet gathers every shard's validity and AU outputs in manifest order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from augane.errors import DataError
from augane.features.extract import FeatureExtractor
from augane.features.gather import features_store_path, gather_features
from augane.features.networks import load_feature_networks
from augane.features.runtime import inference_settings
from augane.features.shard import features_shard
from augane.io.manifest import write_manifest
from augane.preprocess.status import Status
from tests.features.tiny_shards import photo_crops, tiny_config, write_preprocess_store


def test_gather_two_shards(tmp_path, astronaut):
    cache = tmp_path / "cache" / "tiny"
    ids = ["a", "b", "c"]
    manifest = pd.DataFrame({
        "sample_id": ids, "source": ["a.png", "b.png", "c.png"], "frame": [-1] * 3, "subject": [""] * 3,
        "shard": np.array([0, 0, 1], np.int32), "row": np.array([0, 1, 0], np.int32),
    })
    write_manifest(cache / "manifest.parquet", manifest, "tiny", shard_size=2)
    config = tiny_config(tmp_path / "networks")
    extractor = FeatureExtractor(load_feature_networks(config), inference_settings(config))
    crops = photo_crops(astronaut, 3)
    for shard, rows, statuses in ((0, [0, 1], [Status.OK, Status.NO_FACE]), (1, [2], [Status.OK])):
        preprocess = write_preprocess_store(cache / f"shard-000{shard}" / "preprocess.zarr", crops[rows], statuses,
                                            [ids[row] for row in rows])
        features_shard(config, "tiny", f"000{shard}", preprocess, features_store_path(cache, shard), extractor)

    table = gather_features(cache / "manifest.parquet", cache / "features.parquet")
    read = pd.read_parquet(cache / "features.parquet")
    pd.testing.assert_frame_equal(table, read)
    assert read["sample_id"].tolist() == ids and read["valid"].tolist() == [True, False, True]
    assert read.columns[:4].tolist() == ["sample_id", "shard", "row", "valid"]
    assert "prob_AU1" in read.columns and "prob_AU_R14" in read.columns and len(read.columns) == 4 + 41
    assert read.loc[1, "prob_AU1"] != read.loc[1, "prob_AU1"]  # NaN for the skipped sample
    assert 0 <= read.loc[0, "prob_AU12"] <= 1

    write_preprocess_store(cache / "shard-0001" / "preprocess.zarr", crops[[2]], [Status.OK], ["z"])
    features_shard(config, "tiny", "0001", cache / "shard-0001" / "preprocess.zarr", features_store_path(cache, 1), extractor)
    with pytest.raises(DataError, match=r"shard-0001/features\.zarr does not hold the samples its manifest lists"):
        gather_features(cache / "manifest.parquet", tmp_path / "other.parquet")
