"""Demo face model, step 6: its landmark embeddings.

* 105 MediaPipe landmarks: the MediaPipe vertices themselves (a triangle
  containing the vertex, barycentric one-hot).
* 68 iBUG landmarks (DECA's layout) from :data:`augane.landmarks.MEDIAPIPE_IBUG68`:
  the 51 static points are vertices; the 17 contour points get a dynamic
  table over DECA's 79 yaw bins. For bin angle ``a``, each contour point slides
  along a horizontal path on the skin, from its outline vertex towards the
  midline, to the point that is outermost in the image once the head is turned
  by ``a`` about +y: the silhouette on the side turning away, the outline on
  the side turning towards the camera.
"""

from __future__ import annotations

import numpy as np

from augane.flame.embedding import NUM_YAW_BINS, LandmarkEmbedding68, MediapipeEmbedding, yaw_bin_degrees
from augane.landmarks import MEDIAPIPE_105, MEDIAPIPE_IBUG68

#: How far along its path (fraction of the way to the midline) a contour point may slide.
CONTOUR_PATH_EXTENT = 0.6
CONTOUR_PATH_SAMPLES = 48


def vertex_embedding(faces: np.ndarray, vertices: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Triangle and one-hot barycentric coordinates placing a landmark exactly on each given vertex.

    Returns:
        (L,) int64 triangle indices and (L, 3) float64 barycentric coordinates.
    """
    face_index, bary = [], []
    for vertex in vertices:
        hits = np.argwhere(faces == vertex)
        if not len(hits):
            raise ValueError(f"vertex {vertex} belongs to no triangle")
        triangle, corner = hits[0]
        face_index.append(triangle)
        bary.append(np.eye(3)[corner])
    return np.array(face_index, dtype=np.int64), np.array(bary, dtype=np.float64)


def mediapipe_embedding(faces: np.ndarray) -> MediapipeEmbedding:
    """The 105-landmark embedding of a mesh whose vertices 0..467 are MediaPipe's."""
    face_index, bary = vertex_embedding(faces, MEDIAPIPE_105)
    return MediapipeEmbedding(faces=face_index, bary=bary, landmark_indices=np.asarray(MEDIAPIPE_105, np.int64))


def _locate_frontal(points_xy: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frontmost triangle under each (x, y) seen from +z, and barycentrics; -1 where none."""
    corners = vertices[faces][:, :, :2]  # (F, 3, 2)
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    denominator = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
    valid = np.abs(denominator) > 1e-14
    safe = np.where(valid, denominator, 1.0)
    px, py = points_xy[:, 0:1], points_xy[:, 1:2]
    w0 = ((b[:, 1] - c[:, 1]) * (px - c[:, 0]) + (c[:, 0] - b[:, 0]) * (py - c[:, 1])) / safe
    w1 = ((c[:, 1] - a[:, 1]) * (px - c[:, 0]) + (a[:, 0] - c[:, 0]) * (py - c[:, 1])) / safe
    w2 = 1.0 - w0 - w1
    inside = valid & (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
    z = w0 * vertices[faces[:, 0], 2] + w1 * vertices[faces[:, 1], 2] + w2 * vertices[faces[:, 2], 2]
    z = np.where(inside, z, -np.inf)
    best = z.argmax(axis=1)
    found = np.isfinite(z[np.arange(len(points_xy)), best])
    rows = np.arange(len(points_xy))
    bary = np.stack([w0[rows, best], w1[rows, best], w2[rows, best]], axis=1)
    return np.where(found, best, -1), bary


def contour_table(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dynamic contour over the 79 yaw bins (see the module docstring).

    Args:
        vertices: (V, 3) neutral skin vertices (MediaPipe points first).
        faces: (F, 3) skin triangles.
    Returns:
        (79, 17) int64 triangles and (79, 17, 3) float64 barycentric coordinates.
    """
    angles = np.deg2rad(yaw_bin_degrees(np.arange(NUM_YAW_BINS)))
    table_faces = np.zeros((NUM_YAW_BINS, 17), dtype=np.int64)
    table_bary = np.zeros((NUM_YAW_BINS, 17, 3))
    for k, vertex in enumerate(MEDIAPIPE_IBUG68[:17]):
        start = vertices[vertex]
        fractions = np.linspace(0.0, CONTOUR_PATH_EXTENT, CONTOUR_PATH_SAMPLES)
        path_xy = np.stack([start[0] * (1.0 - fractions), np.full_like(fractions, start[1])], axis=1)
        path_faces, path_bary = _locate_frontal(path_xy, vertices, faces)
        if path_faces[0] < 0:  # the outline vertex itself lies on the mesh border: embed it exactly
            (path_faces[0],), (path_bary[0],) = vertex_embedding(faces, (vertex,))
        reachable = np.cumprod(path_faces >= 0).astype(bool)  # stop at the first hole
        path_faces, path_bary = path_faces[reachable], path_bary[reachable]
        points = (vertices[faces[path_faces]] * path_bary[..., None]).sum(axis=1)
        side = np.sign(start[0]) if abs(start[0]) > 1e-3 else 0.0
        for b, angle in enumerate(angles):
            image_x = np.cos(angle) * points[:, 0] + np.sin(angle) * points[:, 2]
            choice = int(np.argmax(side * image_x)) if side else 0
            table_faces[b, k] = path_faces[choice]
            table_bary[b, k] = path_bary[choice]
    return table_faces, table_bary


def landmark_embedding68(vertices: np.ndarray, faces: np.ndarray) -> LandmarkEmbedding68:
    """DECA-layout 68-point embedding of a mesh whose first skin triangles are ``faces``."""
    static_faces, static_bary = vertex_embedding(faces, MEDIAPIPE_IBUG68[17:])
    dynamic_faces, dynamic_bary = contour_table(vertices, faces)
    return LandmarkEmbedding68(
        static_faces=static_faces,
        static_bary=static_bary,
        dynamic_faces=dynamic_faces,
        dynamic_bary=dynamic_bary,
        full_faces=np.concatenate([dynamic_faces[0], static_faces]),
        full_bary=np.concatenate([dynamic_bary[0], static_bary]),
    )
