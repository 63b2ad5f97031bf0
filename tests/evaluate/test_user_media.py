"""``augane reconstruct``'s engine on a real photo and short generated videos, with untrained networks."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from augane.errors import ConfigError, DataError
from augane.evaluate.media import MediaSource, iterate_frames, list_sources
from augane.evaluate.overlay import paste_back, side_by_side
from augane.evaluate.user_media import MediaSettings, reconstruct_media
from augane.io.images import write_image
from augane.io.videos import probe_video, write_video
from tests.evaluate.worlds import media_world  # noqa: F401 - fixture

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def face_video(path, photo, frames=5, size=160):
    """A short pan over the photo's face region (the face stays in view)."""
    windows = [photo[8 * i:8 * i + 320, 60 + 6 * i:380 + 6 * i] for i in range(frames)]
    return write_video(path, (cv2.resize(w, (size, size), interpolation=cv2.INTER_AREA) for w in windows), fps=10)


def faceless_video(path, frames=4, size=96):
    ramp = np.linspace(0, 255, size, dtype=np.uint8)
    return write_video(path, (np.stack([np.roll(ramp, 7 * i)[None].repeat(size, 0)] * 3, -1) for i in range(frames)),
                       fps=10)


def test_photo_gives_parameters_mesh_render_overlays_and_records(media_world, astronaut, tmp_path):
    write_image(tmp_path / "astronaut.png", astronaut)
    result = reconstruct_media(tmp_path / "astronaut.png", tmp_path / "out", media_world.fresh_config(),
                               MediaSettings(method="augane", checkpoint=media_world.checkpoint), CPU)
    out = tmp_path / "out"
    assert result.reconstructed == 1
    folder = out / "astronaut"
    for name in ("000000.npz", "000000.obj", "000000_render.png", "000000_overlay.png", "000000_frame.png"):
        assert (folder / name).is_file(), name
    params = np.load(folder / "000000.npz", allow_pickle=False)
    assert str(params["method"]) == "augane"
    assert params["exp"].shape == (50,) and params["pose"].shape == (6,) and params["light"].shape == (9, 3)
    assert params["landmarks105_source"].shape == (105, 2)
    # the 105 landmarks fall on the astronaut's face (MediaPipe box, roughly x 170-300, y 60-230)
    centre = params["landmarks105_source"].mean(0)
    assert 120 < centre[0] < 340 and 40 < centre[1] < 260, centre
    assert params["au_prob_render"].shape == params["au_prob_input"].shape == (len(params["au_names"]),)
    frame = cv2.imread(str(folder / "000000_frame.png"))
    assert frame.shape == astronaut.shape
    table = pd.read_csv(out / "frames.csv")
    assert table[["status", "params", "frame_overlay"]].values.tolist() == [
        ["ok", "astronaut/000000.npz", "astronaut/000000_frame.png"]]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reconstructed"] == 1 and summary["untrained"]["gane_training_features"] is True
    assert summary["checkpoint"] == str(media_world.checkpoint)


def test_video_gives_per_frame_outputs_and_a_side_by_side_mp4(media_world, astronaut, tmp_path):
    video = face_video(tmp_path / "clip.mp4", astronaut)
    result = reconstruct_media(video, tmp_path / "out", media_world.fresh_config(),
                               MediaSettings(method="deca", mesh="ply", batch_size=2), CPU)
    folder = tmp_path / "out" / "clip"
    assert result.reconstructed == 5
    assert sorted(p.name for p in folder.glob("*.npz")) == [f"{i:06d}.npz" for i in range(5)]
    assert len(list(folder.glob("*.ply"))) == 5 and not list(folder.glob("*_frame.png"))
    info = probe_video(folder / "side_by_side.mp4", count_frames=True)
    assert info.frame_count == 5 and info.size == (320, 160)
    assert result.sources[0]["video"] == "clip/side_by_side.mp4"


def test_frame_stride_and_emoca(media_world, astronaut, tmp_path):
    video = face_video(tmp_path / "clip.avi", astronaut)
    result = reconstruct_media(video, tmp_path / "out", media_world.fresh_config(),
                               MediaSettings(method="emoca", mesh=None, frame_stride=2), CPU)
    assert [r.frame for r in result.records] == [0, 2, 4]
    assert not list((tmp_path / "out" / "clip").glob("*.obj"))
    assert str(np.load(tmp_path / "out" / "clip" / "000002.npz")["method"]) == "emoca"


