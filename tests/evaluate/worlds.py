"""Session fixtures of the reconstruction tests (import the ones a module uses).

* ``tiny_disfa``: the tiny DISFA-type cache of :mod:`tests.evaluate.tiny_disfa`, its config and an
  UNTRAINED GANE checkpoint for it.
* ``media_config``: a config for ``augane reconstruct`` on real photos: the tiny face model, untrained
  ResNet-18 AU detector, DECA and EMOCA in their release formats, 64-pixel crops, and an UNTRAINED GANE
  checkpoint fitting those networks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from augane.config import validate_config
from tests.evaluate.tiny_disfa import DATASET, gane_checkpoint, tiny_disfa_config, write_tiny_disfa

MODEL = {"gat": {"layers": 1, "heads": 2}, "transformer": {"layers": 1, "heads": 2, "feedforward": 32, "dropout": 0.0}}


@dataclass(frozen=True)
class TinyDisfa:
    """The tiny DISFA-type world: config, cache root, the dataset's cache folder and an untrained GANE."""

    config: dict[str, Any]
    cache_root: Path
    checkpoint: Path

    @property
    def cache_dir(self) -> Path:
        return self.cache_root / DATASET

    @property
    def ground_truth(self) -> Path:
        return Path(self.config["datasets"][DATASET]["path"]) / "GroundTruth"

    def fresh_config(self) -> dict[str, Any]:
        return copy.deepcopy(self.config)


def _one_thread(build):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return build()
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_disfa(tmp_path_factory) -> TinyDisfa:
    folder = tmp_path_factory.mktemp("tiny_disfa")

    def build() -> TinyDisfa:
        config = tiny_disfa_config(folder)
        write_tiny_disfa(config, folder / "cache")
        checkpoint = gane_checkpoint(config, folder / "cache", folder / "train" / "best.pt")
        return TinyDisfa(config, folder / "cache", checkpoint)

    return _one_thread(build)


@dataclass(frozen=True)
class MediaWorld:
    """Config and untrained GANE checkpoint for ``augane reconstruct`` tests."""

    config: dict[str, Any]
    checkpoint: Path
    folder: Path

    def fresh_config(self) -> dict[str, Any]:
        return copy.deepcopy(self.config)


@pytest.fixture(scope="session")
def media_world(tmp_path_factory) -> MediaWorld:
    from augane.model import GANE
    from augane.train.checkpoint import save_checkpoint
    from augane.evaluate.user_media import load_networks, network_layout
    from tests.features.tiny_shards import tiny_config
    from tests.train.tiny_world import face_model_files

    folder = tmp_path_factory.mktemp("media_world")

    def build() -> MediaWorld:
        networks = tiny_config(folder / "networks", emoca=True)
        resources = dict(networks["resources"], **face_model_files(folder / "face"), landmark_embedding=None)
        config = validate_config({"run_name": "media", "device": "cpu", "resources": resources, "model": MODEL,
                                  "preprocess": {"crop": {"size": 64}, "max_faces": 1}})
        loaded = load_networks(config, "deca", torch.device("cpu"))
        layout = network_layout(loaded, 64)
        torch.manual_seed(1)
        gane = GANE.from_config(config["model"], layout.num_aus, layout.node_dim, layout.global_dim)
        with torch.no_grad():
            for head in gane.heads.values():
                head.weight.normal_(0.0, 0.05)
        checkpoint = save_checkpoint(folder / "best.pt", gane, model_section=config["model"], layout=layout,
                                     config=config, training={"epoch": 0, "step": 0, "untrained": True},
                                     cache_networks={"photos": {"networks": loaded.provenance(),
                                                                "untrained_weights": True}})
        return MediaWorld(config, checkpoint, folder)

    return _one_thread(build)
