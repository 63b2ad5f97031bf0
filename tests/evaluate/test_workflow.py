"""The evaluate stage's rules: dry runs of `evaluate_disfa` and `reconstruct` through the real Snakefile."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def dry_run(workdir: Path, config: dict, *targets: str) -> subprocess.CompletedProcess:
    (workdir / "config").mkdir(exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "-n", "--cores", "2", *targets]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=workdir)


def planned(result: subprocess.CompletedProcess) -> Counter:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return Counter(re.findall(r"^rule (\w+):", result.stdout + result.stderr, flags=re.MULTILINE))


def default_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_evaluate_disfa_plans_every_step_on_the_embedded_default(tmp_path):
    jobs = planned(dry_run(tmp_path, default_config(), "evaluate_disfa"))
    assert jobs["evaluate_inputs"] == jobs["evaluate_select"] == jobs["evaluate_combine"] == 1
    assert jobs["evaluate_images"] == jobs["evaluate_report"] == jobs["evaluate_disfa"] == 1
    # EMOCA is not configured by default: AUGANE (trained by the workflow) and DECA
    assert jobs["evaluate_reconstruct"] == 2 and jobs["train"] == 1
    assert jobs["demo_world_disfa"] == 1


def test_emoca_and_a_given_checkpoint(tmp_path):
    config = default_config()
    config["resources"]["emoca"] = {"checkpoint": "results/dev_weights/untrained_emoca.ckpt", "backbone": "resnet18"}
    (tmp_path / "gane.pt").write_bytes(b"")
    config["evaluate"]["disfa"]["checkpoint"] = str(tmp_path / "gane.pt")
    result = dry_run(tmp_path, config, "evaluate_disfa")
    jobs = planned(result)
    assert jobs["evaluate_reconstruct"] == 3 and jobs["train"] == 0
    assert "results/eval/disfa/intermediate/emoca/predictions.parquet" in result.stdout
    assert "results/eval/disfa/intermediate/augane/errors.parquet" in result.stdout  # the synthetic world's ground truth


def test_real_disfa_has_no_ground_truth_step(tmp_path):
    config = default_config()
    (tmp_path / "DISFA").mkdir()
    config["datasets"]["demo_disfa"]["path"] = str(tmp_path / "DISFA")
    config["evaluate"]["disfa"]["methods"] = ["deca"]
    result = dry_run(tmp_path, config, "evaluate_disfa")
    jobs = planned(result)
    assert jobs["evaluate_reconstruct"] == 1 and jobs["train"] == 0
    assert "errors.parquet" not in result.stdout and "geometry_errors" not in result.stdout


def test_evaluation_without_a_dataset_or_with_a_misconfigured_one_is_named(tmp_path):
    config = default_config()
    config["evaluate"]["disfa"]["dataset"] = None
    result = dry_run(tmp_path, config, "all")
    assert result.returncode == 0 and "evaluate_reconstruct" not in result.stdout  # `all` leaves it out
    result = dry_run(tmp_path, config, "evaluate_disfa")
    assert result.returncode != 0 and "evaluate.disfa.dataset is not set" in result.stdout + result.stderr
    config["evaluate"]["disfa"]["dataset"] = "demo_train"
    result = dry_run(tmp_path, config, "evaluate_disfa")
    assert result.returncode != 0 and "'demo_train' has type images, expected disfa" in result.stdout + result.stderr


@pytest.mark.parametrize("configured", [False, True])
def test_reconstruct_target(tmp_path, configured):
    config = default_config()
    if configured:
        (tmp_path / "clips").mkdir()
        config["reconstruct"] = {"input": str(tmp_path / "clips"), "method": "deca"}
    result = dry_run(tmp_path, config, "reconstruct")
    jobs = planned(result)
    if configured:
        assert jobs["reconstruct_media"] == 1 and "results/reconstruct/clips" in result.stdout
        assert jobs["train"] == 0  # DECA needs no GANE
    else:
        assert jobs["reconstruct_media"] == 0
        assert "reconstruct.input is not set" in result.stdout + result.stderr
