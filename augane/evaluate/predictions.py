"""The per-frame AU prediction table every evaluation step reads, and its DISFA label counterpart.

A *predictions table* is a tidy pandas table, one row per (subject, frame, method):

=================  ======================================================================
column             meaning
=================  ======================================================================
``subject``        str, the DISFA subject (``SN003``) or "" when unknown
``frame``          int, frame number as in the dataset manifest
``method``         ``input`` (AU detector on the input frames, the reference) or a
                   reconstruction method whose renders the detector saw:
                   ``augane``, ``deca``, ``emoca``
``prob_AU<k>``     float in [0, 1], detector probability of AU k; NaN = no output
                   (no face, failed reconstruction)
``pred_AU<k>``     optional 0/1 decision, for detectors that emit decisions only; used
                   for an AU only when its ``prob_AU<k>`` column is absent
``sample_id``      optional, carried along
=================  ======================================================================

``AU<k>`` columns are *labels* everywhere in AUGANE (DISFA intensity 0-5, -1 = not
annotated; see the manifest in ARCHITECTURE.md). A predictions table may carry
them (e.g. when joined with the index) but they are never read as predictions.

A *labels table* is the dataset index (``index.parquet``): ``subject``, ``frame``
and ``AU<k>`` intensities.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from augane.aus import FACS_NAMES, au_label
from augane.errors import ConfigError, DataError

#: The detector on the input frames: the reference every method is scored against.
REFERENCE_METHOD = "input"
#: Reconstruction methods, in the column order of the paper's Tables 2-3.
RENDER_METHODS: tuple[str, ...] = ("augane", "deca", "emoca")
#: Every method name a predictions table may hold.
KNOWN_METHODS: tuple[str, ...] = (REFERENCE_METHOD, *RENDER_METHODS)
#: How tables, plots and the report name each method.
DISPLAY_NAMES: dict[str, str] = {"input": "Input", "augane": "AUGANE", "deca": "DECA", "emoca": "EMOCA"}

KEY_COLUMNS: tuple[str, ...] = ("subject", "frame")
_PROB_PATTERN = re.compile(r"^prob_AU(\d+)$")
_PRED_PATTERN = re.compile(r"^pred_AU(\d+)$")
_LABEL_PATTERN = re.compile(r"^AU(\d+)$")


def prob_column(au: int) -> str:
    """Column of the detector probability of ``au``: ``prob_AU4``."""
    return f"prob_{au_label(au)}"


def pred_column(au: int) -> str:
    """Column of a binary detector decision for ``au``: ``pred_AU4``."""
    return f"pred_{au_label(au)}"


def label_column(au: int) -> str:
    """Column of the dataset's intensity label for ``au``: ``AU4``."""
    return au_label(au)


def display_name(method: str) -> str:
    """Name of a method in tables and figures (``augane`` -> ``AUGANE``)."""
    return DISPLAY_NAMES.get(method, method)


def validate_aus(aus: Iterable[int], key: str = "evaluate.disfa.aus") -> tuple[int, ...]:
    """Check a configured AU list: non-empty, FACS AUs known to AUGANE, no repeats.

    Raises:
        ConfigError: naming ``key`` and the offending AU.
    """
    aus = tuple(aus)
    if not aus:
        raise ConfigError(f"{key} is empty; list the AUs to evaluate, e.g. [1, 2, 4]")
    for au in aus:
        if isinstance(au, bool) or not isinstance(au, (int, np.integer)):
            raise ConfigError(f"{key}: {au!r} is not an AU number (expected integers such as 1, 2, 4)")
        if int(au) not in FACS_NAMES:
            raise ConfigError(f"{key}: AU{au} is not a FACS action unit known to AUGANE (known: {sorted(FACS_NAMES)})")
    repeated = sorted({au for au in aus if aus.count(au) > 1})
    if repeated:
        raise ConfigError(f"{key} lists AU(s) {repeated} more than once")
    return tuple(int(au) for au in aus)


def validate_methods(methods: Iterable[str], key: str = "evaluate.disfa.methods") -> tuple[str, ...]:
    """Check a list of reconstruction methods (no ``input``, no repeats, known names)."""
    methods = tuple(methods)
    if not methods:
        raise ConfigError(f"{key} is empty; name at least one of {list(RENDER_METHODS)}")
    for method in methods:
        if method not in RENDER_METHODS:
            raise ConfigError(f"{key}: unknown method {method!r}; expected some of {list(RENDER_METHODS)}")
    if len(set(methods)) != len(methods):
        raise ConfigError(f"{key} names a method more than once: {list(methods)}")
    return methods


