"""The media lister shared by image and video datasets."""

from __future__ import annotations

from augane.io.images import IMAGE_EXTENSIONS
from augane.io.listing import list_files


def test_lists_matching_files_recursively_sorted_skipping_hidden_entries(tmp_path):
    for name in ("b.PNG", "a.jpg", "sub/c.jpeg", "sub/notes.txt", ".hidden.png", ".cache/d.png", "e.png/f.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = list_files(tmp_path, IMAGE_EXTENSIONS)
    assert [path.relative_to(tmp_path).as_posix() for path in found] == ["a.jpg", "b.PNG", "sub/c.jpeg"]


def test_an_empty_folder_lists_nothing(tmp_path):
    assert list_files(tmp_path, IMAGE_EXTENSIONS) == []
