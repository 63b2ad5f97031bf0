"""The AU detector's output on the input frames, with each frame's place in the cache.

``features.parquet`` (the feature stage) lists ``sample_id``, ``shard``,
``row``, ``valid`` and ``prob_<AU>`` per sample; ``index.parquet`` (the
preprocess stage) lists ``subject``, ``frame``, the labels and the
preprocess status. Their join on ``sample_id`` is what the evaluation's
selection (``augane evaluate-select --features``) and report
(``augane evaluate-report --features``) read as the ``input`` rows, and what
the reconstruction step locates frames with (``shard``, ``row``).
"""

from __future__ import annotations

import pandas as pd

from augane.errors import DataError

_INDEX_COLUMNS = ("sample_id", "subject", "frame", "shard", "row")
_STATUS_COLUMNS = ("status", "status_name")


def input_table(index: pd.DataFrame, features: pd.DataFrame, source: str = "index + features") -> pd.DataFrame:
    """``subject, frame, sample_id, shard, row, [status, status_name,] valid, prob_<AU>...`` per video frame.

    Still images (``frame`` -1) are left out: the evaluation scores video frames.

    Raises:
        DataError: a column is missing, ``sample_id`` repeats, or the two tables list different samples.
    """
    missing = [c for c in _INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise DataError(f"{source}: the dataset index lacks {missing} (is it the preprocess stage's index.parquet?)")
    probabilities = [c for c in features.columns if str(c).startswith("prob_")]
    missing = [c for c in ("sample_id", "valid") if c not in features.columns]
    if missing or not probabilities:
        raise DataError(
            f"{source}: the features table lacks {missing or ['prob_<AU> columns']} "
            "(is it the feature stage's features.parquet?)"
        )
    for name, table in (("index", index), ("features", features)):
        repeated = table["sample_id"].duplicated()
        if repeated.any():
            raise DataError(f"{source}: sample_id {table.loc[repeated, 'sample_id'].iloc[0]!r} repeats in the {name}")
    unknown = sorted(set(features["sample_id"]) - set(index["sample_id"]))
    if unknown:
        raise DataError(
            f"{source}: {len(unknown)} samples of the features table are not in the index (e.g. {unknown[0]!r}); "
            "the two come from different runs: rerun the preprocess and features stages"
        )
    keep = [*_INDEX_COLUMNS, *(c for c in _STATUS_COLUMNS if c in index.columns)]
    table = index[keep].merge(
        features[["sample_id", "valid", *probabilities]], on="sample_id", how="left", validate="one_to_one"
    )
    table["valid"] = table["valid"].eq(True)
    table = table[table["frame"] >= 0]
    if table.empty:
        raise DataError(f"{source}: no video frame (frame >= 0) in the index; is this a DISFA-type dataset?")
    return table.sort_values(["subject", "frame"], kind="stable").reset_index(drop=True)
