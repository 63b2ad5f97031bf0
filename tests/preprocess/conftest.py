"""Fixtures of the preprocessing tests: one MediaPipe face mesh shared by the session (graph start-up is slow)."""

from __future__ import annotations

import pytest

from augane.preprocess.landmarkers import MediaPipeFaceMesh


@pytest.fixture(scope="session")
def face_mesh():
    mesh = MediaPipeFaceMesh(static_image_mode=True, max_faces=4)
    yield mesh
    mesh.close()
