"""The evaluation's reconstruction commands chained as the workflow chains them, on the tiny DISFA-type cache."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import yaml

from augane.cli.main import main
from augane.evaluate.predictions import read_predictions
from tests.evaluate.tiny_disfa import DATASET, NO_FACE
from tests.evaluate.worlds import tiny_disfa  # noqa: F401 - fixture


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_inputs_select_reconstruct_combine_images_report(tiny_disfa, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny_disfa.fresh_config()))
    work, out = tmp_path / "work", tmp_path / "eval"
    common = ["--config", str(config)]
    runtime = ["--dataset", DATASET, "--cache-root", str(tiny_disfa.cache_root), "--checkpoint",
               str(tiny_disfa.checkpoint), "--threads", "1"]
    assert main(["evaluate-inputs", "--index", str(tiny_disfa.cache_dir / "index.parquet"), "--features",
                 str(tiny_disfa.cache_dir / "features.parquet"), "--out", str(work / "inputs.parquet")]) == 0
    assert main(["evaluate-select", "--features", str(work / "inputs.parquet"), "--out", str(work / "selection.csv"),
                 "--frames-out", str(work / "frames.csv"), *common]) == 0
    frames = pd.read_csv(work / "frames.csv")
    assert {"sample_id", "shard", "row"} <= set(frames.columns)
    for method in ("augane", "deca", "emoca"):
        status = main(["evaluate-reconstruct", "--frames", str(work / "frames.csv"), "--method", method,
                       "--out", str(work / method / "predictions.parquet"),
                       "--errors-out", str(work / method / "errors.parquet"), *runtime, *common])
        assert status == 0, method
    assert main(["evaluate-combine", "--inputs", str(work / "inputs.parquet"), "--predictions",
                 *[str(work / m / "predictions.parquet") for m in ("augane", "deca", "emoca")],
                 "--out", str(work / "predictions.parquet"),
                 "--errors", *[str(work / m / "errors.parquet") for m in ("augane", "deca", "emoca")],
                 "--errors-out", str(work / "errors.parquet")]) == 0
    predictions = read_predictions(work / "predictions.parquet")
    assert sorted(predictions["method"].unique()) == ["augane", "deca", "emoca", "input"]
    assert main(["evaluate-images", "--predictions", str(work / "predictions.parquet"), "--frames",
                 str(work / "frames.csv"), "--out-dir", str(work / "images"), *runtime, *common]) == 0
    chosen_inputs = sorted((work / "images" / "input").rglob("*.png"))
    assert len(chosen_inputs) == 2
    for method in ("augane", "deca", "emoca"):
        assert [p.relative_to(work / "images" / method) for p in sorted((work / "images" / method).rglob("*.png"))] \
            == [p.relative_to(work / "images" / "input") for p in chosen_inputs]
    assert main(["evaluate-report", "--predictions", str(work / "predictions.parquet"), "--labels",
                 str(tiny_disfa.cache_dir / "index.parquet"), "--out-dir", str(out), "--images", str(work / "images"),
                 "--geometry", str(work / "errors.parquet"), *common]) == 0
    for name in ("report.md", "f1_per_subject.md", "f1_per_au.csv", "qualitative.png", "geometry_errors.csv",
                 "f1_labels_per_au.csv"):
        assert (out / name).is_file(), name
    geometry = pd.read_csv(out / "geometry_errors.csv", index_col=0)
    assert geometry.loc["emoca", "vertex_error_mm mean"] < 1e-3 < geometry.loc["deca", "vertex_error_mm mean"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["methods"] == ["augane", "deca", "emoca"]
    report = (out / "report.md").read_text()
    assert "qualitative.png" in report and "missing" not in (out / "qualitative_frames.csv").read_text()
    no_face = predictions[(predictions["subject"] == NO_FACE[0]) & (predictions["frame"] == NO_FACE[1])]
    assert no_face.filter(like="prob_").isna().all().all()


def test_reconstruct_without_ground_truth_is_refused_when_errors_are_asked(tiny_disfa, tmp_path, caplog):
    config = tiny_disfa.fresh_config()
    config["datasets"][DATASET]["path"] = str(tmp_path / "real_disfa")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    status = main(["evaluate-reconstruct", "--frames", str(tmp_path / "frames.csv"), "--method", "deca",
                   "--out", str(tmp_path / "p.parquet"), "--errors-out", str(tmp_path / "e.parquet"),
                   "--dataset", DATASET, "--config", str(tmp_path / "config.yaml")])
    assert status == 1
    assert "has no GroundTruth/ folder" in caplog.text


def test_missing_frames_table_is_a_clear_error(tiny_disfa, tmp_path, caplog):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_disfa.fresh_config()))
    status = main(["evaluate-reconstruct", "--frames", str(tmp_path / "frames.csv"), "--method", "deca",
                   "--out", str(tmp_path / "p.parquet"), "--dataset", DATASET, "--cache-root",
                   str(tiny_disfa.cache_root), "--config", str(tmp_path / "config.yaml")])
    assert status == 1
    assert "frames file" in caplog.text and "does not exist" in caplog.text