def _aus_in_columns(columns: Iterable[str], pattern: re.Pattern[str]) -> tuple[int, ...]:
    return tuple(sorted(int(m.group(1)) for c in columns if (m := pattern.match(str(c)))))


def predicted_aus(predictions: pd.DataFrame) -> tuple[int, ...]:
    """AUs the table holds a prediction for (``prob_AU<k>`` or ``pred_AU<k>``), ascending."""
    return tuple(
        sorted(
            set(_aus_in_columns(predictions.columns, _PROB_PATTERN))
            | set(_aus_in_columns(predictions.columns, _PRED_PATTERN))
        )
    )


def labelled_aus(labels: pd.DataFrame) -> tuple[int, ...]:
    """AUs the labels table has an ``AU<k>`` column for, ascending."""
    return _aus_in_columns(labels.columns, _LABEL_PATTERN)


def _require_columns(table: pd.DataFrame, columns: Sequence[str], source: str, what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"{source}: {what} lacks column(s) {missing}; it has {list(table.columns)[:20]}")


def _normalise_keys(table: pd.DataFrame, source: str) -> pd.DataFrame:
    table = table.copy()
    table["subject"] = table["subject"].fillna("").astype(str)
    frames = pd.to_numeric(table["frame"], errors="coerce")
    if frames.isna().any() or not np.all(np.mod(frames, 1) == 0):
        bad = table.loc[frames.isna() | (np.mod(frames.fillna(0), 1) != 0), "frame"].head(3).tolist()
        raise DataError(f"{source}: column 'frame' must hold integer frame numbers, found e.g. {bad}")
    table["frame"] = frames.astype(np.int64)
    return table


def validate_predictions(predictions: pd.DataFrame, source: str = "predictions") -> pd.DataFrame:
    """Check a predictions table and return it with normalised key dtypes.

    Checks: the key columns exist; every ``method`` is known; (subject, frame,
    method) is unique; at least one AU is predicted; probabilities lie in
    [0, 1] (NaN allowed); decisions are 0/1 (NaN allowed).

    Raises:
        DataError: naming ``source`` and what was expected.
    """
    _require_columns(predictions, ("subject", "frame", "method"), source, "the predictions table")
    if predictions.empty:
        raise DataError(f"{source}: the predictions table has no rows")
    table = _normalise_keys(predictions, source)
    table["method"] = table["method"].astype(str)
    unknown = sorted(set(table["method"]) - set(KNOWN_METHODS))
    if unknown:
        raise DataError(
            f"{source}: unknown method(s) {unknown} in column 'method'; expected some of {list(KNOWN_METHODS)}"
        )
    duplicated = table.duplicated(["subject", "frame", "method"], keep=False)
    if duplicated.any():
        example = table.loc[duplicated, ["subject", "frame", "method"]].iloc[0].tolist()
        raise DataError(f"{source}: {int(duplicated.sum())} rows repeat a (subject, frame, method), e.g. {example}")
    if not predicted_aus(table):
        labels_only = _aus_in_columns(table.columns, _LABEL_PATTERN)
        hint = (
            f" Its AU<k> columns ({[au_label(a) for a in labels_only]}) are read as DISFA intensity labels, "
            "not predictions."
            if labels_only
            else ""
        )
        raise DataError(f"{source}: no prob_AU<k> or pred_AU<k> column; the table holds no AU prediction.{hint}")
    for au in _aus_in_columns(table.columns, _PROB_PATTERN):
        values = pd.to_numeric(table[prob_column(au)], errors="coerce")
        outside = values.notna() & ((values < 0) | (values > 1))
        if table[prob_column(au)].notna().sum() != values.notna().sum() or outside.any():
            raise DataError(f"{source}: column {prob_column(au)} must hold probabilities in [0, 1] or NaN")
        table[prob_column(au)] = values.astype(np.float64)
    for au in _aus_in_columns(table.columns, _PRED_PATTERN):
        values = pd.to_numeric(table[pred_column(au)], errors="coerce")
        if table[pred_column(au)].notna().sum() != values.notna().sum() or not values.dropna().isin([0, 1]).all():
            raise DataError(f"{source}: column {pred_column(au)} must hold 0/1 decisions or NaN")
        table[pred_column(au)] = values.astype(np.float64)
    return table


