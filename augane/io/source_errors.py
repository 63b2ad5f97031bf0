"""Why one source (image file, video, video frame) could not be read.

Readers in :mod:`augane.io` raise these; the preprocessing stage turns each
into a recorded per-sample status instead of stopping the shard.
"""

from __future__ import annotations

from augane.errors import DataError


class SourceReadError(DataError):
    """A source file or frame cannot be read; ``kind`` says why (a status name of the preprocessing stage)."""

    kind = "unreadable"


class SourceMissingError(SourceReadError):
    """The file does not exist (any more)."""

    kind = "missing"


class SourceUnreadableError(SourceReadError):
    """Not an image/video this reader understands (empty file, text, unsupported format or pixel type)."""

    kind = "unreadable"


class SourceCorruptError(SourceReadError):
    """Recognised as an image, but its pixel data is damaged or truncated."""

    kind = "corrupt"


class SourceTooLargeError(SourceReadError):
    """More pixels than the configured limit; left undecoded to protect memory."""

    kind = "too_large"


class FrameMissingError(SourceReadError):
    """A video frame that cannot be decoded (past the end of a short, empty or damaged video)."""

    kind = "frame_missing"
