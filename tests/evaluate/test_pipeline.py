"""The whole evaluation from a predictions table: every output written, consistent with the metric functions."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from augane.errors import DataError
from augane.evaluate.pipeline import OUTPUTS, evaluate, read_geometry_errors, write_evaluation
from augane.evaluate.predictions import validate_labels, validate_predictions
from augane.evaluate.qualitative import image_path
from augane.evaluate.settings import EvaluationSettings
from tests.evaluate.synthetic import random_world


@pytest.fixture
def world():
    predictions, labels = random_world(subjects=4, frames=30)
    return validate_predictions(predictions), validate_labels(labels)


def _settings(**changes) -> EvaluationSettings:
    values = dict(
        aus=(1, 2, 4, 5, 7, 9, 10, 12, 15, 20, 23, 26),
        methods=("augane", "deca", "emoca"),
        threshold=0.5,
        num_videos=3,
        frame_stride=2,
        qualitative_frames=4,
    )
    values.update(changes)
    return EvaluationSettings(**values)


def test_every_output_is_written_and_consistent(world, tmp_path):
    predictions, labels = world
    result = evaluate(predictions, _settings(), labels=labels)
    written = write_evaluation(result, tmp_path)
    expected = set(OUTPUTS) - {"geometry_errors", "qualitative"}
    assert set(written) == expected
    for path in written.values():
        assert path.is_file() and path.stat().st_size > 0
    assert (tmp_path / "f1_per_subject.md").is_file() and (tmp_path / "f1_labels_per_au.md").is_file()
    per_subject = pd.read_csv(tmp_path / "f1_per_subject.csv", dtype={"Subject": str}).set_index("Subject")
    assert list(per_subject.index) == [*[s[-2:] for s in result.selection.subjects], "Avg."]
    assert np.allclose(per_subject.to_numpy(), result.per_subject.to_numpy(), atol=0.005)
    assert len(result.selection.subjects) == 3 and len(result.aligned.frames) == 3 * 15
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["subjects"] == list(result.selection.subjects)
    assert summary["f1_per_au_avg"]["AUGANE"] == pytest.approx(result.per_au.loc["Avg.", "AUGANE"])
    for name in ("bars_per_subject", "bars_per_au", "bars_labels_per_au"):
        assert matplotlib.image.imread(written[name]).ndim == 3
    selection = pd.read_csv(written["selection"])
    assert selection["selected"].sum() == 3


def test_the_reconstruction_that_reproduces_inputs_scores_one(world):
    predictions, labels = world
    perfect = predictions[predictions["method"] == "input"].assign(method="augane")
    table = pd.concat([predictions[predictions["method"] != "augane"], perfect], ignore_index=True)
    result = evaluate(table, _settings(zero_division=1.0), labels=labels)
    assert result.per_subject["AUGANE"].tolist() == pytest.approx([1.0] * 4)
    assert result.per_au["AUGANE"].tolist() == pytest.approx([1.0] * 13)
    assert (result.labels.per_au["augane"] == result.labels.per_au["input"]).all()


def test_missing_aus_and_methods_are_reported_not_fatal(world, tmp_path):
    predictions, labels = world
    predictions = predictions[predictions["method"] != "emoca"].drop(columns=["prob_AU23", "prob_AU10"])
    result = evaluate(predictions, _settings(), labels=labels)
    assert result.aus_missing == (10, 23) and result.methods_absent == ("emoca",)
    assert list(result.per_au.columns) == ["AUGANE", "DECA"]
    assert np.isnan(result.per_au.loc["10", "AUGANE"])
    write_evaluation(result, tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "AU10 (Upper Lip Raiser), AU23 (Lip Tightener)" in report
    assert "Configured but absent from the predictions: EMOCA" in report
    assert "| 10 | n/a | n/a |" in (tmp_path / "f1_per_au.md").read_text()


def test_selection_does_not_depend_on_the_aus_methods_cover(world):
    predictions, labels = world
    full = evaluate(predictions, _settings(), labels=labels)
    partial = predictions.copy()
    partial.loc[partial["method"] == "deca", "prob_AU26"] = np.nan
    result = evaluate(partial, _settings(), labels=labels)
    assert 26 in result.selection.aus and 26 in result.aus_missing
    assert result.selection.subjects == full.selection.subjects


def test_qualitative_grid_from_an_image_folder(world, tmp_path):
    predictions, labels = world
    result = evaluate(predictions, _settings(), labels=labels)
    images = tmp_path / "images"
    for subject, frame in zip(result.chosen["subject"], result.chosen["frame"]):
        for method in ("input", "augane", "deca"):
            path = image_path(images, method, subject, frame)
            path.parent.mkdir(parents=True, exist_ok=True)
            matplotlib.image.imsave(path, np.random.default_rng(int(frame)).random((24, 24, 3)))
    written = write_evaluation(result, tmp_path / "out", images_dir=images)
    assert matplotlib.image.imread(written["qualitative"]).ndim == 3
    report = written["report"].read_text()
    assert "![Input and renders of the chosen frames](qualitative.png)" in report
    assert f"{len(result.chosen)} image(s) were missing" in report  # every EMOCA render is missing


def test_geometry_errors_are_summarised(world, tmp_path):
    predictions, labels = world
    errors = pd.DataFrame({"method": ["augane", "deca"], "frame": [0, 0], "vertex_error_mm": [1.5, 2.5]})
    path = tmp_path / "errors.csv"
    errors.to_csv(path, index=False)
    result = evaluate(predictions, _settings(synthetic=True), labels=labels, geometry_errors=read_geometry_errors(path))
    write_evaluation(result, tmp_path / "out")
    assert "| AUGANE | 1.5000 | 1.5000 | 1 |" in (tmp_path / "out" / "report.md").read_text()
    assert (tmp_path / "out" / "geometry_errors.csv").is_file()


def test_no_labels_leaves_the_label_section_explained(world, tmp_path):
    predictions, labels = world
    result = evaluate(predictions, _settings(), labels=labels[["subject", "frame"]])
    assert result.labels is None
    write_evaluation(result, tmp_path)
    assert "Not computed: the labels table has no AU<k> column" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "f1_labels_per_au.csv").exists()


def test_no_configured_method_in_the_predictions_is_an_error(world):
    predictions, labels = world
    with pytest.raises(DataError, match="no rows for any configured method"):
        evaluate(predictions[predictions["method"] == "input"], _settings(), labels=labels)


def test_no_evaluable_au_is_an_error(world):
    predictions, labels = world
    with pytest.raises(DataError, match="no output for any evaluated AU"):
        evaluate(predictions, _settings(aus=(11, 13)), labels=labels)
