"""Demo face model, step 3: the parts behind the skin's openings (eyeballs, mouth cavity, teeth).

Without them, opening the eyes or the mouth of the skin mask would show the
background. Each part is a small grid mesh with its own square patch of the
texture atlas (``patch_uv`` in [0, 1]^2, v up) and a fixed joint:

* eyeballs: the front 110 degrees of an ellipsoid (12 mm deep, wide and tall
  enough to fill the lid opening), centred on the photo's iris, 1 mm behind
  every lid-contour point; bound to its eye joint, so the eye pose turns it.
* mouth cavity: a bowl behind the lips, following the skin surface 6 mm
  behind it at its rim and 28 mm behind it at the centre; its lower half
  follows the jaw.
* teeth: an upper and a lower strip on a parabolic dental arch 4 mm behind the
  lips (upper incisal edge 2.5 mm below the lip line, lower teeth behind it);
  upper on the head, lower on the jaw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator

from augane.demo.face_model_mesh import (
    LOWER_LIP_INNER,
    MOUTH_INNER_CORNERS,
    UPPER_LIP_INNER,
    orient_towards_viewer,
)
from augane.flame.layer import JAW, NECK

#: z of the skin at (N, 2) frontal positions (x, y).
DepthFunction = Callable[[np.ndarray], np.ndarray]

EYEBALL_DEPTH_M = 0.012
EYEBALL_MARGIN_M = 0.001
EYEBALL_POLAR_EXTENT = np.deg2rad(110.0)


@dataclass(frozen=True)
class Part:
    """A mesh part with its own texture patch.

    Attributes:
        name: ``right_eyeball``, ``left_eyeball``, ``mouth_cavity``, ``upper_teeth``, ``lower_teeth``.
        vertices: (n, 3) model-space positions.
        faces: (m, 3) triangles (local indices), counter-clockwise seen from outside/front.
        patch_uv: (n, 2) coordinates in the part's texture patch, [0, 1]^2, v up.
        weights: (n, 5) skinning weights over root, neck, jaw, left eye, right eye.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    patch_uv: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class EyeballShape:
    """Ellipsoid of an eyeball: ``center`` (3,), ``radii`` (3,) in metres, front pole towards +z."""

    center: np.ndarray
    radii: np.ndarray

    def point(self, polar: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
        """(..., 3) surface points at polar angle from the front pole and azimuth (0 = +x, pi/2 = +y)."""
        direction = np.stack(
            [np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)], axis=-1
        )
        return self.center + direction * self.radii


def _grid_faces(rows: int, columns: int, wrap: bool) -> np.ndarray:
    """Two triangles per cell of a ``rows`` x ``columns`` vertex grid (row-major), optionally wrapping columns."""
    faces = []
    last = columns if wrap else columns - 1
    for r in range(rows - 1):
        for c in range(last):
            a, b = r * columns + c, r * columns + (c + 1) % columns
            d, e = a + columns, b + columns
            faces += [(a, b, e), (a, e, d)]
    return np.array(faces, dtype=np.int64)


def _weights(count: int, joint: int) -> np.ndarray:
    weights = np.zeros((count, 5))
    weights[:, joint] = 1.0
    return weights


def fit_eyeball(lid_contour: np.ndarray, iris_center: np.ndarray) -> EyeballShape:
    """The eyeball behind a lid opening.

    Args:
        lid_contour: (16, 3) lid-margin points of one eye.
        iris_center: (3,) the iris centre (front pole goes in front of it).
    """
    offsets = lid_contour[:, :2] - iris_center[:2]
    radius_x = max(EYEBALL_DEPTH_M, np.abs(offsets[:, 0]).max() + 0.002)
    radius_y = max(EYEBALL_DEPTH_M, np.abs(offsets[:, 1]).max() + 0.002)
    inside = 1.0 - (offsets[:, 0] / radius_x) ** 2 - (offsets[:, 1] / radius_y) ** 2
    height = EYEBALL_DEPTH_M * np.sqrt(np.clip(inside, 0.0, None))
    center_z = (lid_contour[:, 2] - EYEBALL_MARGIN_M - height).min()
    return EyeballShape(center=np.array([iris_center[0], iris_center[1], center_z]),
                        radii=np.array([radius_x, radius_y, EYEBALL_DEPTH_M]))


def build_eyeball(name: str, shape: EyeballShape, joint: int, rings: int = 12, segments: int = 32) -> Part:
    """Mesh of the front of an eyeball; patch coordinates are azimuthal-equidistant around the front pole."""
    polar = np.linspace(0.0, EYEBALL_POLAR_EXTENT, rings + 1)[1:]
    azimuth = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    grid_polar, grid_azimuth = np.meshgrid(polar, azimuth, indexing="ij")
    vertices = np.concatenate([shape.center[None] + np.array([[0.0, 0.0, shape.radii[2]]]),
                               shape.point(grid_polar, grid_azimuth).reshape(-1, 3)])
    radius = np.concatenate([[0.0], (grid_polar / EYEBALL_POLAR_EXTENT).ravel()]) * 0.5
    angle = np.concatenate([[0.0], grid_azimuth.ravel()])
    patch_uv = np.stack([0.5 + radius * np.cos(angle), 0.5 + radius * np.sin(angle)], axis=1)
    cap = np.array([(0, 1 + (s + 1) % segments, 1 + s) for s in range(segments)], dtype=np.int64)
    faces = np.concatenate([cap, _grid_faces(rings, segments, wrap=True) + 1])
    faces = _orient_outwards(vertices, faces, shape.center)
    return Part(name=name, vertices=vertices, faces=faces, patch_uv=patch_uv, weights=_weights(len(vertices), joint))


