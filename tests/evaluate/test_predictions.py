"""The predictions and labels tables: validation with clear errors, decisions, and the features index as input rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from augane.errors import ConfigError, DataError
from augane.evaluate.predictions import (
    decisions,
    input_predictions_from_features,
    predicted_aus,
    read_labels,
    read_predictions,
    validate_aus,
    validate_labels,
    validate_methods,
    validate_predictions,
)


def _table(**columns) -> pd.DataFrame:
    base = {"subject": ["SN001", "SN001"], "frame": [0, 1], "method": ["input", "input"], "prob_AU1": [0.2, 0.7]}
    base.update(columns)
    return pd.DataFrame(base)


def test_valid_table_is_normalised():
    table = validate_predictions(_table(frame=[0.0, 1.0], subject=["SN001", None]))
    assert table["frame"].dtype == np.int64
    assert table["subject"].tolist() == ["SN001", ""]


@pytest.mark.parametrize("missing", ["subject", "frame", "method"])
def test_missing_key_column_is_named(missing):
    with pytest.raises(DataError, match=f"lacks column.*'{missing}'"):
        validate_predictions(_table().drop(columns=missing), source="preds.parquet")


def test_unknown_method_is_named():
    with pytest.raises(DataError, match=r"unknown method\(s\) \['decca'\]"):
        validate_predictions(_table(method=["input", "decca"]))


def test_repeated_rows_are_rejected():
    with pytest.raises(DataError, match="repeat a"):
        validate_predictions(_table(frame=[3, 3]))


def test_probabilities_outside_unit_interval_are_rejected():
    with pytest.raises(DataError, match=r"prob_AU1 must hold probabilities in \[0, 1\]"):
        validate_predictions(_table(prob_AU1=[0.2, 1.5]))
    with pytest.raises(DataError, match="prob_AU1"):
        validate_predictions(_table(prob_AU1=["high", 0.2]))


def test_non_integer_frames_are_rejected():
    with pytest.raises(DataError, match="integer frame numbers"):
        validate_predictions(_table(frame=[0.5, 1]))


def test_label_columns_are_not_read_as_predictions():
    table = _table().drop(columns="prob_AU1").assign(AU1=[0, 3])
    with pytest.raises(DataError, match="read as DISFA intensity labels"):
        validate_predictions(table)


def test_empty_table_is_rejected():
    with pytest.raises(DataError, match="no rows"):
        validate_predictions(_table().iloc[:0])


def test_decisions_threshold_is_inclusive_and_nan_stays_missing():
    table = validate_predictions(_table(prob_AU1=[0.5, np.nan]))
    detected = decisions(table, (1,), threshold=0.5)
    assert detected["AU1"].iloc[0] == 1.0
    assert np.isnan(detected["AU1"].iloc[1])


def test_binary_decisions_are_used_only_without_probabilities():
    table = validate_predictions(_table(pred_AU4=[1, 0], pred_AU1=[0, 0]))
    assert predicted_aus(table) == (1, 4)
    detected = decisions(table, (1, 4), threshold=0.5)
    assert detected["AU1"].tolist() == [0.0, 1.0]  # from prob_AU1, not pred_AU1
    assert detected["AU4"].tolist() == [1.0, 0.0]
    with pytest.raises(DataError, match="pred_AU4 must hold 0/1"):
        validate_predictions(_table(pred_AU4=[2, 0]))


def test_decisions_for_an_au_without_column_fail_clearly():
    with pytest.raises(DataError, match="no prob_AU12 or pred_AU12"):
        decisions(validate_predictions(_table()), (12,), 0.5)


def test_features_index_becomes_input_rows_with_invalid_frames_missing():
    features = pd.DataFrame(
        {
            "sample_id": ["SN001#000000", "SN001#000001"],
            "subject": ["SN001", "SN001"],
            "frame": [0, 1],
            "valid": [True, False],
            "AU1": [3, 0],
            "prob_AU1": [0.8, 0.9],
        }
    )
    rows = input_predictions_from_features(features)
    assert rows["method"].tolist() == ["input", "input"]
    assert rows["prob_AU1"].iloc[0] == 0.8 and np.isnan(rows["prob_AU1"].iloc[1])
    assert "AU1" not in rows.columns
    with pytest.raises(DataError, match="no prob_AU<k> column"):
        input_predictions_from_features(features.drop(columns="prob_AU1"))


def test_validate_aus():
    assert validate_aus([1, 2, 4]) == (1, 2, 4)
    with pytest.raises(ConfigError, match="AU3 is not a FACS action unit"):
        validate_aus([1, 3])
    with pytest.raises(ConfigError, match="more than once"):
        validate_aus([1, 1])
    with pytest.raises(ConfigError, match="is empty"):
        validate_aus([])
    with pytest.raises(ConfigError, match="not an AU number"):
        validate_aus(["AU1"])


def test_validate_methods():
    assert validate_methods(["deca", "augane"]) == ("deca", "augane")
    with pytest.raises(ConfigError, match="unknown method 'input'"):
        validate_methods(["input"])


def test_labels_validation():
    labels = validate_labels(pd.DataFrame({"subject": ["SN001"] * 2, "frame": [0, 1], "AU1": [5, np.nan]}))
    assert labels["AU1"].tolist() == [5, -1]
    with pytest.raises(DataError, match="AU1 must hold DISFA intensities"):
        validate_labels(pd.DataFrame({"subject": ["SN001"], "frame": [0], "AU1": [7]}))
    with pytest.raises(DataError, match="repeat a"):
        validate_labels(pd.DataFrame({"subject": ["SN001"] * 2, "frame": [0, 0]}))


def test_read_tables_from_files(tmp_path):
    path = tmp_path / "preds.parquet"
    _table().to_parquet(path)
    assert len(read_predictions(path)) == 2
    csv = tmp_path / "labels.csv"
    pd.DataFrame({"subject": ["SN001"], "frame": [0], "AU1": [2]}).to_csv(csv, index=False)
    assert read_labels(csv)["AU1"].item() == 2
    with pytest.raises(DataError, match="does not exist"):
        read_predictions(tmp_path / "absent.parquet")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot be read as a parquet table"):
        read_predictions(broken)
