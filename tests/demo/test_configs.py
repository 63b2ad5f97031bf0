"""The shipped configs: the embedded default runs on the demo world, paper.yaml only on the user's licensed files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from augane.config import load_config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "config"


def _resource_paths(resources: dict) -> list[str]:
    paths = []
    for value in resources.values():
        if isinstance(value, str):
            paths.append(value)
        elif isinstance(value, dict) and isinstance(value.get("checkpoint"), str):
            paths.append(value["checkpoint"])
    return paths


def test_default_config_runs_on_the_demo_world():
    config = load_config(CONFIGS / "config.yaml")
    assert all(path.startswith("results/demo/") for path in _resource_paths(config["resources"]))
    assert {name: dataset["path"] for name, dataset in config["datasets"].items()} == {
        "demo_train": "results/demo/world/train/images",
        "demo_heldout": "results/demo/world/heldout/images",
        "demo_disfa": "results/demo/world/disfa",
    }
    au = config["resources"]["au_detector"]
    assert (au["variant"], au["head"], au["backbone"]) == ("opengraphau", "anfl", "resnet18")
    assert au["input_size"] <= au["resize"] <= config["preprocess"]["crop"]["size"]
    assert config["resources"]["deca"]["input_size"] <= config["preprocess"]["crop"]["size"]
    assert config["demo"]["detectors"]["train_dataset"] in config["datasets"]
    assert config["demo"]["detectors"]["heldout_dataset"] in config["datasets"]


def test_paper_config_names_only_licensed_files_under_resources():
    config = load_config(CONFIGS / "paper.yaml")
    readme = (REPO / "resources" / "README.md").read_text()
    for path in _resource_paths(config["resources"]):
        assert path.startswith("resources/") and Path(path).name in readme, path
    for dataset in config["datasets"].values():
        assert dataset["path"].startswith("resources/")
    au = config["resources"]["au_detector"]
    assert (au["variant"], au["head"], au["backbone"], au["resize"], au["input_size"]) == (
        "opengraphau", "anfl", "resnet50", 256, 224)
    assert (config["resources"]["deca"]["backbone"], config["resources"]["deca"]["input_size"]) == ("resnet50", 224)
    assert config["preprocess"]["crop"]["size"] == 224
    train = config["train"]
    assert (train["lr"], train["batch_size"], train["epochs"]) == (1e-5, 16, 15)
    assert train["datasets"] and all(config["datasets"][name]["type"] == "images" for name in train["datasets"])
    assert config["datasets"][config["evaluate"]["disfa"]["dataset"]]["type"] == "disfa"


@pytest.mark.parametrize("name", ["config.yaml", "tiny.yaml", "paper.yaml"])
def test_shipped_configs_are_valid(name):
    load_config(CONFIGS / name)


@pytest.mark.slow
def test_paper_config_plans_no_demo_rule(tmp_path):
    """With the licensed files in place (empty stand-ins here), the plan never asks for the demo world."""
    config = load_config(CONFIGS / "paper.yaml")
    for path in _resource_paths(config["resources"]):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"")
    for dataset in config["datasets"].values():
        (tmp_path / dataset["path"]).mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
               "--configfile", str(CONFIGS / "paper.yaml"), "-n", "--quiet", "rules"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    planned = result.stdout + result.stderr
    assert "manifest" in planned and "demo_" not in planned
