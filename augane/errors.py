"""Errors that speak to a researcher: each names the file or key and what was expected.

Commands catch :class:`AuganeError` at the top and print its message without a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AuganeError(Exception):
    """Base class of every error AUGANE raises on purpose."""


class ConfigError(AuganeError):
    """A configuration file or value is missing or malformed."""


class AssetError(AuganeError):
    """A user-supplied asset (model file, checkpoint, embedding, dataset) is missing or not in the expected format."""


class CheckpointError(AssetError):
    """A checkpoint does not match the network it is loaded into."""


class DataError(AuganeError):
    """Input data (images, videos, labels, caches) cannot be read as expected."""
