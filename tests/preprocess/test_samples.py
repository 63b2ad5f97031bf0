"""The bundled sample media: two real photos and a pan/zoom video whose every frame shows a face."""

from __future__ import annotations

import numpy as np

from augane.io.images import read_image
from augane.io.videos import probe_video, read_frames
from augane.preprocess.samples import VIDEO_SIZE, pan_zoom_frames, write_samples


def test_write_samples(tmp_path, astronaut):
    paths = write_samples(tmp_path / "images", tmp_path / "videos")
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "images/astronaut.png", "images/grace_hopper.jpg", "videos/pan_zoom.mp4",
    ]
    np.testing.assert_array_equal(read_image(paths[0]), astronaut)
    assert read_image(paths[1]).shape == (600, 512, 3)
    info = probe_video(paths[2])
    assert info.frame_count == len(pan_zoom_frames()) and info.size == (VIDEO_SIZE, VIDEO_SIZE)


def test_every_frame_shows_a_face(face_mesh):
    frames = pan_zoom_frames(frames_per_photo=6)
    sizes = [max(face.size for face in face_mesh.detect(frame).faces) for frame in frames]
    assert sizes[5] > sizes[0] * 1.3  # the zoom brings the astronaut closer
    assert all(size > 40 for size in sizes)


def test_video_frames_match_what_was_written(tmp_path):
    path = write_samples(tmp_path / "i", tmp_path / "v")[2]
    expected = pan_zoom_frames()
    for index, frame in zip((0, 30), read_frames(path, (0, 30))):
        assert np.abs(frame.astype(float) - expected[index]).mean() < 6
