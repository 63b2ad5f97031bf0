"""The feature stage on a tiny shard, end to end: skipped samples, values, provenance, robustness."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augane.errors import DataError
from augane.features.extract import FeatureExtractor
from augane.features.networks import load_feature_networks
from augane.features.runtime import inference_settings
from augane.features.shard import features_shard
from augane.io.shards import open_store
from augane.nets.au_preprocess import au_detector_input
from augane.nets.checkpoint import sha256_file
from augane.preprocess.status import Status
from tests.features.tiny_shards import photo_crops, tiny_config, write_preprocess_store

STATUSES = [Status.OK, Status.NO_FACE, Status.OK, Status.CORRUPT, Status.OK]


@pytest.fixture(scope="module")
def shard(tmp_path_factory, astronaut):
    folder = tmp_path_factory.mktemp("shard")
    crops = photo_crops(astronaut, len(STATUSES))
    ids = [f"img{index}" for index in range(len(STATUSES))]
    store = write_preprocess_store(folder / "preprocess.zarr", crops, STATUSES, ids)
    config = tiny_config(folder / "networks", emoca=True)
    return {"folder": folder, "crops": crops, "ids": ids, "store": store, "config": config}


def _run(shard, out_name, **features):
    config = dict(shard["config"])
    config["features"] = {**config["features"], **features}
    networks = load_feature_networks(config)
    extractor = FeatureExtractor(networks, inference_settings(config))
    out = shard["folder"] / out_name
    features_shard(config, "tiny", "0000", shard["store"], out, extractor)
    return open_store(out), networks


def test_end_to_end_with_skipped_samples(shard):
    store, networks = _run(shard, "features.zarr")
    ok = np.array([status == Status.OK for status in STATUSES])
    np.testing.assert_array_equal(store["valid"][:], ok)
    assert store["au_prob"].shape == (5, 41) and store["au_prob"].dtype == np.float32
    assert store["afg"].shape == (5, 27, 32) and store["afg"].dtype == np.float16
    assert store["deca_feature"].shape == (5, 512) and store["deca_feature"].dtype == np.float16
    assert store["deca_params"].shape == (5, 236)
    assert store["emoca_exp"].shape == (5, 50) and store["emoca_pose"].shape == (5, 6)
    for name in ("au_prob", "afg", "deca_feature", "deca_params", "emoca_exp"):
        values = np.asarray(store[name][:], dtype=np.float32)
        assert np.isnan(values[~ok]).all() and np.isfinite(values[ok]).all(), name
    assert tuple(store["afg"].metadata.dimension_names) == ("sample", "au", "channel")

    attributes = store.attrs
    assert attributes["stage"] == "features" and attributes["shard"] == "0000"
    assert attributes["sample_ids"] == shard["ids"]
    assert attributes["skipped"] == {"no_face": 1, "corrupt": 1} and attributes["num_valid"] == 3
    assert attributes["au_names"][:3] == ["AU1", "AU2", "AU4"] and attributes["afg_aus"][0] == 1
    assert attributes["deca_layout"]["light"] == 27
    provenance = attributes["networks"]
    assert provenance["deca"]["sha256"] == sha256_file(shard["config"]["resources"]["deca"]["checkpoint"])
    assert provenance["au_detector"]["variant"] == "opengraphau" and provenance["au_detector"]["head"] == "anfl"
    assert provenance["emoca"]["pose_outputs"] == 3
    assert attributes["untrained_weights"] is False

    # values equal the networks applied directly to the same crops
    images = torch.from_numpy(shard["crops"][ok]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        au = networks.au_detector(au_detector_input(images, 72, 64))
        deca = networks.deca(images)
    np.testing.assert_allclose(store["au_prob"][:][ok], au.prob.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(store["afg"][:][ok], au.afg.half().numpy(), rtol=2e-3, atol=1e-3)
    np.testing.assert_allclose(store["deca_params"][:][ok], deca.params.numpy(), rtol=1e-4, atol=1e-5)


def test_batching_and_read_ahead_do_not_change_results(shard):
    first, _ = _run(shard, "a.zarr", batch_size=2, read_ahead=0)
    second, _ = _run(shard, "b.zarr", batch_size=5, read_ahead=2)
    for name in ("au_prob", "deca_params", "emoca_exp"):
        np.testing.assert_allclose(first[name][:], second[name][:], rtol=1e-4, atol=1e-5)


def test_non_finite_outputs_mark_the_sample_invalid(shard, monkeypatch):
    original = FeatureExtractor.__call__

    def poisoned(self, crops):
        batch = original(self, crops)
        batch.deca_params[0, 0] = np.nan
        return batch

    monkeypatch.setattr(FeatureExtractor, "__call__", poisoned)
    store, _ = _run(shard, "poisoned.zarr", batch_size=5)
    np.testing.assert_array_equal(store["valid"][:], [False, False, True, False, True])
    assert store.attrs["nonfinite_outputs"] == 1
    assert np.isnan(store["au_prob"][0]).all()


def test_bad_preprocess_stores_are_reported(shard, tmp_path):
    networks = load_feature_networks(shard["config"])
    extractor = FeatureExtractor(networks, inference_settings(shard["config"]))
    with pytest.raises(DataError, match="not a Zarr store"):
        features_shard(shard["config"], "tiny", "0000", tmp_path / "absent.zarr", tmp_path / "f.zarr", extractor)
    from augane.io.shards import ArraySpec, write_store

    bad = write_store(tmp_path / "bad.zarr", {
        "image": ArraySpec(np.zeros((2, 8, 8), np.uint8), ("sample", "y", "x")),
        "status": ArraySpec(np.zeros(2, np.uint8), ("sample",)),
    }, {})
    with pytest.raises(DataError, match=r"image must be \(n, S, S, 3\)"):
        features_shard(shard["config"], "tiny", "0000", bad, tmp_path / "f.zarr", extractor)
    assert not (tmp_path / "f.zarr").exists()


@pytest.mark.parametrize(("batch_size", "read_ahead"), [(40, 0), (40, 2), (7, 1), (200, 1)])
def test_batches_regroup_whole_chunks_into_full_batches(tmp_path, batch_size, read_ahead):
    from augane.features.shard import _batches
    from augane.io.shards import ArraySpec, write_store

    count = 150  # three store chunks of 64, 64, 22 samples
    images = np.arange(count, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    store = open_store(write_store(tmp_path / "p.zarr", {"image": ArraySpec(images, ("sample", "y", "x", "channel"))}, {}))
    valid = np.ones(count, dtype=bool)
    valid[[0, 5, 70, 71, 149]] = False
    valid[80:128] = False
    batches = list(_batches(store, valid, batch_size, read_ahead))
    rows = np.concatenate([batch[0] for batch in batches])
    np.testing.assert_array_equal(rows, np.flatnonzero(valid))
    assert all(len(batch[0]) == batch_size for batch in batches[:-1]) and 0 < len(batches[-1][0]) <= batch_size
    for batch_rows, crops, waited in batches:
        np.testing.assert_array_equal(crops[:, 0, 0, 0], batch_rows.astype(np.uint8))
        assert waited >= 0
