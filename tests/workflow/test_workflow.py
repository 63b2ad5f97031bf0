"""The workflow as a whole: lint, dry runs of every target rule, and a tiny end-to-end preprocessing run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"

TINY_CONFIG = {
    "datasets": {
        "samples_images": {"type": "images", "path": "results/samples/images"},
        "samples_video": {"type": "videos", "path": "results/samples/videos", "frame_stride": 6},
    },
    "preprocess": {"shard_size": 4, "crop": {"size": 64}},
    # the stand-in detectors the default resources name learn from configured datasets
    "demo": {"detectors": {"train_dataset": "samples_images", "heldout_dataset": "samples_images"}},
}
# ... and with the demo world's DISFA-layout videos to evaluate on (planning it builds the demo world).
EVALUATED_CONFIG = {
    **TINY_CONFIG,
    "datasets": {**TINY_CONFIG["datasets"], "demo_disfa": {"type": "disfa", "path": "results/demo/world/disfa"}},
    "evaluate": {"disfa": {"dataset": "demo_disfa"}},
}


def snakemake(workdir: Path, *arguments: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile with ``workdir`` as working directory."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir), *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=workdir)


@pytest.fixture
def workdir(tmp_path):
    """A working directory holding the tiny config where the Snakefile looks for it."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    return tmp_path


def test_lint_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _target_rules(workdir: Path) -> list[str]:
    result = snakemake(workdir, "--list-target-rules")
    assert result.returncode == 0, result.stderr
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip() and not line.startswith(" ")]


def test_dry_run_of_every_target_rule(workdir):
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(EVALUATED_CONFIG))
    targets = _target_rules(workdir)
    assert {"all", "preprocess", "samples"} <= set(targets)
    for target in targets:
        result = snakemake(workdir, target, "-n")
        assert result.returncode == 0, f"dry run of {target} failed:\n{result.stdout}\n{result.stderr}"


def test_dry_run_plans_the_preprocessing_jobs(workdir):
    result = snakemake(workdir, "-n", "preprocess")
    assert result.returncode == 0, result.stderr
    for rule in ("samples", "manifest", "preprocess_gather"):
        assert f"rule {rule}:" in result.stdout or f"checkpoint {rule}:" in result.stdout


def test_missing_dataset_path_fails_fast_naming_the_key(workdir):
    config = {"datasets": {"faces": {"type": "images", "path": "no/such/folder"}}}
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--cores", "1", "preprocess")
    assert result.returncode != 0
    assert "datasets.faces.path: no/such/folder does not exist" in result.stdout + result.stderr


def test_malformed_config_is_refused(workdir):
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump({"preprocess": {"shard_size": 0}}))
    result = snakemake(workdir, "-n", "preprocess")
    assert result.returncode != 0 and "shard_size" in result.stdout + result.stderr


@pytest.mark.slow
def test_end_to_end_preprocessing(workdir):
    result = snakemake(workdir, "--cores", "1", "preprocess")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    cache = workdir / "results" / "cache"
    images = pd.read_parquet(cache / "samples_images" / "index.parquet")
    assert images["sample_id"].tolist() == ["astronaut.png", "grace_hopper.jpg"]
    video = pd.read_parquet(cache / "samples_video" / "index.parquet")
    assert video["frame"].tolist() == list(range(0, 48, 6)) and video["shard"].max() == 1
    assert set(images["status_name"]) == set(video["status_name"]) == {"ok"}
    for shard in ("0000", "0001"):
        assert (cache / "samples_video" / f"shard-{shard}" / "preprocess.zarr" / "zarr.json").is_file()
    assert list((workdir / "results" / "benchmarks" / "preprocess" / "samples_video").glob("shard-*.tsv"))
    again = snakemake(workdir, "-n", "preprocess")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
