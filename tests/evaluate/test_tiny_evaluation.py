"""`snakemake evaluate_disfa` end to end on config/tiny.yaml (demo world, stand-ins, features, a few training
steps, every evaluation step) in a temporary working directory, and its Snakemake HTML report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from augane.evaluate.predictions import read_predictions

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "config" / "tiny.yaml"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not TINY.is_file(), reason="config/tiny.yaml is absent")]


def snakemake(workdir: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(TINY), *arguments]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "68719476736",
           "MALLOC_TOP_PAD_": "1073741824"}
    return subprocess.run(command, capture_output=True, text=True, timeout=1500, cwd=workdir, env=env)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("tiny_evaluation")
    result = snakemake(workdir, "--cores", "2", "evaluate_disfa")
    logs = sorted((workdir / "results" / "logs" / "evaluate").glob("*.log"))
    tail = "".join(log.read_text()[-1500:] for log in logs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + tail
    return workdir


def test_every_output_of_the_evaluation(evaluated):
    out = evaluated / "results" / "eval" / "disfa"
    for name in ("f1_per_subject.csv", "f1_per_subject.md", "f1_per_au.csv", "f1_per_au.md", "f1_labels_per_au.csv",
                 "f1_per_subject.png", "f1_per_au.png", "f1_labels_per_au.png", "qualitative.png",
                 "geometry_errors.csv", "selection.csv", "summary.json", "report.md"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["methods"] == ["augane", "deca"] and len(summary["subjects"]) == 2
    predictions = read_predictions(out / "intermediate" / "predictions.parquet")
    assert sorted(set(predictions["method"])) == ["augane", "deca", "input"]
    assert predictions.loc[predictions["method"] == "deca", "prob_AU12"].notna().all()
    geometry = pd.read_csv(out / "geometry_errors.csv", index_col=0)
    assert set(geometry.index) == {"augane", "deca"} and (geometry["frames"] > 0).all()
    images = out / "intermediate" / "images"
    assert len(list((images / "input").rglob("*.png"))) == len(list((images / "augane").rglob("*.png"))) == 2
    for method in ("augane", "deca"):
        assert (evaluated / "results" / "benchmarks" / "evaluate" / f"reconstruct_{method}.tsv").is_file()


def test_snakemake_html_report(evaluated):
    html = evaluated / "results" / "eval" / "disfa" / "report.html"
    result = snakemake(evaluated, "--report", str(html), "evaluate_disfa")
    assert result.returncode == 0, result.stderr[-3000:]
    text = html.read_text(errors="replace")
    for name in ("f1_per_subject.csv", "f1_per_au.png", "qualitative.png", "report.md", "geometry_errors.csv"):
        assert name in text, name
