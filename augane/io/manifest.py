"""Dataset manifests: one row per sample, split into fixed-size shards.

``results/cache/<dataset>/manifest.parquet`` lists every sample of a dataset
in shard order with the columns of ARCHITECTURE.md: ``sample_id``, ``source``,
``frame`` (-1 for still images), ``subject``, ``shard``, ``row``, then label
columns (``AU<k>`` intensities as int8 with -1 = not annotated; any other
label column a dataset brings). The parquet file's key-value metadata
``augane`` holds the dataset name, shard size, shard count and the problems
found while listing the data (e.g. a DISFA video shorter than its labels).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from augane.errors import ConfigError, DataError
from augane.io.atomic import atomic_path
from augane.io.disfa import disfa_subjects, load_disfa_subject
from augane.io.images import list_images
from augane.io.source_errors import SourceReadError
from augane.io.videos import VIDEO_EXTENSIONS, list_videos, probe_video

log = logging.getLogger(__name__)

BASE_COLUMNS: tuple[str, ...] = ("sample_id", "source", "frame", "subject", "shard", "row")
_METADATA_KEY = b"augane"
_AU_COLUMN = re.compile(r"^AU\d+$")


def shard_name(shard: int) -> str:
    """Shard number as used in paths: 4 digits, ``7 -> "0007"``."""
    return f"{int(shard):04d}"


def _dataset_path(name: str, dataset: Mapping[str, Any], kind: str) -> Path:
    path = dataset["path"]
    if not isinstance(path, str):
        raise ConfigError(f"datasets.{name}.path: a {kind} dataset takes one folder, got a list")
    folder = Path(path)
    if not folder.exists():
        raise ConfigError(f"datasets.{name}.path: {folder} does not exist (expected a {kind} folder)")
    if not folder.is_dir():
        raise ConfigError(f"datasets.{name}.path: {folder} is not a folder (expected a {kind} folder)")
    return folder


def _read_labels_csv(name: str, path: str, folder: Path, files: Sequence[Path]) -> pd.DataFrame:
    """Labels keyed by the image path relative to ``folder``; checks every row names an image found."""
    csv = Path(path)
    if not csv.is_file():
        raise ConfigError(f"datasets.{name}.labels: {csv} does not exist (expected a CSV with a 'path' column)")
    try:
        labels = pd.read_csv(csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"labels file {csv} is not a readable CSV: {err}") from err
    if "path" not in labels.columns:
        raise DataError(f"labels file {csv} has no 'path' column (has {list(labels.columns)})")
    clashes = [column for column in labels.columns if column in BASE_COLUMNS and column != "subject"]
    if clashes:
        raise DataError(f"labels file {csv}: columns {clashes} are reserved for the manifest itself")
    labels["path"] = [Path(str(value)).as_posix() for value in labels["path"]]
    duplicated = labels["path"][labels["path"].duplicated()]
    if len(duplicated):
        raise DataError(f"labels file {csv}: image {duplicated.iloc[0]!r} is labelled more than once")
    known = {file.relative_to(folder).as_posix() for file in files}
    unknown = [value for value in labels["path"] if value not in known]
    if unknown:
        raise DataError(
            f"labels file {csv}: {len(unknown)} rows name images not found under {folder} "
            f"(paths are relative to that folder), e.g. {unknown[0]!r}"
        )
    for column in labels.columns:
        if _AU_COLUMN.match(column):
            values = pd.to_numeric(labels[column], errors="coerce")
            bad = labels[column][values.isna() & labels[column].notna() | (values.notna() & (values % 1 != 0))]
            if len(bad):
                raise DataError(f"labels file {csv}, column {column}: expected integer intensities, got {bad.iloc[0]!r}")
    return labels.set_index("path")


def image_samples(name: str, dataset: Mapping[str, Any]) -> tuple[pd.DataFrame, list[str]]:
    """Samples of an ``images`` dataset: every image under the folder, sorted by relative path."""
    folder = _dataset_path(name, dataset, "images")
    files = list_images(folder)
    relative = [file.relative_to(folder).as_posix() for file in files]
    table = pd.DataFrame(
        {
            "sample_id": relative,
            "source": [str(file) for file in files],
            "frame": np.full(len(files), -1, dtype=np.int64),
            "subject": [""] * len(files),
        }
    )
    if dataset.get("labels"):
        labels = _read_labels_csv(name, dataset["labels"], folder, files)
        joined = labels.reindex(relative)
        if "subject" in joined.columns:
            table["subject"] = joined.pop("subject").fillna("").astype(str).to_numpy()
        table = pd.concat([table, joined.reset_index(drop=True)], axis=1)  # one join: label tables can be wide
    return table, []


def _video_files(name: str, dataset: Mapping[str, Any]) -> tuple[list[Path], Path]:
    """The dataset's video files and the folder their sample ids are relative to."""
    paths = dataset["path"]
    if isinstance(paths, str):
        path = Path(paths)
        if not path.exists():
            raise ConfigError(f"datasets.{name}.path: {path} does not exist (expected a folder of videos or a video file)")
        if path.is_dir():
            return list_videos(path), path
        return [path], path.parent
    files = [Path(item) for item in paths]
    missing = [str(file) for file in files if not file.is_file()]
    if missing:
        raise ConfigError(f"datasets.{name}.path: video files {missing} do not exist")
    unknown = [str(file) for file in files if file.suffix.lower() not in VIDEO_EXTENSIONS]
    if unknown:
        log.warning("datasets.%s.path: %s do not end like videos (%s); trying them anyway", name, unknown, sorted(VIDEO_EXTENSIONS))
    base = Path(os.path.commonpath([str(file.parent.absolute()) for file in files]))
    return files, base


