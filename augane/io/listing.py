"""Listing the media files of a folder, the one rule shared by image and video datasets."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path


def list_files(folder: str | Path, extensions: Collection[str]) -> list[Path]:
    """Files under ``folder`` whose ending (lower-cased, with the dot) is in ``extensions``.

    Recursive; hidden files and folders (name starting with ``.``) are skipped; sorted by the path
    relative to ``folder`` in POSIX form, so the order is the same on every machine.
    """
    folder = Path(folder)
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in extensions and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())