def test_corrupt_and_faceless_videos_end_with_a_clear_report(media_world, tmp_path):
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    with pytest.raises(DataError, match=r"nothing was reconstructed from .*corrupt.mp4: .*cannot be opened"):
        reconstruct_media(tmp_path / "corrupt.mp4", tmp_path / "a", media_world.fresh_config(),
                          MediaSettings(method="deca"), CPU)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["statuses"] == {"unreadable": 1}
    faceless_video(tmp_path / "empty.avi")
    with pytest.raises(DataError, match=r"no usable face in any of its 4 frame\(s\) \(4 no_face\)"):
        reconstruct_media(tmp_path / "empty.avi", tmp_path / "b", media_world.fresh_config(),
                          MediaSettings(method="deca"), CPU)
    assert pd.read_csv(tmp_path / "b" / "frames.csv")["status"].tolist() == ["no_face"] * 4
    assert (tmp_path / "b" / "empty" / "side_by_side.mp4").is_file()


def test_folder_mixes_good_and_bad_files_without_stopping(media_world, astronaut, tmp_path):
    folder = tmp_path / "in"
    write_image(folder / "astronaut.jpg", astronaut)
    (folder / "broken.png").parent.mkdir(exist_ok=True)
    (folder / "broken.png").write_bytes(b"not an image")
    faceless_video(folder / "sub" / "empty.avi", frames=2)
    result = reconstruct_media(folder, tmp_path / "out", media_world.fresh_config(), MediaSettings(method="deca"),
                               CPU)
    statuses = {(r.name, r.frame): r.status for r in result.records}
    assert statuses == {("astronaut", 0): "ok", ("broken", 0): "unreadable", ("sub__empty", 0): "no_face",
                        ("sub__empty", 1): "no_face"}
    problems = [source.get("problem", "") for source in result.sources]
    assert any("broken.png" in p for p in problems) and any("no usable face" in p for p in problems)


def test_emoca_without_its_checkpoint_and_missing_input(media_world, tmp_path):
    config = media_world.fresh_config()
    config["resources"]["emoca"]["checkpoint"] = None
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(ConfigError, match="resources.emoca.checkpoint"):
        reconstruct_media(tmp_path / "x.png", tmp_path / "out", config, MediaSettings(method="emoca"), CPU)
    with pytest.raises(DataError, match="does not exist"):
        reconstruct_media(tmp_path / "nowhere.mp4", tmp_path / "out", config, MediaSettings(method="deca"), CPU)


def test_sources_get_unique_names(tmp_path):
    for name in ("a.jpg", "a.png", "b/c.mp4", ".hidden/d.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    sources = list_sources(tmp_path)
    assert [(s.name, s.kind) for s in sources] == [("a_jpg", "image"), ("a_png", "image"), ("b__c", "video")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image"):
        list_sources(tmp_path / "empty")


def test_truncated_video_reports_missing_frames(astronaut, tmp_path):
    video = face_video(tmp_path / "clip.avi", astronaut, frames=6)
    data = video.read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: int(len(data) * 0.6)])
    frames = list(iterate_frames(MediaSource(tmp_path / "cut.avi", "video", "cut")))
    statuses = [frame.status for frame in frames]
    assert statuses[0] == "ok" and statuses.count("ok") < 6
    assert all(status in ("ok", "frame_missing") for status in statuses)


def test_paste_back_puts_the_crop_where_it_came_from():
    frame = np.zeros((40, 60, 3), np.uint8)
    transform = np.array([[2.0, 0.0, -20.0], [0.0, 2.0, -10.0]])  # crop = 2 * (source - (10, 5))
    render = np.full((20, 20, 3), 200, np.uint8)
    mask = np.zeros((20, 20), np.float32)
    mask[4:16, 4:16] = 1.0
    out = paste_back(frame, render, mask, transform)
    # crop pixels 4..16 are source pixels 12..18 in x (+10) and 7..13 in y (+5)
    assert out[9, 15].tolist() == [200, 200, 200]
    assert out[2, 2].tolist() == [0, 0, 0] and out[30, 50].tolist() == [0, 0, 0]
    assert side_by_side(np.zeros((1080, 1921, 3), np.uint8), np.zeros((1080, 1921, 3), np.uint8)).shape == (720, 2562, 3)
