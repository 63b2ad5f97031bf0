"""Per-sample outcome of preprocessing, stored as ``status`` (uint8) in every preprocess store.

A sample that cannot be used never stops its shard: it gets one of these codes
and black pixels / NaN landmarks, and the rest of the shard goes on. Later
stages select samples with ``status == Status.OK``.
"""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    """Outcome of preprocessing one sample (values are stable: they are stored on disk)."""

    #: a face was found, landmarks and crop are valid.
    OK = 0
    #: the image was read but no face was detected.
    NO_FACE = 1
    #: a face was detected, but the landmark model rejected it (no 478-point mesh).
    NO_MESH = 2
    #: the largest face's landmark box, or the whole image, is below ``preprocess.min_face_size``
    #: source pixels (crop and landmarks are still stored when a face was found).
    TOO_SMALL = 3
    #: the image has more than ``preprocess.max_image_pixels`` pixels; not decoded.
    TOO_LARGE = 4
    #: not an image or video at all (empty file, text, unsupported format), or a video that does not open.
    UNREADABLE = 5
    #: recognised as an image, but its pixel data is damaged or truncated.
    CORRUPT = 6
    #: the source file named in the manifest no longer exists.
    MISSING = 7
    #: the video frame could not be decoded (past the end of a short, empty or damaged video).
    FRAME_MISSING = 8
    #: an unexpected error while processing this sample (logged with its traceback).
    FAILED = 9


def status_codes() -> dict[str, int]:
    """``{"ok": 0, "no_face": 1, ...}``: the mapping stored in store attributes and index files."""
    return {status.name.lower(): int(status) for status in Status}


def status_name(code: int) -> str:
    """Lower-case name of a stored status code (``"unknown_<code>"`` for codes this version does not know)."""
    try:
        return Status(int(code)).name.lower()
    except ValueError:
        return f"unknown_{int(code)}"
