"""``augane evaluate-select`` and ``augane evaluate-report`` from files, and their errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from augane.cli.main import main
from tests.evaluate.synthetic import random_world

CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"


def _features(tmp_path: Path) -> Path:
    predictions, labels = random_world(subjects=4, frames=10)
    inputs = predictions[predictions["method"] == "input"].drop(columns="method")
    features = labels.merge(inputs, on=["subject", "frame"])
    features.insert(0, "sample_id", [f"{s}#{f:06d}" for s, f in zip(features["subject"], features["frame"])])
    features["valid"] = True
    path = tmp_path / "features.parquet"
    features.to_parquet(path)
    return path


def test_evaluate_select_writes_selection_and_frames(tmp_path):
    features = _features(tmp_path)
    status = main(
        [
            "evaluate-select",
            "--features",
            str(features),
            "--out",
            str(tmp_path / "selection.csv"),
            "--frames-out",
            str(tmp_path / "frames.csv"),
            "--config",
            str(CONFIG),
            "--set",
            "evaluate.disfa.num_videos=2",
            "--set",
            "evaluate.disfa.frame_stride=3",
        ]
    )
    assert status == 0
    selection = pd.read_csv(tmp_path / "selection.csv")
    assert selection["selected"].sum() == 2
    frames = pd.read_csv(tmp_path / "frames.csv")
    assert set(frames["subject"]) == set(selection.loc[selection["selected"], "subject"])
    assert sorted(frames["frame"].unique()) == [0, 3, 6, 9]
    assert frames["sample_id"].str.contains("#").all()


def test_evaluate_report_end_to_end(tmp_path):
    predictions, labels = random_world(subjects=3, frames=10)
    predictions.to_parquet(tmp_path / "preds.parquet")
    labels.to_parquet(tmp_path / "index.parquet")
    out = tmp_path / "eval"
    status = main(
        [
            "evaluate-report",
            "--predictions",
            str(tmp_path / "preds.parquet"),
            "--labels",
            str(tmp_path / "index.parquet"),
            "--out-dir",
            str(out),
            "--config",
            str(CONFIG),
        ]
    )
    assert status == 0
    for name in ("report.md", "f1_per_subject.md", "f1_per_au.csv", "f1_per_au.png", "summary.json"):
        assert (out / name).is_file(), name
    assert "synthetic demo world" in (out / "report.md").read_text()


def test_evaluate_report_bad_input_is_a_clear_error(tmp_path, caplog):
    predictions, labels = random_world(subjects=2, frames=4)
    predictions.drop(columns="method").to_parquet(tmp_path / "preds.parquet")
    labels.to_parquet(tmp_path / "index.parquet")
    with caplog.at_level(logging.ERROR):
        status = main(
            [
                "evaluate-report",
                "--predictions",
                str(tmp_path / "preds.parquet"),
                "--labels",
                str(tmp_path / "index.parquet"),
                "--out-dir",
                str(tmp_path / "eval"),
                "--config",
                str(CONFIG),
            ]
        )
    assert status == 1
    assert "preds.parquet: the predictions table lacks column(s) ['method']" in caplog.text
    assert not (tmp_path / "eval" / "report.md").exists()


def test_evaluate_report_unknown_au_in_config(tmp_path, caplog):
    predictions, labels = random_world(subjects=2, frames=4)
    predictions.to_parquet(tmp_path / "preds.parquet")
    labels.to_parquet(tmp_path / "index.parquet")
    with caplog.at_level(logging.ERROR):
        status = main(
            [
                "evaluate-report",
                "--predictions",
                str(tmp_path / "preds.parquet"),
                "--labels",
                str(tmp_path / "index.parquet"),
                "--out-dir",
                str(tmp_path / "eval"),
                "--config",
                str(CONFIG),
                "--set",
                "evaluate.disfa.aus=[1, 3]",
            ]
        )
    assert status == 1
    assert "AU3 is not a FACS action unit" in caplog.text


def test_evaluate_report_takes_input_rows_from_the_features_index(tmp_path):
    features = _features(tmp_path)
    predictions, _ = random_world(subjects=4, frames=10)
    methods_only = predictions[predictions["method"] != "input"]
    methods_only.to_parquet(tmp_path / "renders.parquet")
    argv = [
        "evaluate-report",
        "--predictions",
        str(tmp_path / "renders.parquet"),
        "--labels",
        str(features),
        "--out-dir",
        str(tmp_path / "eval"),
        "--config",
        str(CONFIG),
    ]
    assert main([*argv, "--features", str(features)]) == 0
    assert (tmp_path / "eval" / "report.md").is_file()
    # Without the features index there is no reference.
    assert main(argv) == 1


def test_input_rows_given_twice_are_refused(tmp_path, caplog):
    features = _features(tmp_path)
    predictions, _ = random_world(subjects=4, frames=10)
    predictions.to_parquet(tmp_path / "preds.parquet")
    with caplog.at_level(logging.ERROR):
        status = main(
            [
                "evaluate-report",
                "--predictions",
                str(tmp_path / "preds.parquet"),
                "--labels",
                str(features),
                "--features",
                str(features),
                "--out-dir",
                str(tmp_path / "eval"),
                "--config",
                str(CONFIG),
            ]
        )
    assert status == 1
    assert "method 'input' has rows in both" in caplog.text
