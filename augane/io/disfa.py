"""The DISFA dataset layout: subjects, videos and per-frame AU intensity labels.

DISFA is licence-gated; users bring it. AUGANE reads (and the demo world
writes) this layout under a root folder::

    Videos_LeftCamera/LeftVideoSN001_comp.avi
    ActionUnit_Labels/SN001/SN001_au1.txt      one "frame,intensity" line per frame

Label files number frames from 1 and hold intensities 0-5. AUGANE addresses
video frames from 0, so label frame ``k`` is video frame ``k - 1``; every
table returned here uses the 0-based ``frame``. The official release has 27
subjects with 4845 frames each (SN010: 4844).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from augane.aus import DISFA_AUS, au_label
from augane.errors import DataError
from augane.io.atomic import write_text_atomic
from augane.io.source_errors import SourceReadError
from augane.io.videos import probe_video

VIDEO_FOLDER = "Videos_LeftCamera"
LABEL_FOLDER = "ActionUnit_Labels"

#: The 27 subjects of the official release.
DISFA_SUBJECTS: tuple[str, ...] = tuple(
    f"SN{number:03d}" for number in (*range(1, 14), 16, 17, 18, 21, *range(23, 33))
)

#: Frames per video of the official release (every subject but SN010).
DISFA_FRAMES = 4845
DISFA_FRAMES_SN010 = 4844

_SUBJECT = re.compile(r"^SN\d{3}$")
_VIDEO_NAME = re.compile(r"^LeftVideo(SN\d{3})_comp\.avi$")
MAX_INTENSITY = 5


def disfa_video_path(root: str | Path, subject: str) -> Path:
    """Where the left-camera video of ``subject`` (e.g. ``"SN001"``) lives under ``root``."""
    return Path(root) / VIDEO_FOLDER / f"LeftVideo{subject}_comp.avi"


def disfa_label_path(root: str | Path, subject: str, au: int) -> Path:
    """Where the intensity labels of AU ``au`` for ``subject`` live under ``root``."""
    return Path(root) / LABEL_FOLDER / subject / f"{subject}_au{au}.txt"


def _check_root(root: Path) -> None:
    if not root.is_dir():
        raise DataError(f"DISFA root {root} is not a folder")
    missing = [name for name in (VIDEO_FOLDER, LABEL_FOLDER) if not (root / name).is_dir()]
    if missing:
        raise DataError(
            f"DISFA root {root} lacks {missing}; expected {VIDEO_FOLDER}/LeftVideoSNxxx_comp.avi and "
            f"{LABEL_FOLDER}/SNxxx/SNxxx_au<k>.txt"
        )


def disfa_subjects(root: str | Path) -> list[str]:
    """Subjects present under ``root`` (a label folder or a video), sorted, e.g. ``["SN001", "SN002"]``.

    Raises:
        DataError: ``root`` is not a DISFA layout.
    """
    root = Path(root)
    _check_root(root)
    subjects = {path.name for path in (root / LABEL_FOLDER).iterdir() if path.is_dir() and _SUBJECT.match(path.name)}
    for path in (root / VIDEO_FOLDER).iterdir():
        match = _VIDEO_NAME.match(path.name)
        if match:
            subjects.add(match.group(1))
    return sorted(subjects)


def read_label_file(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse one DISFA label file.

    Returns:
        ``(frames, intensities)``: (F,) int64 0-based video frames and (F,) int8
        intensities 0-5, in file order. Blank lines are skipped.
    Raises:
        DataError: missing file, or a malformed line / out-of-range value (naming the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"DISFA label file {path} does not exist")
    frames, intensities = [], []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            parts = [part.strip() for part in text.split(",")]
            if len(parts) != 2 or not parts[0].lstrip("-").isdigit() or not parts[1].lstrip("-").isdigit():
                raise DataError(f"{path}, line {number}: expected 'frame,intensity' with two integers, got {text!r}")
            frame, intensity = int(parts[0]), int(parts[1])
            if frame < 1:
                raise DataError(f"{path}, line {number}: frame {frame} (DISFA frames start at 1)")
            if not 0 <= intensity <= MAX_INTENSITY:
                raise DataError(f"{path}, line {number}: intensity {intensity} outside 0-{MAX_INTENSITY}")
            frames.append(frame - 1)
            intensities.append(intensity)
    return np.asarray(frames, dtype=np.int64), np.asarray(intensities, dtype=np.int8)


def read_disfa_labels(root: str | Path, subject: str, aus: tuple[int, ...] = DISFA_AUS) -> pd.DataFrame:
    """AU intensities of one subject, one row per labelled frame.

    Args:
        root: DISFA root folder.
        subject: e.g. ``"SN001"``.
        aus: AUs to read (each needs its label file).
    Returns:
        DataFrame with ``frame`` (int64, 0-based video frame, sorted) and one
        int8 column ``AU<k>`` per AU; -1 where a file lacks a frame that another has.
    Raises:
        DataError: a missing label file, a malformed line, or a frame listed twice.
    """
    columns = {}
    for au in aus:
        path = disfa_label_path(root, subject, au)
        if not path.is_file():
            raise DataError(f"DISFA subject {subject}: label file {path} for AU{au} does not exist")
        frames, intensities = read_label_file(path)
        series = pd.Series(intensities, index=frames)
        duplicated = series.index.duplicated()
        if duplicated.any():
            frame = int(series.index[duplicated][0]) + 1
            raise DataError(f"{path}: frame {frame} is listed more than once")
        columns[au_label(au)] = series
    table = pd.DataFrame(columns).sort_index()
    table = table.fillna(-1).astype(np.int8)
    table.index = table.index.astype(np.int64)
    return table.rename_axis("frame").reset_index()


def write_disfa_labels(root: str | Path, subject: str, labels: pd.DataFrame) -> list[Path]:
    """Write label files for ``subject`` in DISFA's format (the demo world uses this for its synthetic DISFA).

    Args:
        labels: ``frame`` (0-based) and ``AU<k>`` columns with intensities 0-5.
    Returns:
        The files written, one per ``AU<k>`` column.
    """
    written = []
    frames = labels["frame"].to_numpy(dtype=np.int64)
    for column in labels.columns:
        match = re.fullmatch(r"AU(\d+)", column)
        if not match:
            continue
        values = labels[column].to_numpy()
        if values.min(initial=0) < 0 or values.max(initial=0) > MAX_INTENSITY:
            raise ValueError(f"{column}: DISFA intensities must lie in 0-{MAX_INTENSITY}")
        path = disfa_label_path(root, subject, int(match.group(1)))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, "".join(f"{frame + 1},{int(value)}\n" for frame, value in zip(frames, values)))
        written.append(path)
    return written


@dataclass
class DisfaSubject:
    """One subject's labels checked against its video.

    Attributes:
        subject: e.g. ``"SN001"``.
        video: the video file.
        labels: as :func:`read_disfa_labels`.
        video_frames: frames the video holds (container count).
        problems: human-readable findings (e.g. frame count mismatch), recorded in the manifest.
    """

    subject: str
    video: Path
    labels: pd.DataFrame
    video_frames: int
    problems: list[str] = field(default_factory=list)


def load_disfa_subject(root: str | Path, subject: str, aus: tuple[int, ...] = DISFA_AUS) -> DisfaSubject:
    """Read a subject's labels and check them against its video.

    A video that cannot be opened, or whose frame count differs from the
    labels, is recorded in ``problems`` (frames without video become
    ``frame_missing`` samples downstream) rather than raised.

    Raises:
        DataError: the video file or a label file is missing, or a label file is malformed.
    """
    video = disfa_video_path(root, subject)
    if not video.is_file():
        raise DataError(f"DISFA subject {subject}: video {video} does not exist")
    labels = read_disfa_labels(root, subject, aus)
    problems = []
    try:
        video_frames = probe_video(video).frame_count
    except SourceReadError as err:
        video_frames = 0
        problems.append(f"{subject}: {err}")
    labelled = int(labels["frame"].max()) + 1 if len(labels) else 0
    if video_frames and video_frames != labelled:
        problems.append(
            f"{subject}: labels cover {labelled} frames but video {video.name} has {video_frames}"
            + ("; the labelled frames past its end will be recorded as frame_missing" if labelled > video_frames else
               "; frames past the labels are left out")
        )
    return DisfaSubject(subject=subject, video=video, labels=labels, video_frames=video_frames, problems=problems)