def _orient_outwards(vertices: np.ndarray, faces: np.ndarray, center: np.ndarray) -> np.ndarray:
    corners = vertices[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    inward = (normals * (corners.mean(axis=1) - center)).sum(axis=1) < 0
    oriented = faces.copy()
    oriented[inward] = faces[inward][:, [0, 2, 1]]
    return oriented


@dataclass(frozen=True)
class MouthFrame:
    """Where the closed mouth is: ``center`` (3,) of the lip line, ``half_width`` (m), ``line_y`` (m)."""

    center: np.ndarray
    half_width: float
    line_y: float


def mouth_frame(skin_vertices: np.ndarray) -> MouthFrame:
    inner = skin_vertices[list(UPPER_LIP_INNER + LOWER_LIP_INNER)]
    corners = skin_vertices[list(MOUTH_INNER_CORNERS)]
    center = np.array([0.5 * corners[:, 0].sum(), inner[:, 1].mean(), inner[:, 2].max()])
    return MouthFrame(center=center, half_width=float(0.5 * abs(corners[1, 0] - corners[0, 0])),
                      line_y=float(inner[:, 1].mean()))


def skin_depth(skin_vertices: np.ndarray) -> DepthFunction:
    """z of the skin over (x, y) (the skin seen from the front is a height field; holes are filled linearly)."""
    linear = LinearNDInterpolator(skin_vertices[:, :2], skin_vertices[:, 2])
    nearest = NearestNDInterpolator(skin_vertices[:, :2], skin_vertices[:, 2])

    def depth(xy: np.ndarray) -> np.ndarray:
        z = linear(xy)
        missing = np.isnan(z)
        z[missing] = nearest(xy[missing])
        return z

    return depth


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def build_mouth_cavity(frame: MouthFrame, depth: DepthFunction, rings: int = 8, segments: int = 32) -> Part:
    """The bowl behind the lips (see the module docstring); its lower half follows the jaw."""
    half_x, up, down = frame.half_width + 0.006, 0.009, 0.016
    rim_depth, center_depth = 0.006, 0.028
    radius = np.linspace(0.0, 1.0, rings + 1)[1:]
    azimuth = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    grid_r, grid_a = np.meshgrid(radius, azimuth, indexing="ij")
    r = np.concatenate([[0.0], grid_r.ravel()])
    a = np.concatenate([[0.0], grid_a.ravel()])
    half_y = np.where(np.sin(a) > 0, up, down)
    xy = frame.center[:2] + np.stack([half_x * r * np.cos(a), half_y * r * np.sin(a)], axis=1)
    z = depth(xy) - (rim_depth + (center_depth - rim_depth) * (1.0 - r**2))
    vertices = np.concatenate([xy, z[:, None]], axis=1)
    cap = np.array([(0, 1 + s, 1 + (s + 1) % segments) for s in range(segments)], dtype=np.int64)
    faces = orient_towards_viewer(vertices, np.concatenate([cap, _grid_faces(rings, segments, wrap=True) + 1]))
    jaw = _smoothstep((frame.line_y + 0.002 - vertices[:, 1]) / 0.006)
    weights = np.zeros((len(vertices), 5))
    weights[:, JAW], weights[:, NECK] = jaw, 1.0 - jaw
    patch_uv = 0.5 + 0.5 * np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
    return Part(name="mouth_cavity", vertices=vertices, faces=faces, patch_uv=patch_uv, weights=weights)


def build_teeth(frame: MouthFrame, depth: DepthFunction, columns: int = 17, rows: int = 4) -> tuple[Part, Part]:
    """Upper (head) and lower (jaw) teeth strips on a parabolic arch; patch: upper half / lower half."""
    half_width = 0.8 * frame.half_width
    arch_depth = 0.009
    front_z = frame.center[2] - 0.004
    parts = []
    for name, top, bottom, setback, joint, v_range in (
        ("upper_teeth", frame.line_y + 0.008, frame.line_y - 0.0025, 0.0, NECK, (0.5, 1.0)),
        ("lower_teeth", frame.line_y - 0.0015, frame.line_y - 0.009, 0.0012, JAW, (0.0, 0.5)),
    ):
        u = np.linspace(0.0, 1.0, columns)
        s = np.linspace(0.0, 1.0, rows)
        grid_u, grid_s = np.meshgrid(u, s, indexing="ij")
        x = frame.center[0] + (2.0 * grid_u - 1.0) * half_width
        y = bottom + grid_s * (top - bottom)
        arch = front_z - setback - arch_depth * ((x - frame.center[0]) / half_width) ** 2
        xy = np.stack([x.ravel(), y.ravel()], axis=1)
        z = np.minimum(arch.ravel(), depth(xy) - 0.0025)
        vertices = np.concatenate([xy, z[:, None]], axis=1)
        faces = orient_towards_viewer(vertices, _grid_faces(columns, rows, wrap=False))
        patch_uv = np.stack([grid_u.ravel(), v_range[0] + grid_s.ravel() * (v_range[1] - v_range[0])], axis=1)
        if name == "lower_teeth":
            patch_uv[:, 1] = v_range[1] - grid_s.ravel() * (v_range[1] - v_range[0])
        parts.append(Part(name=name, vertices=vertices, faces=faces, patch_uv=patch_uv,
                          weights=_weights(len(vertices), joint)))
    return parts[0], parts[1]
