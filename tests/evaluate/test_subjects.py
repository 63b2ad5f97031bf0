"""DISFA subject naming and what is known about the detectors' training subjects."""

from __future__ import annotations

import pytest

from augane.errors import DataError
from augane.evaluate.subjects import (
    OPENGRAPHAU_DISFA_TEST,
    OPENGRAPHAU_DISFA_TRAIN,
    OPENGRAPHAU_DISFA_VAL,
    MEGRAPHAU_DISFA_FOLDS,
    detector_training,
    match_subjects,
    sorted_subjects,
    subject_label,
    subject_number,
)


def test_subject_names():
    assert subject_number("SN003") == 3 and subject_number("sn27") == 27 and subject_number("03") == 3
    assert subject_number("alice") is None
    assert subject_label("SN003") == "03" and subject_label("alice") == "alice"
    assert sorted_subjects(["SN010", "bob", "SN002"]) == ["SN002", "SN010", "bob"]


def test_match_subjects():
    assert match_subjects(["03", "SN006"], ["SN006", "SN003"], "key") == ("SN003", "SN006")
    with pytest.raises(DataError, match="key: subject '05' is not in the data"):
        match_subjects(["05"], ["SN003"], "key")
    with pytest.raises(DataError, match="more than once"):
        match_subjects(["03", "SN003"], ["SN003"], "key")


def test_released_splits_cover_disfa_once():
    opengraphau = OPENGRAPHAU_DISFA_TRAIN + OPENGRAPHAU_DISFA_VAL + OPENGRAPHAU_DISFA_TEST
    megraphau = sum(MEGRAPHAU_DISFA_FOLDS, ())
    for split in (opengraphau, megraphau):
        assert len(split) == 27 == len(set(split))
    assert set(opengraphau) == set(megraphau)


def test_detector_training_knowledge():
    opengraphau = detector_training("opengraphau", [], synthetic=False)
    assert len(opengraphau.subjects) == 18
    assert opengraphau.seen("SN003") is True and opengraphau.seen("SN023") is False
    assert detector_training("megraphau_bp4d", [], synthetic=False).seen("SN003") is False
    assert detector_training("megraphau_disfa", [], synthetic=False).seen("SN003") is None
    configured = detector_training("megraphau_disfa", ["SN001", "02"], synthetic=False)
    assert configured.seen("SN002") is True and configured.seen("SN003") is False
    assert detector_training("opengraphau", [], synthetic=True).subjects is None
    with pytest.raises(DataError, match="training_subjects"):
        detector_training("opengraphau", ["alice"], synthetic=False)
