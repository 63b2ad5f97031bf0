"""Reading and writing videos with OpenCV (FFmpeg backend).

Frames are addressed by 0-based index. :class:`VideoFrames` reads the frames a
shard needs in increasing order: it decodes forward for small gaps and seeks
for large ones, so a shard in the middle of a long video does not decode
everything before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from augane.io.atomic import atomic_path
from augane.io.listing import list_files
from augane.io.source_errors import FrameMissingError, SourceMissingError, SourceUnreadableError

#: File name endings (lower case) taken as videos when a folder is scanned.
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
)

#: FourCC OpenCV writes for each container (all available in the opencv wheels).
_WRITER_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}

#: Gaps (in frames) up to which decoding forward beats seeking.
_SEEK_THRESHOLD = 48


def list_videos(folder: str | Path) -> list[Path]:
    """Video files under ``folder`` (recursive, case-insensitive endings, hidden entries skipped), sorted."""
    return list_files(folder, VIDEO_EXTENSIONS)


@dataclass(frozen=True)
class VideoInfo:
    """What a video's container says: frame count, frames per second, (width, height) in pixels."""

    frame_count: int
    fps: float
    size: tuple[int, int]


def _open(path: Path) -> cv2.VideoCapture:
    if not path.exists():
        raise SourceMissingError(f"video {path} does not exist")
    if path.is_dir():
        raise SourceUnreadableError(f"video {path} is a directory")
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise SourceUnreadableError(f"video {path} cannot be opened (empty, damaged or not a video OpenCV can decode)")
    return capture


def probe_video(path: str | Path, count_frames: bool = False) -> VideoInfo:
    """Frame count, fps and size of a video.

    Args:
        path: the video file.
        count_frames: decode every frame to count them instead of trusting the
            container's count (used when the container reports none).
    Raises:
        SourceMissingError, SourceUnreadableError.
    """
    path = Path(path)
    capture = _open(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        if count_frames or count <= 0:
            count = 0
            while capture.grab():
                count += 1
        return VideoInfo(frame_count=max(count, 0), fps=fps, size=size)
    finally:
        capture.release()


class VideoFrames:
    """Random-ish access to a video's frames, efficient for increasing indices.

    Use as a context manager; :meth:`read` returns (H, W, 3) uint8 RGB.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._capture = _open(self.path)
        self._next = 0  # index of the frame the next grab() returns

    def __enter__(self) -> VideoFrames:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the decoder."""
        self._capture.release()

    def _rewind(self) -> None:
        self._capture.release()
        self._capture = _open(self.path)
        self._next = 0

    def _seek(self, index: int) -> None:
        """Jump to ``index``; falls back to decoding forward when the backend cannot seek exactly."""
        if self._capture.set(cv2.CAP_PROP_POS_FRAMES, index) and int(self._capture.get(cv2.CAP_PROP_POS_FRAMES)) == index:
            self._next = index
            return
        self._rewind()

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based) as (H, W, 3) uint8 RGB.

        Raises:
            FrameMissingError: the frame cannot be decoded (past the end, or damaged).
        """
        if index < 0:
            raise FrameMissingError(f"{self.path}: frame index {index} is negative")
        if index < self._next:
            self._rewind()
        if index - self._next > _SEEK_THRESHOLD:
            self._seek(index)
        while self._next < index:
            if not self._capture.grab():
                raise FrameMissingError(f"{self.path}: frame {index} cannot be decoded (the video ends at frame {self._next})")
            self._next += 1
        ok, frame = self._capture.read()
        if not ok or frame is None:
            raise FrameMissingError(f"{self.path}: frame {index} cannot be decoded (past the end or damaged)")
        self._next = index + 1
        if frame.ndim == 2:
            return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def read_frames(path: str | Path, indices: Iterable[int]) -> list[np.ndarray]:
    """Frames ``indices`` of a video as (H, W, 3) uint8 RGB arrays (convenience over :class:`VideoFrames`)."""
    with VideoFrames(path) as video:
        return [video.read(index) for index in indices]


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 25.0) -> Path:
    """Write (H, W, 3) uint8 RGB frames to a video atomically (mp4v for .mp4/.mov/.m4v, MJPG for .avi/.mkv).

    Raises:
        ValueError: no frames, frames of different sizes, or an unsupported ending.
    """
    path = Path(path)
    fourcc = _WRITER_FOURCC.get(path.suffix.lower())
    if fourcc is None:
        raise ValueError(f"cannot choose a codec for {path}: use one of {sorted(_WRITER_FOURCC)}")
    writer = None
    count = 0
    with atomic_path(path) as temporary:
        encoded = temporary.with_name(temporary.name + path.suffix)  # OpenCV picks the container from the ending
        try:
            for frame in frames:
                frame = np.asarray(frame, dtype=np.uint8)
                height, width = frame.shape[:2]
                if writer is None:
                    size = (width, height)
                    writer = cv2.VideoWriter(str(encoded), cv2.VideoWriter_fourcc(*fourcc), fps, size)
                    if not writer.isOpened():
                        raise ValueError(f"OpenCV cannot write {fourcc} video to {path}")
                elif (width, height) != size:
                    raise ValueError(f"frame {count} is {width}x{height}, the video is {size[0]}x{size[1]}")
                writer.write(np.ascontiguousarray(frame[..., ::-1]))
                count += 1
            if writer is not None:
                writer.release()
                writer = None
            if count == 0:
                raise ValueError(f"no frames given for {path}")
            encoded.replace(temporary)
        finally:
            if writer is not None:
                writer.release()
            encoded.unlink(missing_ok=True)
    return path
