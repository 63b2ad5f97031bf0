"""Users' media for ``augane reconstruct``: which files an input names, and their frames one by one.

An input is an image, a video (any container OpenCV's FFmpeg backend
decodes), or a folder searched recursively for both. Every file becomes a
:class:`MediaSource` with a unique output name (its path relative to the
folder, without the ending; the ending is kept where two files would
clash). Frames come out as :class:`MediaFrame`: the pixels, or the status
that says why there are none (:class:`augane.preprocess.status.Status`
names), so that one bad frame or file never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augane.errors import DataError
from augane.io.images import IMAGE_EXTENSIONS, list_images, read_image
from augane.io.source_errors import FrameMissingError, SourceReadError
from augane.io.videos import VIDEO_EXTENSIONS, VideoFrames, list_videos, probe_video

log = logging.getLogger(__name__)

#: Consecutive undecodable frames after which the rest of a video is given up.
MAX_CONSECUTIVE_FAILURES = 25


@dataclass(frozen=True)
class MediaSource:
    """One input file.

    Attributes:
        path: the file.
        kind: ``image`` or ``video``.
        name: its output folder name (unique among the sources of one input).
    """

    path: Path
    kind: str
    name: str


@dataclass(frozen=True)
class MediaFrame:
    """One frame of a source, or why it could not be read.

    Attributes:
        index: 0-based frame number (0 for an image).
        rgb: (H, W, 3) uint8, or None when unreadable.
        status: ``ok`` or a :class:`~augane.preprocess.status.Status` name (``unreadable``, ``corrupt``,
            ``frame_missing``, ...).
        detail: why, for a status other than ok.
    """

    index: int
    rgb: np.ndarray | None
    status: str = "ok"
    detail: str = ""


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    return "video"  # any other file: let OpenCV's decoders decide (a failure is reported as unreadable)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "input"


def list_sources(input_path: str | Path) -> list[MediaSource]:
    """The files an input names, each with a unique output name.

    Raises:
        DataError: the input does not exist, or a folder holds no image or video.
    """
    path = Path(input_path)
    if not path.exists():
        raise DataError(f"input {path} does not exist (expected an image, a video or a folder of them)")
    if path.is_file():
        return [MediaSource(path, _kind(path), _safe(path.stem))]
    files = sorted({*list_images(path), *list_videos(path)}, key=lambda p: p.relative_to(path).as_posix())
    if not files:
        raise DataError(
            f"folder {path} holds no image ({', '.join(sorted(IMAGE_EXTENSIONS))}) or video "
            f"({', '.join(sorted(VIDEO_EXTENSIONS))})"
        )
    stems = [_safe(f.relative_to(path).with_suffix("").as_posix().replace("/", "__")) for f in files]
    clashes = {stem for stem in stems if stems.count(stem) > 1}
    names = [f"{stem}_{f.suffix.lstrip('.').lower()}" if stem in clashes else stem for stem, f in zip(stems, files)]
    return [MediaSource(f, _kind(f), name) for f, name in zip(files, names)]


def frame_count(source: MediaSource) -> int | None:
    """Frames in a source (1 for an image; the container's count for a video; None when unknown or unreadable)."""
    if source.kind == "image":
        return 1
    try:
        count = probe_video(source.path).frame_count
    except SourceReadError:
        return None
    return count or None


def iterate_frames(source: MediaSource, frame_stride: int = 1, max_image_pixels: int = 100_000_000) -> Iterator[MediaFrame]:
    """The frames of a source, every ``frame_stride``-th for videos.

    An unreadable image yields one frame with its status; a video that does
    not open yields one frame with status ``unreadable``; undecodable video
    frames yield ``frame_missing`` frames, and after
    :data:`MAX_CONSECUTIVE_FAILURES` in a row, or at the end of the stream,
    iteration stops.
    """
    if frame_stride < 1:
        raise ValueError(f"frame_stride must be >= 1, got {frame_stride}")
    if source.kind == "image":
        try:
            yield MediaFrame(0, read_image(source.path, max_image_pixels))
        except SourceReadError as err:
            yield MediaFrame(0, None, err.kind, str(err))
        return
    try:
        video = VideoFrames(source.path)
    except SourceReadError as err:
        yield MediaFrame(0, None, err.kind, str(err))
        return
    expected = frame_count(source)
    with video:
        index, failures = 0, 0
        while expected is None or index < expected:
            try:
                rgb = video.read(index)
            except FrameMissingError as err:
                if expected is None:
                    return  # the end of a stream whose length the container does not say
                failures += 1
                yield MediaFrame(index, None, "frame_missing", str(err))
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    log.warning("%s: %d frames in a row cannot be decoded; giving up at frame %d of %d",
                                source.path, failures, index, expected)
                    return
                index += frame_stride
                continue
            failures = 0
            yield MediaFrame(index, rgb)
            index += frame_stride
