"""A naive rasteriser for the tests: every pixel against every face, in float64 Python.

Independent of :mod:`augane.render.rasterizer` (edge functions, not scanlines):
a pixel centre is covered when it is inside the triangle, or on an edge that
is a left edge or a horizontal top edge of the triangle (the top-left rule in
y-down image coordinates); the nearest covering face wins, ties go to the
lower face index; degenerate faces are skipped.
"""

from __future__ import annotations

import numpy as np


def _owns_edge(ax: float, ay: float, bx: float, by: float, orientation: float) -> bool:
    """Whether a point on edge a->b belongs to the triangle (top-left rule, y down).

    The edge is traversed with the triangle's interior on its right when
    ``orientation > 0`` (clockwise on screen), else on its left; normalise so
    the interior is on the right (x right, y down), then: a left edge goes up
    (dy < 0), a top edge is horizontal going right (dy == 0, dx > 0).
    """
    dx, dy = (bx - ax, by - ay) if orientation > 0 else (ax - bx, ay - by)
    return dy < 0 or (dy == 0 and dx > 0)


def naive_rasterize(vertices: np.ndarray, faces: np.ndarray, height: int, width: int):
    """Reference fragments.

    Args:
        vertices: (B, V, 3) normalised image coordinates.
        faces: (F, 3).
    Returns:
        ``(face_index (B, H, W) int64, bary (B, H, W, 3) float64, depth (B, H, W))``.
    """
    batch = vertices.shape[0]
    face_index = np.full((batch, height, width), -1, dtype=np.int64)
    bary = np.zeros((batch, height, width, 3))
    depth = np.full((batch, height, width), np.inf)
    for b in range(batch):
        x = (vertices[b, :, 0].astype(np.float64) + 1.0) * width / 2.0
        y = (vertices[b, :, 1].astype(np.float64) + 1.0) * height / 2.0
        z = vertices[b, :, 2].astype(np.float64)
        for f, (i, j, k) in enumerate(faces):
            ax, ay, bx, by, cx, cy = x[i], y[i], x[j], y[j], x[k], y[k]
            area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
            if area == 0:
                continue
            edges = [(bx, by, cx, cy), (cx, cy, ax, ay), (ax, ay, bx, by)]  # opposite corners 0, 1, 2
            owns = [_owns_edge(*edge, area) for edge in edges]
            for row in range(height):
                py = row + 0.5
                for col in range(width):
                    px = col + 0.5
                    weights = []
                    inside = True
                    for (ex0, ey0, ex1, ey1), own in zip(edges, owns):
                        value = ((ex1 - ex0) * (py - ey0) - (ey1 - ey0) * (px - ex0)) / area
                        if value < 0 or (value == 0 and not own):
                            inside = False
                            break
                        weights.append(value)
                    if not inside:
                        continue
                    zf = weights[0] * z[i] + weights[1] * z[j] + weights[2] * z[k]
                    if zf < depth[b, row, col]:
                        depth[b, row, col] = zf
                        face_index[b, row, col] = f
                        bary[b, row, col] = weights
    return face_index, bary, depth
