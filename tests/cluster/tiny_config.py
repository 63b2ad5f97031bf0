"""The tiny config that the SLURM tests and benchmark run: the embedded
default (config/config.yaml, the demo world) shrunk to a few dozen small
faces and one epoch of the stand-in detectors, with few samples per shard so
that every dataset has shards to pack."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = Path(__file__).with_name("cluster-test.smk")
# The stages run, as Snakemake targets.
TARGETS = ["preprocess", "features", "train"]

OVERRIDES = {
    "run_name": "cluster-test",
    "preprocess": {"shard_size": 8},
    "demo": {
        "world": {
            "image_size": 128,
            "supersample": 1,
            "train": {"identities": 4, "images_per_identity": 4},
            "heldout": {"identities": 2, "images_per_identity": 4},
            "disfa": {"subjects": 1, "frames": 12},
        },
        "detectors": {"au_detector": {"epochs": 1, "batch_size": 8}, "deca": {"epochs": 1, "batch_size": 8}},
    },
    # A few steps of GANE: through SLURM on two processes (the test overlay's two fake GPUs, gloo on CPU),
    # locally on one; the 16 training images make global batches of 4 that split evenly across the ranks.
    "train": {"epochs": 1, "batch_size": 4, "max_steps": 4, "num_workers": 0},
    # No dropout: each rank draws its own dropout masks, so with dropout two processes train differently
    # from one by design, not by a fault of the distributed training.
    "model": {"transformer": {"dropout": 0.0}},
}


def merged(base: dict, override: dict) -> dict:
    """`base` with the keys of `override` replaced, recursively."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def tiny_workdir(root: Path, overrides: dict | None = None) -> Path:
    """Make `root` a working directory of the workflow holding the tiny config
    (plus `overrides`) as config/config.yaml, which the Snakefile reads."""
    config = merged(yaml.safe_load((REPO / "config" / "config.yaml").read_text()), OVERRIDES)
    (root / "config").mkdir(parents=True)
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(merged(config, overrides or {})))
    return root
