"""Demo face model, step 2: the skin surface on MediaPipe's face-mesh topology.

* Triangles: MediaPipe publishes its tessellation only as edges
  (``FACEMESH_TESSELATION``); the triangles are its 3-cliques, minus the
  cliques made of three edges that each already border two triangles
  (non-facial "separating" triangles). For mediapipe 0.10.21 this gives the
  852 triangles of the canonical mesh, with holes at the eyes and the mouth.
* Neutral mouth: the photo shows parted lips; the inner lip contours are
  closed by moving each upper/lower pair to their common midpoint, the
  correction spreading over the lips harmonically.
* Optional subdivision: every triangle is split in four; edge midpoints are
  lifted onto a smooth surface by Phong tessellation (the MediaPipe points stay
  exact vertices, with their indices 0..467).

Named MediaPipe points are listed here (subject's right = image left = -x).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from augane.demo.face_model_capture import NUM_MESH_POINTS, symmetrise

# Eye openings, as loops; "upper"/"lower" exclude the corners (outer, inner).
RIGHT_EYE_UPPER = (246, 161, 160, 159, 158, 157, 173)
RIGHT_EYE_LOWER = (7, 163, 144, 145, 153, 154, 155)
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_UPPER = (466, 388, 387, 386, 385, 384, 398)
LEFT_EYE_LOWER = (249, 390, 373, 374, 380, 381, 382)
LEFT_EYE_CORNERS = (263, 362)
#: The lid margins as closed loops (outer corner, upper lid, inner corner, lower lid).
RIGHT_EYE_LOOP = RIGHT_EYE_CORNERS[:1] + RIGHT_EYE_UPPER + RIGHT_EYE_CORNERS[1:] + RIGHT_EYE_LOWER[::-1]
LEFT_EYE_LOOP = LEFT_EYE_CORNERS[:1] + LEFT_EYE_UPPER + LEFT_EYE_CORNERS[1:] + LEFT_EYE_LOWER[::-1]
# Lips: outer and inner contours, upper and lower halves without the corners.
MOUTH_OUTER_CORNERS = (61, 291)
MOUTH_INNER_CORNERS = (78, 308)
UPPER_LIP_OUTER = (185, 40, 39, 37, 0, 267, 269, 270, 409)
LOWER_LIP_OUTER = (146, 91, 181, 84, 17, 314, 405, 321, 375)
UPPER_LIP_INNER = (191, 80, 81, 82, 13, 312, 311, 310, 415)
LOWER_LIP_INNER = (95, 88, 178, 87, 14, 317, 402, 318, 324)
#: The outer lip contour as a closed loop (vermilion border).
OUTER_LIP_LOOP = (61, *UPPER_LIP_OUTER, 291, *LOWER_LIP_OUTER[::-1])
# Brows (subject's right; the left ones are their mirror partners).
RIGHT_BROW_INNER = (55, 65, 107, 66)
RIGHT_BROW_OUTER = (70, 63, 46, 53)
RIGHT_BROW_MIDDLE = (105, 52)
#: The face outline loop, from the forehead top clockwise in the image.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149,
    150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)
LOWER_JAW_OUTLINE = (172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397)
UPPER_OUTLINE = (234, 127, 162, 21, 54, 103, 67, 109, 10, 338, 297, 332, 284, 251, 389, 356, 454)
NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 129, 358, 64, 294, 48, 278, 115, 344, 220, 440,
        45, 275, 44, 274, 125, 354, 141, 370, 240, 460, 79, 309, 166, 392, 75, 305, 60, 290, 20, 250, 242, 462)


@dataclass(frozen=True)
class SkinMesh:
    """The skin surface.

    Attributes:
        vertices: (V, 3) model-space positions; rows 0..467 are MediaPipe's points.
        faces: (F, 3) int64 triangles, counter-clockwise seen from the front (+z).
        photo_points: (V, 2) photo pixel position of each vertex (texture source).
    """

    vertices: np.ndarray
    faces: np.ndarray
    photo_points: np.ndarray


def tessellation_triangles() -> np.ndarray:
    """(852, 3) triangles of MediaPipe's face mesh recovered from its edge list (unoriented)."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    edges = {tuple(sorted(edge)) for edge in FACEMESH_TESSELATION}
    neighbours: dict[int, set[int]] = defaultdict(set)
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    cliques = {tuple(sorted((a, b, c))) for a, b in edges for c in neighbours[a] & neighbours[b]}
    use = defaultdict(int)
    for a, b, c in cliques:
        for edge in ((a, b), (a, c), (b, c)):
            use[edge] += 1
    facial = [t for t in cliques if not all(use[e] > 2 for e in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2])))]
    return np.array(sorted(facial), dtype=np.int64)


