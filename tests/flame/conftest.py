"""Fixtures: FLAME-format model and embeddings with random arrays."""

from __future__ import annotations

import pytest

from augane.flame.embedding import LandmarkEmbedding68, MediapipeEmbedding
from augane.flame.io import FlameModelData

from .random_model import random_landmark_embedding, random_mediapipe_embedding, random_model


@pytest.fixture
def model() -> FlameModelData:
    return random_model()


@pytest.fixture
def landmark_embedding() -> LandmarkEmbedding68:
    return random_landmark_embedding()


@pytest.fixture
def mediapipe_embedding() -> MediapipeEmbedding:
    return random_mediapipe_embedding()
