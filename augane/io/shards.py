"""Zarr v3 shard stores: one store per shard and stage, written whole by one job.

A store holds arrays chunked along the sample axis, each with
``dimension_names`` whose first entry is ``"sample"``, and provenance in its
attributes. :func:`write_store` builds the store under a temporary name and
renames it into place, so a store that exists is complete.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from augane.errors import DataError
from augane.io.atomic import atomic_path

# Snakemake marks directory outputs with a `.snakemake_timestamp` file, which
# Zarr reports as an unknown member of the hierarchy whenever a store is listed.
warnings.filterwarnings("ignore", message=r"Object at \.snakemake_timestamp is not recognized")

#: Samples per chunk along the sample axis (bounded by the shard size).
SAMPLE_CHUNK = 64


@dataclass(frozen=True)
class ArraySpec:
    """One array of a store: its data and the names of its dimensions (first must be ``sample``)."""

    data: np.ndarray
    dims: tuple[str, ...]


def write_store(path: str | Path, arrays: Mapping[str, ArraySpec], attributes: Mapping[str, Any]) -> Path:
    """Write a complete Zarr v3 store atomically.

    Args:
        path: destination directory (e.g. ``results/cache/x/shard-0000/preprocess.zarr``).
        arrays: name -> :class:`ArraySpec`; all share the same sample count.
        attributes: JSON-serialisable provenance stored on the group.
    Returns:
        ``path``.
    """
    path = Path(path)
    counts = {name: spec.data.shape[0] for name, spec in arrays.items()}
    if len(set(counts.values())) > 1:
        raise ValueError(f"arrays of one store must share the sample axis, got counts {counts}")
    with atomic_path(path) as temporary:
        group = zarr.open_group(temporary, mode="w")
        group.attrs.update(dict(attributes))
        for name, spec in arrays.items():
            data = np.ascontiguousarray(spec.data)
            if len(spec.dims) != data.ndim or spec.dims[0] != "sample":
                raise ValueError(f"array {name!r}: dims {spec.dims} do not fit shape {data.shape} (first must be 'sample')")
            chunks = (max(1, min(SAMPLE_CHUNK, data.shape[0])),) + data.shape[1:]
            array = group.create_array(
                name, shape=data.shape, dtype=data.dtype, chunks=chunks, dimension_names=spec.dims
            )
            if data.size:
                array[...] = data
    return path


def open_store(path: str | Path, required: Sequence[str] = ()) -> zarr.Group:
    """Open a store read-only, checking that ``required`` arrays are present."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise DataError(f"{path} is not a Zarr store (no zarr.json); was the stage that writes it run?")
    group = zarr.open_group(path, mode="r")
    present = set(group.array_keys())
    missing = [name for name in required if name not in present]
    if missing:
        raise DataError(f"Zarr store {path} lacks arrays {missing} (has {sorted(present)})")
    return group