def orient_towards_viewer(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Reorder triangle corners so that every normal has a positive z component (faces the +z viewer)."""
    corners = vertices[faces]
    normal_z = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])[:, 2]
    oriented = faces.copy()
    oriented[normal_z < 0] = faces[normal_z < 0][:, [0, 2, 1]]
    return oriented


def cotangent_laplacian(vertices: np.ndarray, faces: np.ndarray, floor: float = 1e-3) -> scipy.sparse.csr_matrix:
    """(V, V) positive semi-definite cotangent Laplacian; weights floored at ``floor`` (obtuse triangles)."""
    rows, cols, weights = [], [], []
    for k in range(3):
        i, j, o = faces[:, k], faces[:, (k + 1) % 3], faces[:, (k + 2) % 3]
        u, v = vertices[i] - vertices[o], vertices[j] - vertices[o]
        cot = (u * v).sum(1) / np.maximum(np.linalg.norm(np.cross(u, v), axis=1), 1e-18)
        rows += [i, j]
        cols += [j, i]
        weights += [0.5 * cot, 0.5 * cot]
    n = len(vertices)
    w = scipy.sparse.coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), (n, n))
    w = w.tocsr()
    w.data = np.maximum(w.data, floor)
    degree = np.asarray(w.sum(axis=1)).ravel()
    return (scipy.sparse.diags(degree) - w).tocsr()


def harmonic_field(laplacian: scipy.sparse.csr_matrix, fixed: dict[int, np.ndarray | float]) -> np.ndarray:
    """Harmonic interpolation: values at ``fixed`` vertices, ``laplacian @ u = 0`` at the others.

    Args:
        laplacian: (V, V) from :func:`cotangent_laplacian`.
        fixed: vertex -> value (scalar or (C,) vector).
    Returns:
        (V,) or (V, C) field.
    """
    n = laplacian.shape[0]
    index = np.array(sorted(fixed), dtype=np.int64)
    values = np.array([np.atleast_1d(fixed[i]) for i in index], dtype=np.float64)
    free = np.setdiff1d(np.arange(n), index)
    field = np.zeros((n, values.shape[1]))
    field[index] = values
    if free.size:
        system = laplacian[free][:, free].tocsc()
        rhs = -(laplacian[free][:, index] @ values)
        solved = scipy.sparse.linalg.splu(system).solve(rhs)
        field[free] = solved
    scalar = all(np.ndim(value) == 0 for value in fixed.values())
    return field[:, 0] if scalar else field


def close_mouth(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Neutral, closed lips: inner lip pairs meet at their midpoint; the correction spreads harmonically.

    Points farther than 25 mm (in the frontal plane) from the mouth centre keep
    their position; the inner lip corners stay where they are.
    """
    closed = vertices.copy()
    fixed: dict[int, np.ndarray] = {}
    for upper, lower in zip(UPPER_LIP_INNER, LOWER_LIP_INNER):
        middle = 0.5 * (vertices[upper] + vertices[lower])
        fixed[upper] = middle - vertices[upper]
        fixed[lower] = middle - vertices[lower]
    for corner in MOUTH_INNER_CORNERS:
        fixed[corner] = np.zeros(3)
    center = vertices[list(MOUTH_INNER_CORNERS)].mean(axis=0)
    far = np.flatnonzero(np.linalg.norm(vertices[:, :2] - center[:2], axis=1) > 0.025)
    for index in far:
        fixed.setdefault(int(index), np.zeros(3))
    displacement = harmonic_field(cotangent_laplacian(vertices, faces), fixed)
    closed += displacement
    return closed


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals."""
    corners = vertices[faces]
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-18)


def subdivide(mesh: SkinMesh, smoothness: float = 0.75) -> SkinMesh:
    """Split every triangle in four; new edge vertices by Phong tessellation, old vertices unchanged.

    Args:
        mesh: the skin.
        smoothness: Phong tessellation's alpha (0 = flat midpoints, 1 = full).
    Returns:
        The subdivided skin; the first ``len(mesh.vertices)`` vertices are the old ones.
    """
    normals = vertex_normals(mesh.vertices, mesh.faces)
    edge_index: dict[tuple[int, int], int] = {}
    new_points, new_photo = [], []
    count = len(mesh.vertices)

    def midpoint(a: int, b: int) -> int:
        key = (min(a, b), max(a, b))
        if key not in edge_index:
            pa, pb = mesh.vertices[a], mesh.vertices[b]
            flat = 0.5 * (pa + pb)
            on_a = flat - ((flat - pa) @ normals[a]) * normals[a]
            on_b = flat - ((flat - pb) @ normals[b]) * normals[b]
            new_points.append((1 - smoothness) * flat + smoothness * 0.5 * (on_a + on_b))
            new_photo.append(0.5 * (mesh.photo_points[a] + mesh.photo_points[b]))
            edge_index[key] = count + len(new_points) - 1
        return edge_index[key]

    faces = []
    for a, b, c in mesh.faces:
        ab, bc, ca = midpoint(a, b), midpoint(b, c), midpoint(c, a)
        faces += [(a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca)]
    return SkinMesh(
        vertices=np.concatenate([mesh.vertices, np.array(new_points)]),
        faces=np.array(faces, dtype=np.int64),
        photo_points=np.concatenate([mesh.photo_points, np.array(new_photo)]),
    )


def build_skin(points: np.ndarray, photo_points: np.ndarray, subdivisions: int, mirror: np.ndarray) -> SkinMesh:
    """The skin from the 468 aligned MediaPipe points: triangles, closed mouth, subdivision.

    Args:
        points: (468, 3) aligned (and symmetrised) model-space points.
        photo_points: (468, 2) their photo pixel positions.
        subdivisions: times every triangle is split in four.
        mirror: (468,) mirror partner of each point; the closed mouth is made
            symmetric again (MediaPipe's triangulation is not quite).
    """
    faces = orient_towards_viewer(points, tessellation_triangles())
    closed = symmetrise(close_mouth(points, faces), mirror)
    mesh = SkinMesh(vertices=closed, faces=faces, photo_points=photo_points[:NUM_MESH_POINTS])
    for _ in range(subdivisions):
        mesh = subdivide(mesh)
    return mesh
