"""Zarr shard stores are written whole or not at all."""

from __future__ import annotations

import numpy as np
import pytest

from augane.errors import DataError
from augane.io.shards import ArraySpec, open_store, write_store


def test_write_and_read_back(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, size=(5, 8, 8, 3), dtype=np.uint8)
    path = write_store(
        tmp_path / "s.zarr",
        {"image": ArraySpec(images, ("sample", "y", "x", "channel"))},
        {"stage": "test"},
    )
    store = open_store(path, required=["image"])
    np.testing.assert_array_equal(store["image"][:], images)
    assert store.attrs["stage"] == "test"
    assert tuple(store["image"].metadata.dimension_names) == ("sample", "y", "x", "channel")


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="share the sample axis"):
        write_store(
            tmp_path / "s.zarr",
            {"a": ArraySpec(np.zeros((2, 3)), ("sample", "x")), "b": ArraySpec(np.zeros((3,)), ("sample",))},
            {},
        )
    assert list(tmp_path.iterdir()) == []


def test_open_names_missing_arrays(tmp_path):
    path = write_store(tmp_path / "s.zarr", {"a": ArraySpec(np.zeros((2,)), ("sample",))}, {})
    with pytest.raises(DataError, match=r"lacks arrays \['b'\]"):
        open_store(path, required=["a", "b"])
    with pytest.raises(DataError, match="not a Zarr store"):
        open_store(tmp_path / "nothing.zarr")
