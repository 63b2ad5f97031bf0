"""Fixtures with hand-computable answers, shared by the evaluation tests."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.evaluate.synthetic import prediction_rows


@pytest.fixture
def known_predictions() -> pd.DataFrame:
    """Two subjects x 4 frames, AUs 1 and 4; F1 values worked out by hand in test_metrics.py.

    ============  ==========  ==========  ==========  ==========
    subject/AU    input       augane      deca        (frames 0-3)
    ============  ==========  ==========  ==========  ==========
    SN001 AU1     1 1 0 0     1 0 0 0     0 0 1 1
    SN001 AU4     0 0 0 0     0 0 0 0     1 0 0 0
    SN002 AU1     1 0 0 0     1 0 0 0     1 1 0 0
    SN002 AU4     1 1 1 0     1 1 0 0     0 0 0 0
    ============  ==========  ==========  ==========  ==========
    """
    rows = [
        *prediction_rows("SN001", "input", {1: [1, 1, 0, 0], 4: [0, 0, 0, 0]}),
        *prediction_rows("SN001", "augane", {1: [1, 0, 0, 0], 4: [0, 0, 0, 0]}),
        *prediction_rows("SN001", "deca", {1: [0, 0, 1, 1], 4: [1, 0, 0, 0]}),
        *prediction_rows("SN002", "input", {1: [1, 0, 0, 0], 4: [1, 1, 1, 0]}),
        *prediction_rows("SN002", "augane", {1: [1, 0, 0, 0], 4: [1, 1, 0, 0]}),
        *prediction_rows("SN002", "deca", {1: [1, 1, 0, 0], 4: [0, 0, 0, 0]}),
    ]
    return pd.DataFrame(rows)


@pytest.fixture
def known_labels() -> pd.DataFrame:
    """DISFA-style labels for the frames of ``known_predictions`` (AU1, AU4; -1 = not annotated)."""
    return pd.DataFrame(
        {
            "subject": ["SN001"] * 4 + ["SN002"] * 4,
            "frame": [0, 1, 2, 3] * 2,
            "AU1": [3, 2, 1, 0, 5, 0, 0, -1],
            "AU4": [0, 0, 0, 0, 2, 4, 1, 0],
        }
    )
