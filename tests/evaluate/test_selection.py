"""Video selection: activation counts, top-K with deterministic ties, frame stride, named subjects, errors."""

from __future__ import annotations

import pandas as pd
import pytest

from augane.errors import DataError
from augane.evaluate.predictions import validate_predictions
from augane.evaluate.selection import count_activations, select_videos, stride_frames
from tests.evaluate.synthetic import prediction_rows


@pytest.fixture
def four_subjects() -> pd.DataFrame:
    """Input rows, AUs 1 and 4, 4 frames each. Activations: SN001 3, SN002 5, SN003 5, SN004 1.

    On frames 0 and 2 only (stride 2): SN001 2, SN002 2, SN003 4, SN004 0.
    """
    rows = [
        *prediction_rows("SN001", "input", {1: [1, 1, 1, 0], 4: [0, 0, 0, 0]}),
        *prediction_rows("SN002", "input", {1: [1, 1, 1, 1], 4: [0, 1, 0, 0]}),
        *prediction_rows("SN003", "input", {1: [1, 0, 1, 0], 4: [1, 1, 1, 0]}),
        *prediction_rows("SN004", "input", {1: [0, 0, 0, 0], 4: [0, 0, 0, 1]}),
        *prediction_rows("SN001", "augane", {1: [1, 1, 1, 1], 4: [1, 1, 1, 1]}),
    ]
    return validate_predictions(pd.DataFrame(rows))


def test_activations_are_counted_per_subject(four_subjects):
    inputs = four_subjects[four_subjects["method"] == "input"]
    activity = count_activations(inputs, (1, 4), 0.5)
    assert activity.set_index("subject")["activations"].to_dict() == {"SN001": 3, "SN002": 5, "SN003": 5, "SN004": 1}
    assert activity["frames"].tolist() == [4, 4, 4, 4]


def test_top_k_selection_ignores_method_rows(four_subjects):
    selection = select_videos(four_subjects, (1, 4), 0.5, num_videos=2)
    assert selection.subjects == ("SN002", "SN003")
    assert not selection.tie_at_cutoff
    assert len(selection.frames) == 8
    ranks = selection.activity.set_index("subject")["rank"].to_dict()
    assert ranks == {"SN002": 1, "SN003": 2, "SN001": 3, "SN004": 4}


def test_ties_are_broken_by_subject_number_and_flagged(four_subjects):
    selection = select_videos(four_subjects, (1, 4), 0.5, num_videos=1)
    assert selection.subjects == ("SN002",)
    assert selection.tie_at_cutoff


def test_selection_counts_only_the_strided_frames(four_subjects):
    selection = select_videos(four_subjects, (1, 4), 0.5, num_videos=2, frame_stride=2)
    assert selection.activity.set_index("subject")["activations"].to_dict() == {
        "SN001": 2,
        "SN002": 2,
        "SN003": 4,
        "SN004": 0,
    }
    assert selection.subjects == ("SN001", "SN003")  # SN001 and SN002 tie at 2; the lower number wins
    assert selection.tie_at_cutoff
    assert selection.frames.to_dict("list") == {"subject": ["SN001", "SN001", "SN003", "SN003"], "frame": [0, 2, 0, 2]}


def test_selection_counts_only_the_given_aus(four_subjects):
    selection = select_videos(four_subjects, (4, 12), 0.5, num_videos=1)
    assert selection.aus == (4,)
    assert selection.subjects == ("SN003",)


def test_stride_counts_from_each_subjects_first_frame():
    keys = pd.DataFrame({"subject": ["SN001"] * 5 + ["SN002"] * 3, "frame": [10, 11, 12, 13, 14, 3, 5, 7]})
    strided = stride_frames(keys, 2)
    assert strided.to_dict("list") == {
        "subject": ["SN001", "SN001", "SN001", "SN002", "SN002"],
        "frame": [10, 12, 14, 3, 7],
    }
    with pytest.raises(DataError, match="frame_stride"):
        stride_frames(keys, 0)


def test_named_subjects_replace_the_ranking(four_subjects):
    selection = select_videos(four_subjects, (1, 4), 0.5, num_videos=1, subjects=["04", "SN001"])
    assert selection.subjects == ("SN001", "SN004")
    assert selection.explicit
    with pytest.raises(DataError, match="subject 'SN027' is not in the data"):
        select_videos(four_subjects, (1, 4), 0.5, subjects=["SN027"])


def test_fewer_subjects_than_requested_selects_all(four_subjects):
    selection = select_videos(four_subjects, (1, 4), 0.5, num_videos=9)
    assert selection.subjects == ("SN001", "SN002", "SN003", "SN004")


def test_no_input_rows_is_an_error(four_subjects):
    with pytest.raises(DataError, match="no 'input' rows"):
        select_videos(four_subjects[four_subjects["method"] != "input"], (1, 4), 0.5)


def test_no_predicted_au_is_an_error(four_subjects):
    with pytest.raises(DataError, match="cover none of the evaluated AUs"):
        select_videos(four_subjects, (12, 26), 0.5)
