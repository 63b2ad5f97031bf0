"""Manifests: every kind of dataset listed in a stable order, sharded, labelled, and written with metadata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from augane.aus import DISFA_AUS
from augane.errors import ConfigError, DataError
from augane.io.manifest import (
    BASE_COLUMNS,
    build_manifest,
    label_columns,
    manifest_info,
    manifest_shard_count,
    read_manifest,
    shard_name,
    write_manifest,
)
from augane.io.videos import write_video
from tests.io.test_disfa import make_disfa_tree


def _touch_images(folder, names):
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not decoded when listing")


def test_images_sorted_and_sharded(tmp_path):
    _touch_images(tmp_path, ["b.jpg", "a.png", "sub/c.PNG", "sub/d.webp", "e.txt"])
    manifest, problems = build_manifest("faces", {"type": "images", "path": str(tmp_path)}, shard_size=3)
    assert list(manifest.columns) == list(BASE_COLUMNS) and problems == []
    assert manifest["sample_id"].tolist() == ["a.png", "b.jpg", "sub/c.PNG", "sub/d.webp"]
    assert manifest["frame"].tolist() == [-1] * 4
    assert manifest["shard"].tolist() == [0, 0, 0, 1] and manifest["row"].tolist() == [0, 1, 2, 0]
    assert manifest["source"].iloc[2] == str(tmp_path / "sub" / "c.PNG")


def test_image_labels_csv(tmp_path):
    folder = tmp_path / "images"
    _touch_images(folder, ["x/1.jpg", "x/2.jpg", "3.jpg"])
    csv = tmp_path / "labels.csv"
    pd.DataFrame({"path": ["x/2.jpg", "3.jpg"], "AU12": [3, 0], "subject": ["p1", "p2"], "age": [31.5, 40]}).to_csv(csv, index=False)
    manifest, _ = build_manifest("f", {"type": "images", "path": str(folder), "labels": str(csv)}, 10)
    assert manifest["sample_id"].tolist() == ["3.jpg", "x/1.jpg", "x/2.jpg"]
    assert manifest["AU12"].tolist() == [0, -1, 3]
    assert manifest["AU12"].dtype == np.int8
    assert manifest["subject"].tolist() == ["p2", "", "p1"]
    assert np.isnan(manifest["age"].iloc[1]) and manifest["age"].iloc[2] == 31.5
    assert label_columns(manifest) == ["AU12", "age"]


def test_image_labels_csv_errors(tmp_path):
    folder = tmp_path / "images"
    _touch_images(folder, ["1.jpg"])
    csv = tmp_path / "labels.csv"
    dataset = {"type": "images", "path": str(folder), "labels": str(csv)}
    pd.DataFrame({"path": ["2.jpg"], "AU1": [1]}).to_csv(csv, index=False)
    with pytest.raises(DataError, match="rows name images not found.*'2.jpg'"):
        build_manifest("f", dataset, 4)
    pd.DataFrame({"file": ["1.jpg"]}).to_csv(csv, index=False)
    with pytest.raises(DataError, match="no 'path' column"):
        build_manifest("f", dataset, 4)
    pd.DataFrame({"path": ["1.jpg"], "AU1": ["strong"]}).to_csv(csv, index=False)
    with pytest.raises(DataError, match="column AU1: expected integer"):
        build_manifest("f", dataset, 4)
    csv.unlink()
    with pytest.raises(ConfigError, match="datasets.f.labels"):
        build_manifest("f", dataset, 4)


def test_videos_with_stride_and_broken_videos(tmp_path):
    frames = [np.full((16, 16, 3), i, np.uint8) for i in range(7)]
    write_video(tmp_path / "one.mp4", frames, fps=5)
    write_video(tmp_path / "sub" / "two.avi", frames[:3], fps=5)
    (tmp_path / "broken.mp4").write_text("not a video")
    manifest, problems = build_manifest("v", {"type": "videos", "path": str(tmp_path), "frame_stride": 3}, 4)
    assert manifest["sample_id"].tolist() == [
        "broken.mp4#000000", "one.mp4#000000", "one.mp4#000003", "one.mp4#000006", "sub/two.avi#000000",
    ]
    assert manifest["frame"].tolist() == [0, 0, 3, 6, 0]
    assert len(problems) == 1 and "broken.mp4" in problems[0]
    listed, _ = build_manifest("v", {"type": "videos", "path": [str(tmp_path / "one.mp4"), str(tmp_path / "sub" / "two.avi")]}, 4)
    assert listed["sample_id"].tolist()[:2] == ["one.mp4#000000", "one.mp4#000001"]
    assert listed["sample_id"].iloc[-1] == "sub/two.avi#000002"
    single, _ = build_manifest("v", {"type": "videos", "path": str(tmp_path / "one.mp4"), "frame_stride": 7}, 4)
    assert single["sample_id"].tolist() == ["one.mp4#000000"]


def test_disfa_manifest_carries_labels(tmp_path):
    written = make_disfa_tree(tmp_path, {"SN001": (6, 6), "SN002": (5, 4), "SN003": (4, 4)})
    dataset = {"type": "disfa", "path": str(tmp_path), "subjects": ["SN002", "SN001"], "frame_stride": 2}
    manifest, problems = build_manifest("disfa", dataset, 4)
    assert manifest["subject"].tolist() == ["SN002"] * 3 + ["SN001"] * 3
    assert manifest["frame"].tolist() == [0, 2, 4, 0, 2, 4]
    assert manifest["sample_id"].iloc[0] == "SN002#000000"
    assert label_columns(manifest) == [f"AU{au}" for au in DISFA_AUS]
    expected = written["SN001"].set_index("frame").loc[[0, 2, 4], "AU12"].tolist()
    assert manifest.loc[manifest["subject"] == "SN001", "AU12"].tolist() == expected
    assert any("SN002" in problem and "frame_missing" in problem for problem in problems)
    with pytest.raises(ConfigError, match=r"datasets.disfa.subjects: \['SN009'\] not found"):
        build_manifest("disfa", {**dataset, "subjects": ["SN009"]}, 4)


def test_fail_fast_on_bad_dataset_config(tmp_path):
    with pytest.raises(ConfigError, match="datasets.faces.path: .*does not exist"):
        build_manifest("faces", {"type": "images", "path": str(tmp_path / "nowhere")}, 4)
    with pytest.raises(ConfigError, match="datasets.faces.type"):
        build_manifest("faces", {"type": "meshes", "path": str(tmp_path)}, 4)
    with pytest.raises(ConfigError, match="datasets.faces.labels: only images"):
        build_manifest("faces", {"type": "videos", "path": str(tmp_path), "labels": "x.csv"}, 4)
    with pytest.raises(DataError, match="no images sample found"):
        build_manifest("faces", {"type": "images", "path": str(tmp_path)}, 4)
    with pytest.raises(ConfigError, match="datasets.clips.path: video files"):
        build_manifest("clips", {"type": "videos", "path": [str(tmp_path / "a.mp4")]}, 4)


def test_write_and_read_back(tmp_path):
    _touch_images(tmp_path / "im", [f"{i}.png" for i in range(5)])
    manifest, _ = build_manifest("faces", {"type": "images", "path": str(tmp_path / "im")}, 2)
    path = write_manifest(tmp_path / "cache" / "manifest.parquet", manifest, "faces", 2, ["a problem"])
    info = manifest_info(path)
    assert info == {"dataset": "faces", "shard_size": 2, "num_shards": 3, "num_samples": 5, "problems": ["a problem"]}
    assert manifest_shard_count(path) == 3
    pd.testing.assert_frame_equal(read_manifest(path), manifest)
    assert read_manifest(path, shard=2)["sample_id"].tolist() == ["4.png"]
    assert shard_name(2) == "0002"
    with pytest.raises(DataError, match="does not exist"):
        manifest_info(tmp_path / "none.parquet")
