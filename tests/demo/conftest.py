"""Fixtures of the demo-world tests: the demo face model and a tiny synthetic world, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from augane.config import validate_config

#: A world small enough for tests: 2 + 1 identities, two short videos.
TINY_WORLD = {
    "seed": 3,
    "image_size": 128,
    "render_batch": 8,
    "train": {"identities": 3, "images_per_identity": 4},
    "heldout": {"identities": 2, "images_per_identity": 3},
    "disfa": {"subjects": 2, "frames": 30, "fps": 10},
}


def tiny_config(**world_overrides) -> dict:
    """A validated config whose demo world is :data:`TINY_WORLD` (with overrides)."""
    return validate_config({"demo": {"world": {**TINY_WORLD, **world_overrides}}})


@pytest.fixture(scope="session")
def face_model_dir(tmp_path_factory) -> Path:
    """The demo face model written by `augane face-model build`."""
    from augane.cli.main import main

    folder = tmp_path_factory.mktemp("demo_face_model")
    config = folder / "config.yaml"
    config.write_text("seed: 0\n")
    assert main(["face-model", "build", "--config", str(config), "--out-dir", str(folder)]) == 0
    return folder


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory, face_model_dir) -> Path:
    """Every part of the tiny world under one folder (train/, heldout/, disfa/)."""
    from augane.demo.world import write_world_part

    root = tmp_path_factory.mktemp("tiny_world")
    config = tiny_config()
    for part in ("train", "heldout", "disfa"):
        write_world_part(config, part, root / part, face_model_dir=face_model_dir)
    return root


def detector_config(face_model_dir: Path, world: Path, crop: int = 64) -> dict:
    """A validated config training tiny stand-ins on the tiny world's train/heldout splits."""
    files = {"face_model": "face_model.pkl", "mediapipe_embedding": "mediapipe_landmark_embedding.npz",
             "landmark_embedding": "landmark_embedding.npy", "head_template": "head_template.obj",
             "albedo_model": "albedo_model.npz"}
    return validate_config({
        "resources": {
            **{role: str(face_model_dir / name) for role, name in files.items()},
            "au_detector": {"checkpoint": "detectors/au_detector.pth", "backbone": "resnet18", "resize": 72,
                            "input_size": 64},
            "deca": {"checkpoint": "detectors/deca_model.tar", "backbone": "resnet18", "input_size": 64},
        },
        "datasets": {
            name: {"type": "images", "path": str(world / split / "images"), "labels": str(world / split / "labels.csv")}
            for name, split in (("demo_train", "train"), ("demo_heldout", "heldout"))
        },
        "preprocess": {"shard_size": 8, "crop": {"size": crop}},
        "demo": {"world": TINY_WORLD, "detectors": {"au_detector": {"epochs": 1, "batch_size": 4},
                                                     "deca": {"epochs": 1, "batch_size": 4}}},
    })


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory, face_model_dir, tiny_world) -> Path:
    """A working directory whose results/cache holds the preprocessed tiny train and heldout splits,
    made by the preprocess stage's own functions (manifest, shards, index)."""
    from augane.io.manifest import build_manifest, write_manifest
    from augane.preprocess.index import gather_index
    from augane.preprocess.shard import preprocess_shard

    workdir = tmp_path_factory.mktemp("workdir")
    config = detector_config(face_model_dir, tiny_world)
    for name, dataset in config["datasets"].items():
        cache = workdir / "results" / "cache" / name
        manifest, problems = build_manifest(name, dataset, config["preprocess"]["shard_size"])
        write_manifest(cache / "manifest.parquet", manifest, name, config["preprocess"]["shard_size"], problems)
        for shard in sorted(manifest["shard"].unique()):
            preprocess_shard(config, name, cache / "manifest.parquet", int(shard),
                             cache / f"shard-{int(shard):04d}" / "preprocess.zarr")
        gather_index(cache / "manifest.parquet", cache / "index.parquet")
    return workdir
