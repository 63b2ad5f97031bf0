"""The Markdown report's sections and notes, and the Snakemake report captions (rendered as Snakemake does)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import docutils.core
import jinja2
import pytest
import yaml

from augane.config import load_config
from augane.evaluate.pipeline import evaluate
from augane.evaluate.predictions import validate_labels, validate_predictions
from augane.evaluate.report import SECTIONS, render_report
from augane.evaluate.settings import EvaluationSettings
from tests.evaluate.synthetic import random_world

ROOT = Path(__file__).resolve().parents[2]
CAPTIONS = ROOT / "workflow" / "report"


def _result(**changes):
    predictions, labels = random_world(subjects=5, frames=20)
    values = dict(aus=(1, 2, 4, 12, 26), methods=("augane", "deca", "emoca"), threshold=0.5, num_videos=3)
    values.update(changes)
    return evaluate(validate_predictions(predictions), EvaluationSettings(**values), labels=validate_labels(labels))


FILES = {
    "f1_per_subject": "f1_per_subject.csv",
    "f1_per_au": "f1_per_au.csv",
    "f1_cells": "f1_cells.csv",
    "qualitative_frames": "qualitative_frames.csv",
}


def test_report_has_every_section_in_order():
    report = render_report(_result(), FILES)
    headings = [line[3:] for line in report.splitlines() if line.startswith("## ")]
    assert headings == list(SECTIONS)
    assert report.startswith("# AU-consistency evaluation on DISFA\n")


def test_report_names_the_reference_and_the_definitions():
    report = render_report(_result(), FILES)
    assert "The reference is the AU detector's output on the input frames, not DISFA's labels" in report
    assert "mean over the evaluated AUs of the per-AU F1 on that subject's frames" in report
    assert "F1 on the frames of all evaluated subjects pooled" in report


def test_opengraphau_training_subjects_are_named_for_real_disfa():
    report = render_report(_result(detector_variant="opengraphau"), FILES)
    assert "OpenGraphAU was trained on 18 DISFA subjects" in report
    assert (
        "03, 11, 16, 18, 27 are in its training list, 06, 12 in its validation list and 23, 25 in its test list"
        in report
    )
    # The 5 subjects are SN001-SN005: SN002 and SN003 are in OpenGraphAU's training list.
    assert "| yes |" in report.split("## Selected videos")[1].split("##")[0]


def test_synthetic_world_is_said_to_be_synthetic():
    report = render_report(_result(synthetic=True), FILES)
    assert report.startswith("# AU-consistency evaluation on the synthetic demo world")
    assert "not comparable with the paper's Tables 2-3" in report
    assert "OpenGraphAU was trained" not in report
    assert "stand-in detector was trained by the demo stage" in report


def test_configured_training_subjects_win():
    report = render_report(_result(detector_variant="megraphau_disfa", training_subjects=("SN005",)), FILES)
    assert "resources.au_detector.training_subjects" in report
    assert "seen in training: 05; not seen: 03, 04" in report


def test_zero_support_convention_is_stated():
    result = _result(zero_division=float("nan"))
    report = render_report(result, FILES)
    assert f"{len(result.zero_support)} of {len(result.cells)} (method, subject, AU) cells" in report
    assert "left out of the means" in report


def _snakemake_context() -> dict:
    config = load_config(ROOT / "config" / "config.yaml")

    class Snakemake:
        pass

    snakemake = Snakemake()
    snakemake.config = config
    return {"snakemake": snakemake, "categories": {}, "files": []}


@pytest.mark.parametrize("caption", sorted(p.name for p in CAPTIONS.glob("*.rst")))
def test_captions_render_as_snakemake_renders_them(caption):
    text = (CAPTIONS / caption).read_text()
    rendered = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(text).render(**_snakemake_context())
    html = docutils.core.publish_parts(rendered, writer="html", settings_overrides={"halt_level": 2, "report_level": 2})
    assert len(html["body"]) > 100


def test_every_report_output_has_a_caption():
    from augane.evaluate.pipeline import OUTPUTS

    captions = {p.stem for p in CAPTIONS.glob("*.rst")}
    expected = {
        "selection": "selection",
        "f1_per_subject": "f1_per_subject",
        "f1_per_au": "f1_per_au",
        "f1_labels_per_au": "f1_labels",
        "bars_per_subject": "bars_per_subject",
        "bars_per_au": "bars_per_au",
        "bars_labels_per_au": "bars_labels",
        "qualitative": "qualitative",
        "geometry_errors": "geometry",
        "report": "report",
    }
    assert set(expected) <= set(OUTPUTS)
    assert set(expected.values()) <= captions
    assert "workflow" in captions


SNAKEFILE = """\
configfile: "config.yaml"
report: "{captions}/workflow.rst"

rule evaluate_report:
    input:
        predictions="preds.parquet",
        labels="index.parquet",
    output:
        table2=report("eval/f1_per_subject.csv", caption="{captions}/f1_per_subject.rst", category="Evaluation", subcategory="Tables"),
        table3=report("eval/f1_per_au.csv", caption="{captions}/f1_per_au.rst", category="Evaluation", subcategory="Tables"),
        labels=report("eval/f1_labels_per_au.csv", caption="{captions}/f1_labels.rst", category="Evaluation", subcategory="Tables"),
        selection=report("eval/selection.csv", caption="{captions}/selection.rst", category="Evaluation", subcategory="Tables"),
        bars_subject=report("eval/f1_per_subject.png", caption="{captions}/bars_per_subject.rst", category="Evaluation", subcategory="Figures"),
        bars_au=report("eval/f1_per_au.png", caption="{captions}/bars_per_au.rst", category="Evaluation", subcategory="Figures"),
        bars_labels=report("eval/f1_labels_per_au.png", caption="{captions}/bars_labels.rst", category="Evaluation", subcategory="Figures"),
        markdown=report("eval/report.md", caption="{captions}/report.rst", category="Evaluation"),
    log:
        "eval.log",
    shell:
        "{python} -m augane.cli.main evaluate-report --predictions {{input.predictions}} --labels {{input.labels}} "
        "--out-dir eval --config config.yaml > {{log}} 2>&1"
"""


@pytest.mark.slow
def test_snakemake_html_report_includes_the_outputs(tmp_path):
    predictions, labels = random_world(subjects=4, frames=12)
    predictions.to_parquet(tmp_path / "preds.parquet")
    labels.to_parquet(tmp_path / "index.parquet")
    config = load_config(ROOT / "config" / "config.yaml", overrides=["evaluate.disfa.num_videos=2"])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "Snakefile").write_text(SNAKEFILE.format(captions=CAPTIONS, python=sys.executable))
    snakemake = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "1",
        "--directory",
        str(tmp_path),
        "--snakefile",
        str(tmp_path / "Snakefile"),
    ]
    run = subprocess.run(snakemake, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, (
        run.stderr[-3000:] + (tmp_path / "eval.log").read_text()[-2000:]
        if (tmp_path / "eval.log").exists()
        else run.stderr[-3000:]
    )
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["subjects"]
    report = subprocess.run(
        [*snakemake, "--report", str(tmp_path / "report.zip")], capture_output=True, text=True, cwd=tmp_path
    )
    assert report.returncode == 0, report.stderr[-3000:]
    with zipfile.ZipFile(tmp_path / "report.zip") as archive:
        names = archive.namelist()
    assert any(name.endswith("f1_per_subject.png") for name in names)
    assert any(name.endswith("f1_per_au.csv") for name in names)
