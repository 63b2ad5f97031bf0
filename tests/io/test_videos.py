"""Videos written with OpenCV read back frame by frame, in any order, with clear failures."""

from __future__ import annotations

import numpy as np
import pytest

from augane.io.source_errors import FrameMissingError, SourceMissingError, SourceUnreadableError
from augane.io.videos import VideoFrames, list_videos, probe_video, read_frames, write_video


def _frames(count: int, size: int = 64) -> list[np.ndarray]:
    """Frames carrying their index in binary as 7 black/white 8x8 blocks (robust to lossy codecs)."""
    frames = []
    for index in range(count):
        frame = np.full((size, size + 16, 3), 128, np.uint8)
        for bit in range(7):
            frame[16:24, 8 * bit + 8 : 8 * bit + 16] = 255 if index >> bit & 1 else 0
        frames.append(frame)
    return frames


def _index_of(frame: np.ndarray) -> int:
    return sum(1 << bit for bit in range(7) if frame[18:22, 8 * bit + 10 : 8 * bit + 14].mean() > 128)


@pytest.fixture(scope="module", params=[".mp4", ".avi"])
def video(tmp_path_factory, request):
    path = tmp_path_factory.mktemp("videos") / f"clip{request.param}"
    write_video(path, _frames(70), fps=10)
    return path


def test_probe_reports_count_fps_size(video):
    info = probe_video(video)
    assert (info.frame_count, info.size) == (70, (80, 64))
    assert info.fps == pytest.approx(10.0)
    assert probe_video(video, count_frames=True).frame_count == 70


def test_frames_in_any_order_and_far_seeks(video):
    order = [0, 1, 5, 60, 61, 3, 69, 2]
    frames = read_frames(video, order)
    assert [_index_of(frame) for frame in frames] == order
    assert frames[0].shape == (64, 80, 3) and frames[0].dtype == np.uint8


def test_past_the_end_is_frame_missing(video):
    with VideoFrames(video) as reader:
        assert _index_of(reader.read(69)) == 69
        with pytest.raises(FrameMissingError, match="frame 70"):
            reader.read(70)
        with pytest.raises(FrameMissingError, match="negative"):
            reader.read(-1)
        assert _index_of(reader.read(10)) == 10  # still usable after a failure


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(SourceMissingError):
        probe_video(tmp_path / "none.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.avi").write_text("not a video\n" * 50)
    for name in ("empty.mp4", "text.avi"):
        with pytest.raises(SourceUnreadableError, match="cannot be opened"):
            VideoFrames(tmp_path / name)


def test_write_video_checks_its_input(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "a.mp4", [])
    with pytest.raises(ValueError, match="codec"):
        write_video(tmp_path / "a.gif", _frames(2))
    with pytest.raises(ValueError, match="frame 1 is"):
        write_video(tmp_path / "a.avi", [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 16, 3), np.uint8)])
    assert list(tmp_path.iterdir()) == []


def test_list_videos(tmp_path):
    for name in ["b.MP4", "a/c.avi", ".hidden/d.mp4", "e.txt"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in list_videos(tmp_path)] == ["a/c.avi", "b.MP4"]