def validate_labels(labels: pd.DataFrame, source: str = "labels") -> pd.DataFrame:
    """Check a labels table (the dataset index) and return it with normalised dtypes.

    ``AU<k>`` must hold integer intensities 0-5 or -1 (not annotated); NaN is
    read as -1. (subject, frame) must be unique.

    Raises:
        DataError: naming ``source`` and what was expected.
    """
    _require_columns(labels, KEY_COLUMNS, source, "the labels table")
    table = _normalise_keys(labels, source)
    duplicated = table.duplicated(list(KEY_COLUMNS), keep=False)
    if duplicated.any():
        example = table.loc[duplicated, list(KEY_COLUMNS)].iloc[0].tolist()
        raise DataError(f"{source}: {int(duplicated.sum())} rows repeat a (subject, frame), e.g. {example}")
    for au in labelled_aus(table):
        column = label_column(au)
        values = pd.to_numeric(table[column], errors="coerce").fillna(-1)
        if not values.isin([-1, 0, 1, 2, 3, 4, 5]).all():
            raise DataError(f"{source}: column {column} must hold DISFA intensities 0-5 or -1 (not annotated)")
        table[column] = values.astype(np.int64)
    return table


def read_table(path: str | Path, what: str) -> pd.DataFrame:
    """Read a parquet (or CSV) table, with a clear error when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file {path} does not exist")
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow and pandas raise many types for a malformed file
        raise DataError(
            f"{what} file {path} cannot be read as a {'CSV' if path.suffix.lower() == '.csv' else 'parquet'} table: {err}"
        ) from err


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read and validate a predictions table (parquet or CSV)."""
    return validate_predictions(read_table(path, "predictions"), source=str(path))


def read_labels(path: str | Path) -> pd.DataFrame:
    """Read and validate a labels table (the dataset's ``index.parquet``)."""
    return validate_labels(read_table(path, "labels"), source=str(path))


def input_predictions_from_features(features: pd.DataFrame, source: str = "features") -> pd.DataFrame:
    """Turn the features index (``features.parquet``) into ``input`` rows of a predictions table.

    Rows whose ``valid`` is false (preprocessing found no face) keep NaN
    probabilities, so they count as "no output". The ``AU<k>`` labels of the
    index are left out.

    Args:
        features: table with ``subject``, ``frame``, ``prob_AU<k>`` and optionally ``valid``.
    """
    _require_columns(features, KEY_COLUMNS, source, "the features table")
    probabilities = [c for c in features.columns if _PROB_PATTERN.match(str(c))]
    if not probabilities:
        raise DataError(f"{source}: no prob_AU<k> column; is this the features index (features.parquet)?")
    keep = [*KEY_COLUMNS, *(["sample_id"] if "sample_id" in features.columns else []), *probabilities]
    table = features[keep].copy()
    if "valid" in features.columns:
        invalid = ~features["valid"].fillna(False).astype(bool).to_numpy()
        table.loc[invalid, probabilities] = np.nan
    table.insert(2, "method", REFERENCE_METHOD)
    return validate_predictions(table, source=source)


def combine_predictions(tables: Sequence[pd.DataFrame], sources: Sequence[str]) -> pd.DataFrame:
    """Stack predictions tables from several files (e.g. method rows + ``input`` rows from the features index).

    Raises:
        DataError: when a method appears in more than one table.
    """
    owner: dict[str, str] = {}
    for table, source in zip(tables, sources):
        for method in sorted(set(table["method"])):
            if method in owner:
                raise DataError(f"method {method!r} has rows in both {owner[method]} and {source}; give each method once")
            owner[method] = source
    return validate_predictions(pd.concat(list(tables), ignore_index=True), source=" + ".join(sources))


def decisions(predictions: pd.DataFrame, aus: Sequence[int], threshold: float) -> pd.DataFrame:
    """Binary detections: ``subject``, ``frame``, ``method`` and one float column per AU.

    An AU is detected when its probability is >= ``threshold`` (or, without a
    probability column, when its ``pred_AU<k>`` decision is 1). Values are 1.0,
    0.0, or NaN where the detector gave no output.

    Returns:
        DataFrame with columns ``subject, frame, method, AU<k>...`` (k in ``aus`` order).

    Raises:
        DataError: when an AU of ``aus`` has neither column.
    """
    result = predictions[["subject", "frame", "method"]].copy()
    for au in aus:
        if prob_column(au) in predictions.columns:
            probabilities = predictions[prob_column(au)].to_numpy(dtype=np.float64)
            result[label_column(au)] = np.where(np.isnan(probabilities), np.nan, probabilities >= threshold)
        elif pred_column(au) in predictions.columns:
            result[label_column(au)] = predictions[pred_column(au)].to_numpy(dtype=np.float64)
        else:
            raise DataError(
                f"predictions hold no {prob_column(au)} or {pred_column(au)} column; "
                f"AUs predicted: {list(predicted_aus(predictions))}"
            )
    return result.reset_index(drop=True)
