"""The tiny config end to end: `snakemake --cores 2 --configfile config/tiny.yaml` through the real Snakefile,
in a temporary working directory, from nothing to every final target (demo world, preprocess, stand-ins, features
and the later stages)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from augane.io.shards import open_store

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "config" / "tiny.yaml"
DATASETS = ("demo_train", "demo_heldout", "demo_disfa")


def snakemake(workdir: Path, *arguments: str, timeout: int = 900) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(TINY), *arguments]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "68719476736",
           "MALLOC_TOP_PAD_": "1073741824"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=workdir, env=env)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    started = time.perf_counter()
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    print(f"tiny config end to end: {time.perf_counter() - started:.0f} s")
    return workdir


@pytest.mark.slow
def test_tiny_config_runs_every_stage(tiny_run):
    results = tiny_run / "results"
    for part in ("train", "heldout"):
        assert (results / "demo" / "world" / part / "labels.csv").is_file()
    assert (results / "demo" / "world" / "disfa" / "GroundTruth" / "SN002.parquet").is_file()
    for name in DATASETS:
        index = pd.read_parquet(results / "cache" / name / "index.parquet")
        assert (index["status_name"] == "ok").mean() >= 0.9, f"MediaPipe missed faces in {name}"
        features = pd.read_parquet(results / "cache" / name / "features.parquet")
        assert features["valid"].sum() == (index["status_name"] == "ok").sum()
    train_index = pd.read_parquet(results / "cache" / "demo_train" / "index.parquet")
    assert {"AU12", "gt_exp_0", "gt_cam_2", "gt_landmarks_209"} <= set(train_index.columns)
    store = open_store(results / "cache" / "demo_disfa" / "shard-0000" / "features.zarr")
    networks = store.attrs["networks"]
    assert networks["au_detector"]["checkpoint"] == "au_detector.pth" and networks["deca"]["checkpoint"] == "deca_model.tar"
    assert not networks["au_detector"]["untrained"] and not store.attrs["untrained_weights"]
    for name in ("au_detector", "deca"):
        score = json.loads((results / "demo" / "detectors" / f"{name}_score.json").read_text())
        assert score["samples"]["train"] == 24 and "stand-in" in score["provenance"]
        assert (results / "benchmarks" / "demo" / f"{name}.tsv").is_file()


@pytest.mark.slow
def test_tiny_config_is_complete_after_one_run(tiny_run):
    again = snakemake(tiny_run, "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
