"""The cached-shard training dataset: selection, lazy stores, batched reads, splits, batch sampler."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import zarr
from torch.utils.data import DataLoader

from augane.config import validate_config
from augane.errors import ConfigError, DataError
from augane.io.shards import SAMPLE_CHUNK, ArraySpec, write_store
from augane.preprocess.status import Status, status_codes
from augane.train.dataset import (
    CachedShardDataset,
    ShardBatchSampler,
    move_to,
    parse_au_name,
    validation_mask,
)

SIZE, K, N, D_NODE, D_GLOBAL = 8, 4, 3, 6, 10
LAYOUT = {"shape": 4, "tex": 2, "exp": 5, "pose": 6, "cam": 3, "light": 27}
P = sum(LAYOUT.values())


def write_cache(
    root: Path,
    name: str,
    shard_sizes: tuple[int, ...],
    *,
    invalid: tuple[str, ...] = (),
    no_face: tuple[str, ...] = (),
    subjects: int = 0,
    layout: dict | None = None,
    offset: int = 0,
) -> pd.DataFrame:
    """A tiny cache per ARCHITECTURE.md. Sample number u (= offset + position) is written into every array."""
    layout = layout or LAYOUT
    rows = []
    for shard, size in enumerate(shard_sizes):
        for row in range(size):
            number = offset + len(rows)
            rows.append(
                {
                    "sample_id": f"{name}-{number:04d}",
                    "source": f"/data/{name}/{number}.png",
                    "frame": -1,
                    "subject": f"S{number % subjects}" if subjects else "",
                    "shard": shard,
                    "row": row,
                    "AU4": number % 6,
                    "gt_exp_0": number + 0.0,
                    "gt_exp_1": number + 0.5,
                    "gt_pose_0": -number + 0.0,
                    "number": number,
                }
            )
    table = pd.DataFrame(rows)
    table["status"] = np.where(table["sample_id"].isin(no_face), int(Status.NO_FACE), int(Status.OK)).astype(np.uint8)
    table["status_name"] = np.where(table["status"] == 0, "ok", "no_face")
    table["valid"] = ~table["sample_id"].isin(invalid) & (table["status"] == 0)
    folder = root / name
    for shard, group in table.groupby("shard"):
        number = group["number"].to_numpy()
        n = len(group)
        image = (number[:, None, None, None] % 256 * np.ones((1, SIZE, SIZE, 3))).astype(np.uint8)
        landmarks = np.broadcast_to(number[:, None, None] / 1000.0, (n, 105, 2)).astype(np.float32)
        shard_dir = folder / f"shard-{shard:04d}"
        write_store(
            shard_dir / "preprocess.zarr",
            {
                "image": ArraySpec(image, ("sample", "y", "x", "channel")),
                "landmarks_ndc": ArraySpec(landmarks, ("sample", "point", "coord")),
                "status": ArraySpec(group["status"].to_numpy(), ("sample",)),
            },
            {"stage": "preprocess", "status_codes": status_codes(), "sample_ids": group["sample_id"].tolist()},
        )
        size = sum(layout.values())
        write_store(
            shard_dir / "features.zarr",
            {
                "valid": ArraySpec(group["valid"].to_numpy(), ("sample",)),
                "au_prob": ArraySpec(np.repeat(number[:, None], K, 1).astype(np.float32), ("sample", "au")),
                "afg": ArraySpec(
                    np.full((n, N, D_NODE), 1.0, np.float16) * (number[:, None, None] % 100),
                    ("sample", "node", "channel"),
                ),
                "deca_feature": ArraySpec(
                    np.repeat(number[:, None] % 100, D_GLOBAL, 1).astype(np.float16), ("sample", "channel")
                ),
                "deca_params": ArraySpec(
                    (number[:, None] * 1000 + np.arange(size)[None]).astype(np.float32), ("sample", "param")
                ),
            },
            {"stage": "features", "au_names": ["AU1", "AU2", "AU4", "AU_L1"], "afg_aus": [1, 2, 4], "layout": layout},
        )
    manifest = ["sample_id", "source", "frame", "subject", "shard", "row", "AU4", "gt_exp_0", "gt_exp_1", "gt_pose_0"]
    index = table[manifest + ["status", "status_name"]].assign(confidence=0.9, face_count=1)
    index.to_parquet(folder / "index.parquet")
    features = table[["sample_id", "valid"]].assign(prob_AU1=0.5)
    features.to_parquet(folder / "features.parquet")
    return table


@pytest.fixture()
def cache(tmp_path):
    table = write_cache(tmp_path, "faces", (5, 4), invalid=("faces-0001",), no_face=("faces-0006",))
    return tmp_path, table


def test_samples_hold_the_right_rows_with_documented_shapes(cache):
    root, table = cache
    dataset = CachedShardDataset(["faces"], cache_root=root)
    assert len(dataset) == 7  # 9 rows, one with invalid features, one without a face
    for index in range(len(dataset)):
        sample = dataset[index]
        number = int(sample["sample_id"].split("-")[1])
        assert sample["image"].shape == (3, SIZE, SIZE) and sample["image"].dtype == torch.float32
        assert sample["image"].max().item() == pytest.approx((number % 256) / 255.0)
        assert sample["landmarks_ndc"].shape == (105, 2)
        assert sample["landmarks_ndc"][0, 0].item() == pytest.approx(number / 1000.0)
        assert sample["au_prob"].shape == (K,) and sample["au_prob"][0].item() == number
        assert sample["afg"].shape == (N, D_NODE) and sample["afg"].dtype == torch.float32
        assert sample["afg"][0, 0].item() == number % 100
        assert sample["deca_feature"].shape == (D_GLOBAL,)
        params = sample["deca_params"]
        assert {name: tuple(value.shape) for name, value in params.items()} == {
            "shape": (4,), "tex": (2,), "exp": (5,), "pose": (6,), "cam": (3,), "light": (9, 3)
        }
        assert params["exp"][0].item() == number * 1000 + 6  # after shape (4) and tex (2)
        assert params["light"][0, 0].item() == number * 1000 + 20
        torch.testing.assert_close(sample["gt_exp"], torch.tensor([number, number + 0.5]))
        torch.testing.assert_close(sample["gt_pose"], torch.tensor([-float(number)]))
        assert sample["au_intensity"].tolist() == [number % 6]
        assert sample["dataset"] == "faces" and int(sample["index"]) == index
    assert "faces-0001" not in dataset._sample_id and "faces-0006" not in dataset._sample_id
    assert dataset.label_aus == (4,)
    layout = dataset.layout
    assert layout.detector_aus == (1, 2, 4, "L1") and layout.afg_aus == (1, 2, 4)
    assert (layout.num_aus, layout.node_dim, layout.global_dim, layout.image_size) == (N, D_NODE, D_GLOBAL, SIZE)


def test_batched_read_across_shards_in_any_order(cache):
    root, _ = cache
    dataset = CachedShardDataset(["faces"], cache_root=root)
    indices = [6, 0, 3, 0, 5]
    batch = dataset.__getitems__(indices)
    assert [sample["sample_id"] for sample in batch] == [dataset[i]["sample_id"] for i in indices]
    with pytest.raises(IndexError):
        dataset.__getitems__([len(dataset)])


def test_stores_open_lazily_and_the_dataset_pickles(cache):
    root, _ = cache
    dataset = CachedShardDataset(["faces"], cache_root=root)
    assert dataset._stores == {}
    dataset[0]
    assert len(dataset._stores) == 1
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._stores == {}
    assert clone[len(clone) - 1]["sample_id"] == dataset[len(dataset) - 1]["sample_id"]


def test_dataloader_workers_read_every_sample_once(cache):
    root, _ = cache
    dataset = CachedShardDataset(["faces"], cache_root=root)
    sampler = ShardBatchSampler(dataset, batch_size=3, seed=1)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=2)
    seen = []
    for batch in loader:
        assert batch["image"].shape[1:] == (3, SIZE, SIZE)
        assert batch["deca_params"]["light"].shape[1:] == (9, 3)
        assert batch["afg"].shape[1:] == (N, D_NODE)
        seen.extend(batch["sample_id"])
    assert sorted(seen) == sorted(dataset._sample_id)


def test_stale_index_is_reported(tmp_path):
    write_cache(tmp_path, "faces", (4,))
    # The features store is rewritten (sample 2 now invalid) but features.parquet is not regathered.
    group = zarr.open_group(tmp_path / "faces" / "shard-0000" / "features.zarr", mode="r+")
    group["valid"][2] = False
    dataset = CachedShardDataset(["faces"], cache_root=tmp_path)
    with pytest.raises(DataError, match=r"rows \[2\] are not usable.*stale"):
        dataset.__getitems__([0, 1, 2])


def test_missing_index_files_and_layout_mismatch(tmp_path):
    write_cache(tmp_path, "a", (3,))
    (tmp_path / "a" / "features.parquet").unlink()
    with pytest.raises(DataError, match=r"features.parquet does not exist; run the features stage"):
        CachedShardDataset(["a"], cache_root=tmp_path)
    write_cache(tmp_path, "b", (3,))
    write_cache(tmp_path, "c", (3,), layout={"exp": 5, "pose": 6, "cam": 3}, offset=100)
    dataset = CachedShardDataset(["b", "c"], cache_root=tmp_path)
    dataset[0]
    with pytest.raises(DataError, match="same AU detector and DECA"):
        dataset[len(dataset) - 1]


def test_several_datasets_and_no_samples(tmp_path):
    write_cache(tmp_path, "a", (3,))
    write_cache(tmp_path, "b", (2,), offset=50)
    dataset = CachedShardDataset(["a", "b"], cache_root=tmp_path)
    assert len(dataset) == 5
    assert {dataset[i]["dataset"] for i in range(5)} == {"a", "b"}
    write_cache(tmp_path, "empty", (2,), invalid=("empty-0000", "empty-0001"))
    with pytest.raises(DataError, match="no usable all samples"):
        CachedShardDataset(["empty"], cache_root=tmp_path)


def _ids(root, subset, **split):
    return set(CachedShardDataset(["faces"], cache_root=root, subset=subset, **split)._sample_id)


def test_sample_split_is_seeded_deterministic_and_complete(tmp_path):
    write_cache(tmp_path, "faces", (20, 20), invalid=("faces-0003",))
    split = {"val_fraction": 0.25, "split_by": "sample", "seed": 3}
    train, val = _ids(tmp_path, "train", **split), _ids(tmp_path, "val", **split)
    assert not train & val
    assert train | val == _ids(tmp_path, "all")
    assert len(val) in (9, 10)  # 10 of 40 manifest rows held out, minus the invalid one if it is among them
    assert val == _ids(tmp_path, "val", **split)
    assert val != _ids(tmp_path, "val", **{**split, "seed": 4})


def test_subject_split_keeps_subjects_whole(tmp_path):
    table = write_cache(tmp_path, "faces", (12, 12), subjects=6)
    split = {"val_fraction": 0.34, "split_by": "subject", "seed": 0}
    val = _ids(tmp_path, "val", **split)
    subject_of = dict(zip(table["sample_id"], table["subject"]))
    val_subjects = {subject_of[s] for s in val}
    train_subjects = {subject_of[s] for s in _ids(tmp_path, "train", **split)}
    assert len(val_subjects) == 2 and not val_subjects & train_subjects
    assert len(val) == 8


def test_validation_mask_rules():
    table = pd.DataFrame({"dataset": "d", "sample_id": [f"s{i}" for i in range(10)], "subject": ["", "x"] * 5})
    assert validation_mask(table, 0.0, "sample", 0).sum() == 0
    assert validation_mask(table, 0.01, "sample", 0).sum() == 1  # at least one when asked for any
    by_subject = validation_mask(table, 0.5, "subject", 0)
    # five samples without a subject are their own keys, plus subject "x": 6 keys, 3 held out
    pairs = zip(table["subject"], table["sample_id"], by_subject)
    keys_held = {("x" if subject == "x" else name) for subject, name, held in pairs if held}
    assert len(keys_held) == 3
    np.testing.assert_array_equal(validation_mask(table, 0.3, "sample", 7), validation_mask(table, 0.3, "sample", 7))
    with pytest.raises(ConfigError, match="train.split_by"):
        validation_mask(table, 0.1, "video", 0)


def test_from_config(tmp_path):
    write_cache(tmp_path, "faces", (6,))
    config = validate_config(
        {"datasets": {"faces": {"type": "images", "path": "x"}}, "train": {"datasets": ["faces"], "val_fraction": 0.5}}
    )
    train = CachedShardDataset.from_config(config, "train", cache_root=tmp_path)
    val = CachedShardDataset.from_config(config, "val", cache_root=tmp_path)
    assert len(train) == 3 and len(val) == 3
    with pytest.raises(ConfigError, match="train.datasets is empty"):
        CachedShardDataset.from_config(validate_config({}), "train", cache_root=tmp_path)
    with pytest.raises(ConfigError, match="not declared"):
        CachedShardDataset.from_config(validate_config({"train": {"datasets": ["x"]}}), "train", cache_root=tmp_path)


def test_sampler_keeps_batches_within_few_chunks(tmp_path):
    write_cache(tmp_path, "faces", (2 * SAMPLE_CHUNK + 10, 30))
    dataset = CachedShardDataset(["faces"], cache_root=tmp_path)
    chunk_of = [(int(s), int(r) // SAMPLE_CHUNK) for s, r in zip(dataset._shard, dataset._row)]
    sampler = ShardBatchSampler(dataset, batch_size=8, chunks_per_pool=1, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(len(dataset)))
    spans = [len({chunk_of[i] for i in batch}) for batch in batches]
    assert max(spans) <= 2 and np.mean(spans) < 1.3
    sampler.set_epoch(1)
    assert list(sampler) != batches
    sampler.set_epoch(0)
    assert list(sampler) == batches
    ordered = list(ShardBatchSampler(dataset, batch_size=50, shuffle=False, drop_last=True))
    assert ordered[0] == list(range(50)) and len(ordered) == len(dataset) // 50


def test_sampler_splits_batches_across_replicas(tmp_path):
    write_cache(tmp_path, "faces", (23,))
    dataset = CachedShardDataset(["faces"], cache_root=tmp_path)
    ranks = [list(ShardBatchSampler(dataset, 4, num_replicas=2, rank=r, seed=5)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 3 == len(ShardBatchSampler(dataset, 4, num_replicas=2, rank=1))
    covered = {i for batches in ranks for batch in batches for i in batch}
    assert covered == set(range(23))


def test_parse_au_name_and_move_to():
    assert [parse_au_name(n) for n in (4, np.int64(7), "AU12", "AU_L1", "R2")] == [4, 7, 12, "L1", "R2"]
    batch = {"a": torch.zeros(2), "b": {"c": torch.ones(1)}, "ids": ["x", "y"]}
    moved = move_to(batch, "cpu")
    assert moved["ids"] == ["x", "y"] and torch.equal(moved["b"]["c"], torch.ones(1))


@pytest.mark.parametrize("as_name", [False, True])
def test_index_status_alone_excludes_a_sample(tmp_path, as_name):
    write_cache(tmp_path, "faces", (4,))
    path = tmp_path / "faces" / "index.parquet"
    index = pd.read_parquet(path)
    index.loc[1, "status"] = int(Status.TOO_SMALL)
    if as_name:
        index["status"] = ["too_small" if code else "ok" for code in index["status"]]
    index.to_parquet(path)
    dataset = CachedShardDataset(["faces"], cache_root=tmp_path)
    assert list(dataset._sample_id) == ["faces-0000", "faces-0002", "faces-0003"]


def test_samples_missing_from_features_parquet_are_not_used(tmp_path):
    write_cache(tmp_path, "faces", (4,))
    path = tmp_path / "faces" / "features.parquet"
    pd.read_parquet(path).iloc[[0, 2, 3]].to_parquet(path)
    dataset = CachedShardDataset(["faces"], cache_root=tmp_path)
    assert list(dataset._sample_id) == ["faces-0000", "faces-0002", "faces-0003"]


def test_reads_what_the_preprocess_and_features_stages_write(tmp_path, astronaut):
    """The contract end to end: real gather steps and feature stage, then GANE on a loaded batch."""
    from augane.features.extract import FeatureExtractor
    from augane.features.gather import features_store_path, gather_features
    from augane.features.networks import load_feature_networks
    from augane.features.runtime import inference_settings
    from augane.features.shard import features_shard
    from augane.io.manifest import write_manifest
    from augane.model import GANE
    from augane.preprocess.index import gather_index
    from tests.features.tiny_shards import photo_crops, tiny_config, write_preprocess_store

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
        preprocess = write_preprocess_store(
            cache / f"shard-000{shard}" / "preprocess.zarr", crops[rows], statuses, [ids[row] for row in rows]
        )
        features_shard(config, "tiny", f"000{shard}", preprocess, features_store_path(cache, shard), extractor)
    gather_index(cache / "manifest.parquet", cache / "index.parquet")
    gather_features(cache / "manifest.parquet", cache / "features.parquet")

    dataset = CachedShardDataset(["tiny"], cache_root=tmp_path / "cache")
    assert list(dataset._sample_id) == ["a", "c"]
    layout = dataset.layout
    assert layout.detector_aus[:3] == (1, 2, 4) and layout.detector_aus[-1] == "R14"
    assert dict(layout.param_layout)["exp"] == 50
    batch = next(iter(DataLoader(dataset, batch_size=2)))
    assert torch.isfinite(batch["afg"]).all() and torch.isfinite(batch["au_prob"]).all()
    model = GANE.from_config(
        validate_config({"model": {"transformer": {"layers": 1, "heads": 4, "feedforward": 32}}})["model"],
        layout.num_aus, layout.node_dim, layout.global_dim,
    )
    out = model(batch["afg"], batch["deca_feature"], batch["deca_params"])
    torch.testing.assert_close(out["cam"], batch["deca_params"]["cam"])
