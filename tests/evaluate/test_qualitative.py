"""Frame choice for the qualitative grid (disagreement, even spacing) and the grid image itself."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from augane.errors import DataError
from augane.evaluate.metrics import align_detections
from augane.evaluate.predictions import validate_predictions
from augane.evaluate.qualitative import (
    choose_frames,
    column_titles,
    disagreement_scores,
    image_path,
    load_grid_images,
    qualitative_grid,
)
from tests.evaluate.synthetic import prediction_rows


def _aligned(rows):
    table = validate_predictions(pd.DataFrame(rows))
    return align_detections(table, table[table["method"] == "input"], (1, 4), 0.5, ("augane", "deca"))


@pytest.fixture
def aligned():
    """SN001 frames 0-59 where only frames 10 (2 AUs) and 12 (1 AU) and 40 (1 AU) disagree; SN002 frame 5 (1 AU)."""
    n = 60
    agree = {1: [0] * n, 4: [0] * n}
    deca = {1: [0] * n, 4: [0] * n}
    deca[1][10] = deca[4][10] = 1
    deca[1][12] = 1
    deca[4][40] = 1
    sn2 = {1: [0] * 8, 4: [0] * 8}
    sn2_deca = {1: [0] * 8, 4: [0, 0, 0, 0, 0, 1, 0, 0]}
    return _aligned(
        prediction_rows("SN001", "input", agree)
        + prediction_rows("SN001", "augane", agree)
        + prediction_rows("SN001", "deca", deca)
        + prediction_rows("SN002", "input", sn2)
        + prediction_rows("SN002", "augane", sn2)
        + prediction_rows("SN002", "deca", sn2_deca)
    )


def test_disagreement_scores_count_aus_without_consensus(aligned):
    scores = dict(zip(zip(aligned.subjects, aligned.frames), disagreement_scores(aligned)))
    assert scores[("SN001", 10)] == 2 and scores[("SN001", 12)] == 1 and scores[("SN001", 0)] == 0


def test_disagreement_choice_spreads_over_subjects_and_keeps_frames_apart(aligned):
    chosen = choose_frames(aligned, count=3, strategy="disagreement", min_separation=20)
    # SN001 first (best frame 10), then SN002 (frame 5), then SN001 again: frame 12 is too close to 10, so 40.
    assert list(zip(chosen["subject"], chosen["frame"])) == [("SN001", 10), ("SN001", 40), ("SN002", 5)]
    assert chosen["score"].tolist() == [2, 1, 1]
    close = choose_frames(aligned, count=3, strategy="disagreement", min_separation=1)
    assert ("SN001", 12) in set(zip(close["subject"], close["frame"]))


def test_even_choice_spaces_frames_within_subjects(aligned):
    chosen = choose_frames(aligned, count=3, strategy="even")
    assert list(zip(chosen["subject"], chosen["frame"])) == [("SN001", 15), ("SN001", 45), ("SN002", 4)]


def test_zero_frames_and_bad_settings(aligned):
    assert choose_frames(aligned, count=0).empty
    with pytest.raises(DataError, match="qualitative_strategy"):
        choose_frames(aligned, count=2, strategy="random")


def test_grid_png_with_a_missing_cell(tmp_path):
    rng = np.random.default_rng(0)
    images = {
        "augane": [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), rng.random((40, 30, 3))],
        "input": [rng.integers(0, 255, (32, 32), dtype=np.uint8), rng.integers(0, 255, (32, 32, 4), dtype=np.uint8)],
        "deca": [None, rng.random((32, 32, 3))],
    }
    path = qualitative_grid(images, ["03 · 10", "03 · 40"], tmp_path / "grid.png")
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    with pytest.raises(DataError, match="has 1 images for 2 columns"):
        qualitative_grid({"input": [None]}, ["a", "b"], tmp_path / "bad.png")
    with pytest.raises(DataError, match=r"expected an image of shape"):
        qualitative_grid({"input": [np.zeros((4, 4, 2))]}, ["a"], tmp_path / "bad.png")


def test_grid_images_are_read_from_the_documented_layout(tmp_path):
    chosen = pd.DataFrame({"subject": ["SN001"], "frame": [7], "score": [1]})
    for method in ("input", "augane"):
        path = image_path(tmp_path, method, "SN001", 7)
        path.parent.mkdir(parents=True)
        matplotlib.image.imsave(path, np.full((8, 8, 3), 0.5))
    assert image_path(tmp_path, "input", "SN001", 7).name == "000007.png"
    images, missing = load_grid_images(tmp_path, chosen, ("augane", "deca"))
    assert images["input"][0].shape[:2] == (8, 8)
    assert images["deca"] == [None]
    assert missing == [image_path(tmp_path, "deca", "SN001", 7)]
    assert column_titles(chosen) == ["01 · 7"]
