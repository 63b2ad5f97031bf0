"""The DISFA reader on a tiny DISFA-layout tree written by the test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from augane.aus import DISFA_AUS
from augane.errors import DataError
from augane.io.disfa import (
    DISFA_SUBJECTS,
    disfa_label_path,
    disfa_subjects,
    disfa_video_path,
    load_disfa_subject,
    read_disfa_labels,
    read_label_file,
    write_disfa_labels,
)
from augane.io.videos import write_video


def _labels(frames: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"frame": np.arange(frames)})
    for au in DISFA_AUS:
        table[f"AU{au}"] = rng.integers(0, 6, frames).astype(np.int8)
    return table


def make_disfa_tree(root, subjects: dict[str, tuple[int, int]]) -> dict[str, pd.DataFrame]:
    """Write a DISFA layout: ``subjects`` maps subject -> (label frames, video frames)."""
    written = {}
    for seed, (subject, (label_frames, video_frames)) in enumerate(subjects.items()):
        labels = _labels(label_frames, seed)
        write_disfa_labels(root, subject, labels)
        video = disfa_video_path(root, subject)
        video.parent.mkdir(parents=True, exist_ok=True)
        write_video(video, [np.full((32, 32, 3), 10 * i, np.uint8) for i in range(video_frames)], fps=20)
        written[subject] = labels
    return written


def test_official_subject_list():
    assert len(DISFA_SUBJECTS) == 27 and DISFA_SUBJECTS[0] == "SN001" and "SN014" not in DISFA_SUBJECTS


def test_layout_paths_and_file_format(tmp_path):
    assert disfa_video_path(tmp_path, "SN003").relative_to(tmp_path).as_posix() == "Videos_LeftCamera/LeftVideoSN003_comp.avi"
    assert disfa_label_path(tmp_path, "SN003", 12).relative_to(tmp_path).as_posix() == "ActionUnit_Labels/SN003/SN003_au12.txt"
    write_disfa_labels(tmp_path, "SN003", pd.DataFrame({"frame": [0, 1], "AU12": [0, 4]}))
    assert disfa_label_path(tmp_path, "SN003", 12).read_text() == "1,0\n2,4\n"  # 1-based frames on disk


def test_reads_back_what_was_written(tmp_path):
    written = make_disfa_tree(tmp_path, {"SN001": (12, 12), "SN002": (9, 9)})
    assert disfa_subjects(tmp_path) == ["SN001", "SN002"]
    for subject, labels in written.items():
        read = read_disfa_labels(tmp_path, subject)
        assert list(read.columns) == ["frame"] + [f"AU{au}" for au in DISFA_AUS]
        pd.testing.assert_frame_equal(read, labels, check_dtype=False)
        record = load_disfa_subject(tmp_path, subject)
        assert record.video_frames == len(labels) and record.problems == []


def test_frame_count_mismatch_is_recorded(tmp_path):
    make_disfa_tree(tmp_path, {"SN010": (10, 8), "SN011": (6, 9)})
    short = load_disfa_subject(tmp_path, "SN010")
    assert short.video_frames == 8 and len(short.labels) == 10
    assert "labels cover 10 frames but video LeftVideoSN010_comp.avi has 8" in short.problems[0]
    assert "frame_missing" in short.problems[0]
    long = load_disfa_subject(tmp_path, "SN011")
    assert "left out" in long.problems[0]


def test_missing_label_file_is_named(tmp_path):
    make_disfa_tree(tmp_path, {"SN001": (5, 5)})
    disfa_label_path(tmp_path, "SN001", 9).unlink()
    with pytest.raises(DataError, match=r"SN001_au9\.txt for AU9 does not exist"):
        read_disfa_labels(tmp_path, "SN001")


def test_missing_video_is_named(tmp_path):
    make_disfa_tree(tmp_path, {"SN001": (5, 5)})
    disfa_video_path(tmp_path, "SN001").unlink()
    with pytest.raises(DataError, match=r"LeftVideoSN001_comp\.avi does not exist"):
        load_disfa_subject(tmp_path, "SN001")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1,0\n2;3\n", "line 2: expected 'frame,intensity'"),
        ("1,0\n\n3,x\n", "line 3: expected"),
        ("1,0\n2,7\n", "line 2: intensity 7 outside 0-5"),
        ("0,1\n", "line 1: frame 0"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "SN001_au1.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as caught:
        read_label_file(path)
    assert str(path) in str(caught.value)


def test_duplicate_frames_and_gaps(tmp_path):
    make_disfa_tree(tmp_path, {"SN001": (4, 4)})
    path = disfa_label_path(tmp_path, "SN001", 1)
    path.write_text("1,1\n2,2\n2,3\n")
    with pytest.raises(DataError, match="frame 2 is listed more than once"):
        read_disfa_labels(tmp_path, "SN001")
    path.write_text("1,1\n2,2\n")  # two frames fewer than the other AUs
    labels = read_disfa_labels(tmp_path, "SN001")
    assert labels["AU1"].tolist() == [1, 2, -1, -1]


def test_not_a_disfa_root(tmp_path):
    with pytest.raises(DataError, match="lacks"):
        disfa_subjects(tmp_path)
    with pytest.raises(DataError, match="not a folder"):
        disfa_subjects(tmp_path / "nowhere")
