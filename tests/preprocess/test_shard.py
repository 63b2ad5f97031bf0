"""Whole shards: a bad-input folder and a video processed without a crash, statuses and the store contract."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pandas as pd
import pytest

from augane.config import validate_config
from augane.errors import ConfigError, DataError
from augane.io.images import write_image
from augane.io.manifest import build_manifest, write_manifest
from augane.io.shards import open_store
from augane.io.videos import write_video
from augane.landmarks import MEDIAPIPE_105
from augane.preprocess.index import gather_index, preprocess_store_path
from augane.preprocess.shard import PREPROCESS_ARRAYS, preprocess_shard, stage_digest
from augane.preprocess.status import Status, status_codes

CROP = 96


def _config(datasets: dict, **preprocess) -> dict:
    return validate_config(
        {"datasets": datasets, "preprocess": {"shard_size": 64, "crop": {"size": CROP}, "max_image_pixels": 3_000_000, **preprocess}}
    )


def _run(tmp_path, config: dict, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    manifest, problems = build_manifest(name, config["datasets"][name], config["preprocess"]["shard_size"])
    manifest_path = write_manifest(tmp_path / "cache" / name / "manifest.parquet", manifest, name, config["preprocess"]["shard_size"], problems)
    for shard in sorted(manifest["shard"].unique()):
        preprocess_shard(config, name, manifest_path, int(shard), preprocess_store_path(manifest_path.parent, shard))
    index = gather_index(manifest_path, tmp_path / "cache" / name / "index.parquet")
    return manifest, index


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory, astronaut, grace_hopper):
    """One file of each kind of input, good and bad, and the status each must get."""
    folder = tmp_path_factory.mktemp("bad_inputs")
    face = astronaut
    expected = {}

    def put(name, data, status):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data) if isinstance(data, bytes) else write_image(path, data)
        expected[name] = status

    jpeg = cv2.imencode(".jpg", face[..., ::-1])[1].tobytes()
    put("good.jpg", jpeg, Status.OK)
    put("nested/hopper.png", grace_hopper, Status.OK)
    put("gray.png", cv2.cvtColor(face, cv2.COLOR_RGB2GRAY), Status.OK)
    put("rgba.png", cv2.imencode(".png", np.dstack([face[..., ::-1], np.full(face.shape[:2], 255, np.uint8)]))[1].tobytes(), Status.OK)
    put("deep16.tif", cv2.imencode(".tif", face[..., ::-1].astype(np.uint16) * 257)[1].tobytes(), Status.OK)
    put("UPPER.JPEG", jpeg, Status.OK)
    put("truncated.jpg", jpeg[: len(jpeg) * 2 // 3], Status.CORRUPT)
    png = cv2.imencode(".png", face[..., ::-1])[1].tobytes()
    put("truncated.png", png[: len(png) // 2], Status.CORRUPT)
    put("text.jpg", b"Subject,Frame\nnot,an image\n" * 20, Status.UNREADABLE)
    put("empty.png", b"", Status.UNREADABLE)
    put("tiny.png", cv2.resize(face, (12, 12), interpolation=cv2.INTER_AREA), Status.TOO_SMALL)
    put("huge.png", np.zeros((1800, 1800, 3), np.uint8), Status.TOO_LARGE)
    put("noise.webp", np.random.default_rng(1).integers(0, 255, (200, 240, 3), dtype=np.uint8), Status.NO_FACE)
    return folder, expected


def test_bad_input_folder_gets_a_status_per_file(tmp_path, bad_folder):
    folder, expected = bad_folder
    config = _config({"mixed": {"type": "images", "path": str(folder)}}, shard_size=5)
    manifest, index = _run(tmp_path, config, "mixed")
    assert sorted(index["sample_id"]) == sorted(expected)
    got = dict(zip(index["sample_id"], index["status_name"]))
    assert got == {name: status.name.lower() for name, status in expected.items()}
    assert index["shard"].max() == 2  # 13 files in shards of 5: three stores, none lost
    ok = index["status"] == int(Status.OK)
    assert (index.loc[ok, "confidence"] > 0.5).all() and (index.loc[ok, "face_count"] == 1).all()
    assert (index.loc[~ok & (index["status_name"] != "too_small"), "confidence"] == 0).all()


def test_store_follows_the_contract(tmp_path, bad_folder):
    folder, expected = bad_folder
    config = _config({"mixed": {"type": "images", "path": str(folder)}})
    manifest, index = _run(tmp_path, config, "mixed")
    store = open_store(preprocess_store_path(tmp_path / "cache" / "mixed", 0), required=PREPROCESS_ARRAYS)
    n = len(manifest)
    shapes = {
        "image": ((n, CROP, CROP, 3), np.uint8),
        "landmarks_mp": ((n, 478, 3), np.float32),
        "landmarks": ((n, 105, 2), np.float32),
        "landmarks_ndc": ((n, 105, 2), np.float32),
        "transform": ((n, 2, 3), np.float64),
        "source_size": ((n, 2), np.int32),
        "confidence": ((n,), np.float32),
        "face_count": ((n,), np.int16),
        "status": ((n,), np.uint8),
    }
    for name, (shape, dtype) in shapes.items():
        assert store[name].shape == shape and store[name].dtype == dtype, name
        assert store[name].metadata.dimension_names[0] == "sample"
    attrs = store.attrs
    assert attrs["stage"] == "preprocess" and attrs["dataset"] == "mixed" and attrs["shard"] == "0000"
    assert attrs["status_codes"] == status_codes() and attrs["landmark_indices"] == list(MEDIAPIPE_105)
    assert attrs["detector"]["backend"] == "mediapipe_face_mesh" and attrs["augane_version"]
    assert len(attrs["config_digest"]) == 16 and attrs["sample_ids"] == manifest["sample_id"].tolist()
    status = store["status"][:]
    landmarks_mp, landmarks = store["landmarks_mp"][:], store["landmarks"][:]
    ok = status == int(Status.OK)
    np.testing.assert_array_equal(landmarks, landmarks_mp[:, list(MEDIAPIPE_105), :2])
    np.testing.assert_allclose(store["landmarks_ndc"][:][ok], landmarks[ok] * 2 / CROP - 1, atol=1e-6)
    unread = np.isin(status, [int(Status.CORRUPT), int(Status.UNREADABLE), int(Status.TOO_LARGE)])
    assert np.isnan(landmarks_mp[unread]).all() and store["image"][:][unread].max() == 0
    assert (store["source_size"][:][unread] == 0).all()
    row = manifest.index[manifest["sample_id"] == "good.jpg"][0]
    assert tuple(store["source_size"][row]) == (512, 512) and store["image"][row].mean() > 40


def test_video_frames_and_unreadable_video(tmp_path, astronaut):
    folder = tmp_path / "videos"
    frames = [np.roll(astronaut, 4 * i, axis=1) for i in range(10)]
    write_video(folder / "clip.mp4", frames, fps=10)
    (folder / "broken.avi").write_text("not a video")
    config = _config({"clips": {"type": "videos", "path": str(folder), "frame_stride": 3}}, shard_size=3)
    _, index = _run(tmp_path, config, "clips")
    assert index["sample_id"].tolist() == ["broken.avi#000000"] + [f"clip.mp4#{f:06d}" for f in (0, 3, 6, 9)]
    assert index["status_name"].tolist() == ["unreadable", "ok", "ok", "ok", "ok"]
    store = open_store(preprocess_store_path(tmp_path / "cache" / "clips", 1))
    nose_x = store["transform"][:][:, 0, 2]  # the face moves right by 4 px per frame: the crop follows
    assert np.all(np.diff(nose_x) < 0)


def test_tracking_mode_and_missing_frames(tmp_path, astronaut):
    folder = tmp_path / "videos"
    write_video(folder / "clip.avi", [np.roll(astronaut, 4 * i, axis=1) for i in range(6)], fps=10)
    config = _config({"clips": {"type": "videos", "path": str(folder)}}, video_tracking=True, max_faces=1)
    manifest, problems = build_manifest("clips", config["datasets"]["clips"], 64)
    extra = manifest.iloc[[-1]].assign(sample_id="clip.avi#000009", frame=9, row=6)  # a frame the video lacks
    manifest = pd.concat([manifest, extra], ignore_index=True)
    path = write_manifest(tmp_path / "manifest.parquet", manifest, "clips", 64)
    preprocess_shard(config, "clips", path, 0, tmp_path / "shard-0000" / "preprocess.zarr")
    store = open_store(tmp_path / "shard-0000" / "preprocess.zarr")
    assert store["status"][:].tolist() == [0] * 6 + [int(Status.FRAME_MISSING)]
    assert (store["confidence"][:6] > 0.5).all() and store.attrs["detector"]["static_image_mode"] is False


def test_missing_sources_and_bad_arguments(tmp_path, astronaut):
    folder = tmp_path / "images"
    write_image(folder / "a.png", astronaut)
    write_image(folder / "b.png", astronaut)
    config = _config({"faces": {"type": "images", "path": str(folder)}})
    manifest, _ = build_manifest("faces", config["datasets"]["faces"], 64)
    path = write_manifest(tmp_path / "manifest.parquet", manifest, "faces", 64)
    (folder / "b.png").unlink()  # removed after the manifest was written
    preprocess_shard(config, "faces", path, 0, tmp_path / "s.zarr")
    assert open_store(tmp_path / "s.zarr")["status"][:].tolist() == [int(Status.OK), int(Status.MISSING)]
    with pytest.raises(DataError, match="shard 3 is not in manifest"):
        preprocess_shard(config, "faces", path, 3, tmp_path / "t.zarr")
    with pytest.raises(ConfigError, match="datasets.other"):
        preprocess_shard(config, "other", path, 0, tmp_path / "t.zarr")
    assert not (tmp_path / "t.zarr").exists()


def test_gather_refuses_stale_stores(tmp_path, astronaut):
    folder = tmp_path / "images"
    write_image(folder / "a.png", astronaut)
    config = _config({"faces": {"type": "images", "path": str(folder)}})
    _run(tmp_path, config, "faces")
    write_image(folder / "b.png", astronaut)
    manifest, _ = build_manifest("faces", config["datasets"]["faces"], 64)
    manifest_path = write_manifest(tmp_path / "cache" / "faces" / "manifest.parquet", manifest, "faces", 64)
    with pytest.raises(DataError, match="does not hold the samples its manifest lists"):
        gather_index(manifest_path, tmp_path / "index.parquet")
    stored = open_store(preprocess_store_path(tmp_path / "cache" / "faces", 0)).attrs["config_digest"]
    assert stored == stage_digest(config, "faces")
    other = copy.deepcopy(config)
    other["preprocess"]["crop"]["size"] = 64
    assert stage_digest(other, "faces") != stored


def test_disfa_layout_to_index(tmp_path, astronaut):
    from augane.io.disfa import disfa_video_path, write_disfa_labels

    root = tmp_path / "DISFA"
    labels = pd.DataFrame({"frame": range(5), **{f"AU{au}": [au % 6] * 5 for au in (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)}})
    write_disfa_labels(root, "SN003", labels)
    video = disfa_video_path(root, "SN003")
    video.parent.mkdir(parents=True)
    write_video(video, [np.roll(astronaut, 3 * i, axis=1) for i in range(4)], fps=10)  # one frame short
    config = _config({"disfa": {"type": "disfa", "path": str(root)}})
    _, index = _run(tmp_path, config, "disfa")
    assert index["subject"].tolist() == ["SN003"] * 5 and index["frame"].tolist() == list(range(5))
    assert index["status_name"].tolist() == ["ok"] * 4 + ["frame_missing"]
    assert index["AU12"].tolist() == [0] * 5 and index["AU26"].tolist() == [2] * 5
