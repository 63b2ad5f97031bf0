"""`snakemake features` end to end on the sample images, with untrained development weights built by the workflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from augane.io.shards import open_store

REPO = Path(__file__).resolve().parents[2]

CONFIG = {
    "device": "cpu",
    "datasets": {"samples_images": {"type": "images", "path": "results/samples/images"}},
    "preprocess": {"shard_size": 4, "crop": {"size": 64}},
    "resources": {
        "deca": {"checkpoint": "results/dev_weights/untrained_deca_model.tar", "backbone": "resnet18", "input_size": 64},
        "au_detector": {"checkpoint": "results/dev_weights/untrained_au_detector.pth", "backbone": "resnet18",
                        "resize": 72, "input_size": 64},
        "emoca": {"checkpoint": "results/dev_weights/untrained_emoca.ckpt", "backbone": "resnet18"},
    },
    "features": {"batch_size": 4},
}


def snakemake(workdir: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=workdir)


@pytest.mark.slow
def test_features_target_end_to_end(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    result = snakemake(tmp_path, "--cores", "2", "features")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    cache = tmp_path / "results" / "cache" / "samples_images"
    table = pd.read_parquet(cache / "features.parquet")
    assert table["sample_id"].tolist() == ["astronaut.png", "grace_hopper.jpg"] and table["valid"].all()
    assert table.filter(like="prob_AU").shape[1] == 41
    store = open_store(cache / "shard-0000" / "features.zarr", required=["afg", "emoca_exp"])
    assert store.attrs["untrained_weights"] is True
    assert store.attrs["networks"]["deca"]["checkpoint"] == "untrained_deca_model.tar"
    assert (tmp_path / "results" / "benchmarks" / "features" / "samples_images" / "shard-0000.tsv").is_file()
    log = (tmp_path / "results" / "logs" / "features" / "samples_images" / "shard-0000.log").read_text()
    assert "UNTRAINED" in log
    again = snakemake(tmp_path, "-n", "features")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
