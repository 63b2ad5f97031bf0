"""F1 per subject / per AU against hand-computed values, zero-support conventions, label F1 with unannotated frames."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from augane.errors import ConfigError, DataError
from augane.evaluate.metrics import (
    AVERAGE_ROW,
    align_detections,
    binary_f1,
    evaluable_aus,
    f1_cells,
    f1_per_au,
    f1_per_subject,
    label_f1,
    support_per_au,
    with_average,
    zero_division_value,
    zero_support_cells,
)
from augane.evaluate.predictions import validate_labels, validate_predictions
from tests.evaluate.synthetic import prediction_rows


def _aligned(predictions: pd.DataFrame, methods=("augane", "deca")):
    table = validate_predictions(predictions)
    frames = table.loc[table["method"] == "input", ["subject", "frame"]]
    return align_detections(table, frames, (1, 4), 0.5, methods)


def test_per_subject_f1_matches_hand_computation(known_predictions):
    table = f1_per_subject(_aligned(known_predictions), zero_division=0.0)
    # SN001: AUGANE AU1 = 2/3 (TP 1, FN 1), AU4 zero support -> 0; DECA AU1 = 0, AU4 = 0 (one FP).
    # SN002: AUGANE AU1 = 1, AU4 = 4/5 (TP 2, FN 1); DECA AU1 = 2/3 (TP 1, FP 1), AU4 = 0 (FN 3).
    assert list(table.index) == ["SN001", "SN002"]
    assert table.loc["SN001", "augane"] == pytest.approx((2 / 3 + 0) / 2)
    assert table.loc["SN002", "augane"] == pytest.approx((1 + 0.8) / 2)
    assert table.loc["SN001", "deca"] == pytest.approx(0.0)
    assert table.loc["SN002", "deca"] == pytest.approx((2 / 3 + 0) / 2)
    averaged = with_average(table)
    assert averaged.loc[AVERAGE_ROW, "augane"] == pytest.approx((1 / 3 + 0.9) / 2)
    assert averaged.loc[AVERAGE_ROW, "deca"] == pytest.approx(1 / 6)


def test_per_au_f1_pools_frames_of_all_subjects(known_predictions):
    table = f1_per_au(_aligned(known_predictions), zero_division=0.0)
    # AU1 pooled: input 1100 1000, AUGANE 1000 1000 -> TP 2, FN 1 -> 0.8;
    # DECA 0011 1100 -> TP 1, FP 3, FN 2 -> 2/7. AU4: AUGANE TP 2, FN 1 -> 0.8; DECA TP 0 -> 0.
    assert list(table.index) == [1, 4]
    assert table.loc[1, "augane"] == pytest.approx(0.8)
    assert table.loc[4, "augane"] == pytest.approx(0.8)
    assert table.loc[1, "deca"] == pytest.approx(2 / 7)
    assert table.loc[4, "deca"] == pytest.approx(0.0)


def test_per_subject_f1_equals_sklearn_macro_average_within_each_subject(known_predictions):
    aligned = _aligned(known_predictions)
    table = f1_per_subject(aligned, zero_division=0.0)
    for subject in ("SN001", "SN002"):
        rows = aligned.subjects == subject
        expected = f1_score(aligned.reference[rows], aligned.methods["deca"][rows], average="macro", zero_division=0)
        assert table.loc[subject, "deca"] == pytest.approx(expected)


@pytest.mark.parametrize(("setting", "expected"), [(0, (2 / 3 + 0) / 2), (1, (2 / 3 + 1) / 2), ("nan", 2 / 3)])
def test_zero_support_cells_follow_the_zero_division_setting(known_predictions, setting, expected):
    # SN001 / AU4: neither the input nor AUGANE ever detects it.
    table = f1_per_subject(_aligned(known_predictions), zero_division=zero_division_value(setting))
    assert table.loc["SN001", "augane"] == pytest.approx(expected)


def test_zero_support_cells_are_listed(known_predictions):
    cells = zero_support_cells(_aligned(known_predictions))
    assert cells.to_dict("records") == [{"method": "augane", "subject": "SN001", "au": 4}]


def test_an_au_never_detected_on_renders_scores_zero_whatever_zero_division(known_predictions):
    # As in the paper's AU1/AU2 rows: the input shows the AU, the renders never do -> F1 = 0 (not undefined).
    predictions = known_predictions.copy()
    predictions.loc[predictions["method"] == "augane", "prob_AU1"] = 0.0
    for setting in (0, 1, "nan"):
        table = f1_per_au(_aligned(predictions), zero_division=zero_division_value(setting))
        assert table.loc[1, "augane"] == 0.0


def test_binary_f1_of_no_frames_is_nan():
    assert math.isnan(binary_f1(np.zeros(0), np.zeros(0), 0.0))


def test_zero_division_rejects_other_values():
    with pytest.raises(ConfigError, match="zero_division"):
        zero_division_value(0.5)
    with pytest.raises(ConfigError, match="zero_division"):
        zero_division_value("warn")


def test_support_counts_detections_per_au(known_predictions):
    support = support_per_au(_aligned(known_predictions))
    assert support.loc[1].to_dict() == {"input": 3, "augane": 2, "deca": 4, "frames": 8}
    assert support.loc[4].to_dict() == {"input": 3, "augane": 2, "deca": 1, "frames": 8}


def test_cells_hold_every_subject_au_method_score(known_predictions):
    cells = f1_cells(_aligned(known_predictions))
    assert len(cells) == 2 * 2 * 2
    value = cells.query("method == 'augane' and subject == 'SN002' and au == 4")["f1"].item()
    assert value == pytest.approx(0.8)


def test_frames_without_output_are_dropped_and_counted(known_predictions):
    predictions = known_predictions.copy()
    missing = (predictions["method"] == "deca") & (predictions["subject"] == "SN002") & (predictions["frame"] == 3)
    predictions.loc[missing, "prob_AU4"] = np.nan
    aligned = _aligned(predictions)
    assert len(aligned.frames) == 7
    assert aligned.dropped == {"input": 0, "augane": 0, "deca": 1}
    assert ("SN002", 3) not in set(zip(aligned.subjects, aligned.frames))


def test_a_method_missing_a_selected_subject_is_an_error(known_predictions):
    predictions = known_predictions[
        ~((known_predictions["method"] == "deca") & (known_predictions["subject"] == "SN002"))
    ]
    with pytest.raises(DataError, match="no 'deca' rows for selected subject SN002"):
        _aligned(predictions)


def test_empty_selection_is_an_error(known_predictions):
    table = validate_predictions(known_predictions)
    with pytest.raises(DataError, match="empty selection"):
        align_detections(table, pd.DataFrame({"subject": [], "frame": []}), (1, 4), 0.5, ("augane",))


def test_evaluable_aus_leave_out_aus_a_method_lacks(known_predictions):
    predictions = known_predictions.copy()
    predictions["prob_AU12"] = np.where(predictions["method"] == "deca", np.nan, 0.7)
    table = validate_predictions(predictions)
    assert evaluable_aus(table, (1, 4, 12, 26), ("augane", "deca")) == ((1, 4), (12, 26))
    assert evaluable_aus(table, (1, 4, 12), ("augane",)) == ((1, 4, 12), ())


def test_label_f1_scores_inputs_and_renders_and_skips_unannotated_frames(known_predictions, known_labels):
    aligned = _aligned(known_predictions)
    scores = label_f1(aligned, validate_labels(known_labels), label_threshold=2)
    # Labels >= 2: AU1 = 1100 10(-1 skipped: SN002 frame 3 has label -1) -> truth 1100 100; AU4 = 0000 1100.
    # Input AU1 on the 7 labelled frames 1100 100 -> F1 1. Input AU4 0000 1110 vs truth 0000 1100 -> 4/5.
    assert scores.per_au.loc[1, "input"] == pytest.approx(1.0)
    assert scores.per_au.loc[4, "input"] == pytest.approx(0.8)
    # DECA AU1 on labelled frames: 0011 110 vs 1100 100 -> TP 1, FP 3, FN 2 -> 2/7.
    assert scores.per_au.loc[1, "deca"] == pytest.approx(2 / 7)
    assert scores.positives.loc[1].to_dict() == {"labelled": 7, "positive": 3}
    assert list(scores.per_au.columns) == ["input", "augane", "deca"]
    assert list(scores.per_subject.index) == ["SN001", "SN002"]


def test_label_f1_with_a_higher_threshold_counts_fewer_positives(known_predictions, known_labels):
    scores = label_f1(_aligned(known_predictions), validate_labels(known_labels), label_threshold=4)
    assert scores.positives.loc[1, "positive"] == 1
    assert scores.positives.loc[4, "positive"] == 1


def test_label_f1_for_an_unlabelled_au_is_nan():
    predictions = pd.DataFrame(
        prediction_rows("SN001", "input", {1: [1, 0], 6: [1, 1]})
        + prediction_rows("SN001", "augane", {1: [1, 0], 6: [0, 1]})
    )
    table = validate_predictions(predictions)
    aligned = align_detections(table, table[table["method"] == "input"], (1, 6), 0.5, ("augane",))
    labels = validate_labels(pd.DataFrame({"subject": ["SN001", "SN001"], "frame": [0, 1], "AU1": [3, 0]}))
    scores = label_f1(aligned, labels, label_threshold=2)
    assert scores.per_au.loc[1, "augane"] == pytest.approx(1.0)
    assert math.isnan(scores.per_au.loc[6, "augane"])
    assert scores.positives.loc[6, "labelled"] == 0
