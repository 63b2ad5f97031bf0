"""FLAME-format data with random arrays, made by the tests themselves (tiny meshes)."""

from __future__ import annotations

import numpy as np

from augane.flame.embedding import LandmarkEmbedding68, MediapipeEmbedding
from augane.flame.io import FLAME_PARENTS, FlameModelData
from augane.landmarks import MEDIAPIPE_105

NUM_VERTICES = 64
NUM_FACES = 120


def random_bary(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Random barycentric coordinates (..., 3), each row summing to one."""
    values = rng.random((*shape, 3)) + 0.05
    return values / values.sum(axis=-1, keepdims=True)


def random_model(seed: int = 0, num_shape: int = 300) -> FlameModelData:
    """A FLAME-format model with random arrays (300 identity + 100 expression columns by default)."""
    rng = np.random.default_rng(seed)
    v_template = rng.normal(0.0, 0.05, (NUM_VERTICES, 3))
    faces = np.stack([rng.choice(NUM_VERTICES, 3, replace=False) for _ in range(NUM_FACES)])
    j_regressor = rng.random((5, NUM_VERTICES)) * (rng.random((5, NUM_VERTICES)) < 0.2)
    j_regressor[:, 0] += 1e-3
    j_regressor /= j_regressor.sum(axis=1, keepdims=True)
    weights = rng.dirichlet(np.full(5, 0.5), NUM_VERTICES)
    return FlameModelData(
        v_template=v_template,
        faces=faces.astype(np.int64),
        shapedirs=rng.normal(0.0, 2e-3, (NUM_VERTICES, 3, num_shape + 100)),
        posedirs=rng.normal(0.0, 2e-3, (NUM_VERTICES, 3, 36)),
        j_regressor=j_regressor,
        parents=FLAME_PARENTS,
        weights=weights,
        source="random",
    )


def random_landmark_embedding(seed: int = 1, num_faces: int = NUM_FACES) -> LandmarkEmbedding68:
    rng = np.random.default_rng(seed)
    static_faces = rng.integers(0, num_faces, 51)
    static_bary = random_bary(rng, 51)
    dynamic_faces = rng.integers(0, num_faces, (79, 17))
    dynamic_bary = random_bary(rng, 79, 17)
    return LandmarkEmbedding68(
        static_faces=static_faces,
        static_bary=static_bary,
        dynamic_faces=dynamic_faces,
        dynamic_bary=dynamic_bary,
        full_faces=np.concatenate([dynamic_faces[0], static_faces]),
        full_bary=np.concatenate([dynamic_bary[0], static_bary]),
    )


def random_mediapipe_embedding(seed: int = 2, num_faces: int = NUM_FACES) -> MediapipeEmbedding:
    rng = np.random.default_rng(seed)
    return MediapipeEmbedding(
        faces=rng.integers(0, num_faces, 105),
        bary=random_bary(rng, 105),
        landmark_indices=np.asarray(MEDIAPIPE_105, dtype=np.int64),
    )
