"""Fixtures of the training tests: the tiny face world, built once per session."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.train.tiny_world import HELDOUT, tiny_config, write_tiny_cache


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> tuple[dict[str, Any], Path]:
    """(config, cache root): the tiny face model, detector, a 12-sample cached dataset ``tiny`` and a 5-sample
    ``tiny_heldout`` (see tiny_world.py)."""
    folder = tmp_path_factory.mktemp("tiny_world")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = tiny_config(folder)
        write_tiny_cache(config, folder / "cache")
        write_tiny_cache(config, folder / "cache", num_samples=5, seed=2, name=HELDOUT)
    finally:
        torch.set_num_threads(threads)
    return config, folder / "cache"


@pytest.fixture
def world(tiny_world) -> tuple[dict[str, Any], Path]:
    """A copy of the tiny world's config (free to change) and its cache root."""
    config, cache = tiny_world
    return copy.deepcopy(config), cache


@pytest.fixture(autouse=True)
def one_thread():
    """Training tests run on one thread: the machine is shared and the tensors are tiny."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