def video_samples(name: str, dataset: Mapping[str, Any]) -> tuple[pd.DataFrame, list[str]]:
    """Samples of a ``videos`` dataset: every ``frame_stride``-th frame of each video.

    A video that cannot be opened or holds no frame keeps one sample (frame 0)
    so that its problem shows up as a status in the index; it is also listed
    in the returned problems.
    """
    files, base = _video_files(name, dataset)
    stride = int(dataset.get("frame_stride", 1))
    rows, problems = [], []
    for file in files:
        relative = file.absolute().relative_to(base.absolute()).as_posix()
        try:
            count = probe_video(file).frame_count
            if count == 0:
                problems.append(f"video {file} holds no decodable frame")
        except SourceReadError as err:
            problems.append(str(err))
            count = 0
        frames = range(0, count, stride) if count else [0]
        rows.extend((f"{relative}#{frame:06d}", str(file), frame, "") for frame in frames)
    table = pd.DataFrame(rows, columns=["sample_id", "source", "frame", "subject"])
    table["frame"] = table["frame"].astype(np.int64)
    return table, problems


def disfa_samples(name: str, dataset: Mapping[str, Any]) -> tuple[pd.DataFrame, list[str]]:
    """Samples of a ``disfa`` dataset: every ``frame_stride``-th labelled frame of each selected subject,
    with the 12 DISFA AU intensities as ``AU<k>`` columns."""
    root = _dataset_path(name, dataset, "DISFA")
    present = disfa_subjects(root)
    wanted = dataset.get("subjects")
    if wanted:
        absent = [subject for subject in wanted if subject not in present]
        if absent:
            raise ConfigError(f"datasets.{name}.subjects: {absent} not found under {root} (present: {present})")
        subjects = list(wanted)
    else:
        subjects = present
    if not subjects:
        raise DataError(f"datasets.{name}: no DISFA subject found under {root}")
    stride = int(dataset.get("frame_stride", 1))
    tables, problems = [], []
    for subject in subjects:
        record = load_disfa_subject(root, subject)
        problems.extend(record.problems)
        labels = record.labels[record.labels["frame"] % stride == 0].reset_index(drop=True)
        table = pd.DataFrame(
            {
                "sample_id": [f"{subject}#{frame:06d}" for frame in labels["frame"]],
                "source": str(record.video),
                "frame": labels["frame"].to_numpy(dtype=np.int64),
                "subject": subject,
            }
        )
        tables.append(pd.concat([table, labels.drop(columns="frame")], axis=1))
    return pd.concat(tables, ignore_index=True), problems


_BUILDERS = {"images": image_samples, "videos": video_samples, "disfa": disfa_samples}


def assign_shards(table: pd.DataFrame, shard_size: int) -> pd.DataFrame:
    """Insert ``shard`` and ``row`` after the base columns: sample ``i`` goes to shard ``i // shard_size``."""
    if shard_size < 1:
        raise ConfigError(f"preprocess.shard_size must be at least 1, got {shard_size}")
    index = np.arange(len(table), dtype=np.int64)
    table = table.copy()
    table.insert(4, "shard", (index // shard_size).astype(np.int32))
    table.insert(5, "row", (index % shard_size).astype(np.int32))
    return table


def build_manifest(name: str, dataset: Mapping[str, Any], shard_size: int) -> tuple[pd.DataFrame, list[str]]:
    """List a configured dataset's samples and assign them to shards.

    Args:
        name: the dataset's key under ``datasets:``.
        dataset: its config (``type``, ``path``, ``frame_stride``, ``subjects``, ``labels``).
        shard_size: samples per shard (``preprocess.shard_size``).
    Returns:
        ``(manifest, problems)``.
    Raises:
        ConfigError: a missing path or inconsistent setting, naming the key.
        DataError: no sample found, or malformed labels.
    """
    kind = dataset.get("type")
    if kind not in _BUILDERS:
        raise ConfigError(f"datasets.{name}.type: expected one of {sorted(_BUILDERS)}, got {kind!r}")
    if kind != "images" and dataset.get("labels"):
        raise ConfigError(f"datasets.{name}.labels: only images datasets take a labels CSV")
    table, problems = _BUILDERS[kind](name, dataset)
    if table.empty:
        raise DataError(f"datasets.{name}: no {kind} sample found under {dataset['path']}")
    duplicated = table["sample_id"][table["sample_id"].duplicated()]
    if len(duplicated):
        raise DataError(f"datasets.{name}: sample id {duplicated.iloc[0]!r} occurs more than once")
    for column in table.columns:
        if _AU_COLUMN.match(column):
            table[column] = pd.to_numeric(table[column]).fillna(-1).astype(np.int8)
    table["subject"] = table["subject"].astype(str)
    return assign_shards(table.reset_index(drop=True), shard_size), problems


def write_manifest(
    path: str | Path, manifest: pd.DataFrame, dataset: str, shard_size: int, problems: Sequence[str] = ()
) -> Path:
    """Write ``manifest`` as parquet atomically, with the shard count and problems in its metadata."""
    table = pa.Table.from_pandas(manifest, preserve_index=False)
    info = {
        "dataset": dataset,
        "shard_size": int(shard_size),
        "num_shards": int(manifest["shard"].max()) + 1 if len(manifest) else 0,
        "num_samples": len(manifest),
        "problems": list(problems),
    }
    metadata = dict(table.schema.metadata or {})
    metadata[_METADATA_KEY] = json.dumps(info).encode("utf-8")
    table = table.replace_schema_metadata(metadata)
    path = Path(path)
    with atomic_path(path) as temporary:
        pq.write_table(table, temporary)
    return path


def manifest_info(path: str | Path) -> dict[str, Any]:
    """The ``augane`` metadata of a manifest: dataset, shard_size, num_shards, num_samples, problems."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"manifest {path} does not exist; run `augane manifest` (or the `manifest` rule) first")
    metadata = pq.read_schema(path).metadata or {}
    if _METADATA_KEY not in metadata:
        raise DataError(f"{path} is not an AUGANE manifest (no 'augane' metadata)")
    return json.loads(metadata[_METADATA_KEY])


def manifest_shard_count(path: str | Path) -> int:
    """Number of shards of a manifest, read from its metadata (no rows are loaded)."""
    return int(manifest_info(path)["num_shards"])


def read_manifest(path: str | Path, shard: int | None = None) -> pd.DataFrame:
    """Read a manifest, or only the rows of one ``shard``, in row order."""
    path = Path(path)
    manifest_info(path)
    filters = [("shard", "=", int(shard))] if shard is not None else None
    table = pd.read_parquet(path, filters=filters)
    missing = [column for column in BASE_COLUMNS if column not in table.columns]
    if missing:
        raise DataError(f"manifest {path} lacks columns {missing}")
    return table.sort_values(["shard", "row"]).reset_index(drop=True)


def label_columns(manifest: pd.DataFrame) -> list[str]:
    """The label columns of a manifest (everything after the base columns)."""
    return [column for column in manifest.columns if column not in BASE_COLUMNS]
