"""Demo face model, step 5: the UV texture atlas and the albedo space.

Atlas (square, ``size`` texels, UV in the OBJ convention, v up):

* ``u`` in [0, 0.75]: the skin, the photo region around the face mapped
  affinely (each skin vertex's UV is its photo position);
* right column, four 0.25-square patches from the top: right eyeball, left
  eyeball, mouth cavity, teeth (upper half upper teeth, lower half lower).

Eyeball patches show the photo's eye where the photo sees it (the eyeball
point projected into the photo falls inside the photo's lid opening) and a
synthetic sclera and iris (the photo's median colours) where it does not,
so raising a lid reveals a plausible eyeball. The cavity and teeth are painted.

The albedo space (written in the ``FLAME_texture.npz`` layout) is the atlas
as its mean and a small colour basis: overall brightness, skin redness, skin
olive tone, lip colour, cheek flush, iris colour, and seeded random smooth skin
blotches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.path import Path as PolygonPath
from scipy.ndimage import gaussian_filter, map_coordinates

from augane.demo.face_model_capture import AlignedFace
from augane.demo.face_model_mesh import LOWER_LIP_INNER, LOWER_LIP_OUTER, UPPER_LIP_INNER, UPPER_LIP_OUTER
from augane.demo.face_model_parts import EYEBALL_POLAR_EXTENT, EyeballShape

FACE_RECT_WIDTH = 0.75
PATCH_SIZE = 0.25
#: (u0, v0) of each part's patch (size PATCH_SIZE x PATCH_SIZE).
PATCH_ORIGINS: dict[str, tuple[float, float]] = {
    "right_eyeball": (0.75, 0.75),
    "left_eyeball": (0.75, 0.50),
    "mouth_cavity": (0.75, 0.25),
    "teeth": (0.75, 0.00),
}
ALBEDO_COMPONENT_NAMES: tuple[str, ...] = (
    "brightness", "skin_redness", "skin_olive", "lip_colour", "cheek_flush", "iris_colour",
    "blotches_1", "blotches_2", "blotches_3", "blotches_4",
)
_SCLERA_DEFAULT = np.array([0.85, 0.82, 0.78])


def lip_texture_points(photo_points: np.ndarray, pull: float = 0.35) -> np.ndarray:
    """Photo positions of the skin's vertices with the inner lip contours pulled towards the outer ones.

    In the photo the lips are parted and MediaPipe's inner contours sit on the
    teeth; once the mouth is closed, lip triangles must not show teeth, so the
    texture source of each inner-lip point moves ``pull`` of the way to its
    outer-contour partner.

    Args:
        photo_points: (468, 2) photo positions of MediaPipe's points.
    """
    adjusted = photo_points.copy()
    for inner, outer in ((UPPER_LIP_INNER, UPPER_LIP_OUTER), (LOWER_LIP_INNER, LOWER_LIP_OUTER)):
        inner, outer = list(inner), list(outer)
        adjusted[inner] = photo_points[inner] + pull * (photo_points[outer] - photo_points[inner])
    return adjusted


def texel_uv(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(size, size) u and v at texel centres; row 0 is the top (v near 1)."""
    centers = (np.arange(size) + 0.5) / size
    u, v = np.meshgrid(centers, 1.0 - centers)
    return u, v


def patch_to_atlas(name: str, patch_uv: np.ndarray, size: int) -> np.ndarray:
    """(n, 2) patch coordinates in [0, 1]^2 -> atlas UV, inset by 1.5 texels so that sampling never bleeds."""
    u0, v0 = PATCH_ORIGINS[name]
    margin = 1.5 / size
    return np.array([u0, v0]) + margin + patch_uv * (PATCH_SIZE - 2.0 * margin)


def patch_texels(name: str, size: int) -> tuple[slice, slice, np.ndarray, np.ndarray]:
    """The atlas texels of a patch: row and column slices and their patch coordinates (pu, pv), v up.

    Coordinates follow :func:`patch_to_atlas` (so they run slightly outside
    [0, 1] in the 1.5-texel margin, which painters extend smoothly).
    """
    u0, v0 = PATCH_ORIGINS[name]
    patch = int(round(PATCH_SIZE * size))
    row0, col0 = int(round((1.0 - v0 - PATCH_SIZE) * size)), int(round(u0 * size))
    u, v = texel_uv(size)
    rows, cols = slice(row0, row0 + patch), slice(col0, col0 + patch)
    margin = 1.5 / size
    pu = (u[rows, cols] - u0 - margin) / (PATCH_SIZE - 2.0 * margin)
    pv = (v[rows, cols] - v0 - margin) / (PATCH_SIZE - 2.0 * margin)
    return rows, cols, pu, pv


def sample_image(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear colour of ``image`` (H, W, C) at continuous pixel positions (pixel i spans [i, i + 1))."""
    coordinates = np.stack([np.ravel(y) - 0.5, np.ravel(x) - 0.5])
    channels = [map_coordinates(image[..., c], coordinates, order=1, mode="nearest") for c in range(image.shape[2])]
    return np.stack(channels, axis=-1).reshape(*np.shape(x), image.shape[2])


@dataclass(frozen=True)
class PhotoWindow:
    """The photo region mapped onto the atlas's skin area: pixel box ``(x0, y0, x1, y1)``."""

    box: tuple[float, float, float, float]

    @classmethod
    def around(cls, photo_points: np.ndarray, padding: float = 0.04) -> PhotoWindow:
        x0, y0 = photo_points.min(axis=0)
        x1, y1 = photo_points.max(axis=0)
        width, height = (x1 - x0) * (1 + 2 * padding), (y1 - y0) * (1 + 2 * padding)
        height = max(height, width / FACE_RECT_WIDTH)
        width = height * FACE_RECT_WIDTH
        cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
        return cls(box=(cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2))

    def to_uv(self, photo_points: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        u = (photo_points[:, 0] - x0) / (x1 - x0) * FACE_RECT_WIDTH
        v = 1.0 - (photo_points[:, 1] - y0) / (y1 - y0)
        return np.stack([u, v], axis=1)

    def to_photo(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x0, y0, x1, y1 = self.box
        return x0 + u / FACE_RECT_WIDTH * (x1 - x0), y0 + (1.0 - v) * (y1 - y0)


def rasterize_uv(uvs: np.ndarray, faces: np.ndarray, values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate per-vertex ``values`` (V, C) over triangles laid out in UV space.

    Returns:
        (size, size, C) image and (size, size) bool coverage; row 0 is the top.
    """
    image = np.zeros((size, size, values.shape[1]))
    covered = np.zeros((size, size), dtype=bool)
    pixels = np.stack([uvs[:, 0] * size, (1.0 - uvs[:, 1]) * size], axis=1)  # continuous (x, y)
    for triangle in faces:
        corners = pixels[triangle]
        x_lo, y_lo = np.floor(corners.min(axis=0)).astype(int)
        x_hi, y_hi = np.ceil(corners.max(axis=0)).astype(int)
        x_lo, y_lo = max(x_lo, 0), max(y_lo, 0)
        x_hi, y_hi = min(x_hi, size), min(y_hi, size)
        if x_lo >= x_hi or y_lo >= y_hi:
            continue
        xs, ys = np.meshgrid(np.arange(x_lo, x_hi) + 0.5, np.arange(y_lo, y_hi) + 0.5)
        a, b, c = corners
        denominator = (b[1] - c[1]) * (a[0] - c[0]) + (c[0] - b[0]) * (a[1] - c[1])
        if abs(denominator) < 1e-12:
            continue
        w0 = ((b[1] - c[1]) * (xs - c[0]) + (c[0] - b[0]) * (ys - c[1])) / denominator
        w1 = ((c[1] - a[1]) * (xs - c[0]) + (a[0] - c[0]) * (ys - c[1])) / denominator
        w2 = 1.0 - w0 - w1
        inside = (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
        if not inside.any():
            continue
        interpolated = w0[..., None] * values[triangle[0]] + w1[..., None] * values[triangle[1]] \
            + w2[..., None] * values[triangle[2]]
        rows, cols = np.nonzero(inside)
        image[rows + y_lo, cols + x_lo] = interpolated[rows, cols]
        covered[rows + y_lo, cols + x_lo] = True
    return image, covered


@dataclass(frozen=True)
class EyePhoto:
    """What the photo shows of one eye: lid polygon and iris circle (photo pixels), in the unsymmetrised frame.

    Attributes:
        lid_polygon: (16, 2) photo positions of the lid margin.
        iris_center: (2,) photo position of the iris centre.
        iris_radius_px: iris radius in photo pixels.
        model_shift: (3,) added to a symmetrised-model point before mapping it
            into the photo (undoes the symmetrisation at this eye).
    """

    lid_polygon: np.ndarray
    iris_center: np.ndarray
    iris_radius_px: float
    model_shift: np.ndarray


def paint_eyeball(image: np.ndarray, aligned: AlignedFace, eye: EyePhoto, shape: EyeballShape,
                  pu: np.ndarray, pv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eyeball colours (RGB in [0, 1]) and iris mask ([0, 1]) at patch coordinates ``pu``, ``pv`` (n, n)."""
    size = pu.shape[0]
    radius = np.hypot(pu - 0.5, pv - 0.5) / 0.5
    polar = np.clip(radius, 0.0, 1.0) * EYEBALL_POLAR_EXTENT
    azimuth = np.arctan2(pv - 0.5, pu - 0.5)
    points = shape.point(polar, azimuth).reshape(-1, 3) + eye.model_shift
    photo = aligned.to_photo(points)
    photo_colours = sample_image(image.astype(np.float64) / 255.0, photo[:, 0], photo[:, 1]).reshape(size, size, 3)

    centroid = eye.lid_polygon.mean(axis=0)
    shrunk = centroid + (eye.lid_polygon - centroid) * 0.9
    visible = PolygonPath(shrunk).contains_points(photo).reshape(size, size) & (polar < np.pi / 2)
    iris_distance = np.linalg.norm(photo - eye.iris_center, axis=1).reshape(size, size) / eye.iris_radius_px
    iris_pixels = photo_colours[visible & (iris_distance < 0.8)]
    sclera_pixels = photo_colours[visible & (iris_distance > 1.25)]
    iris_colour = np.median(iris_pixels, axis=0) if len(iris_pixels) >= 4 else np.array([0.25, 0.2, 0.15])
    sclera_colour = np.median(sclera_pixels, axis=0) if len(sclera_pixels) >= 4 else _SCLERA_DEFAULT

    # synthetic eyeball: sclera, iris darkening towards the limbus, dark pupil
    iris = np.clip(1.0 - iris_distance, 0.0, 1.0)
    iris_mask = np.clip((1.05 - iris_distance) / 0.1, 0.0, 1.0) * (polar < np.pi / 2)
    synthetic = sclera_colour * (1.0 - 0.25 * (polar / EYEBALL_POLAR_EXTENT))[..., None]
    iris_shade = iris_colour * (0.7 + 0.3 * iris)[..., None]
    synthetic = synthetic * (1 - iris_mask[..., None]) + iris_shade * iris_mask[..., None]
    pupil = np.clip((0.42 - iris_distance) / 0.06, 0.0, 1.0)[..., None]
    synthetic = synthetic * (1 - pupil) + 0.04 * pupil
    blend = gaussian_filter(visible.astype(np.float64), 1.0)[..., None]
    return np.clip(blend * photo_colours + (1 - blend) * synthetic, 0.0, 1.0), iris_mask


def paint_mouth_cavity(pu: np.ndarray, pv: np.ndarray) -> np.ndarray:
    """Dark red bowl, deepest at the centre, with a tongue in the lower half (RGB at patch coordinates)."""
    radius = np.clip(np.hypot(pu - 0.5, pv - 0.5) / 0.5, 0.0, 1.0)
    back, rim = np.array([0.10, 0.03, 0.03]), np.array([0.42, 0.16, 0.16])
    colour = back + (rim - back) * (radius**1.5)[..., None]
    tongue = np.clip((1.0 - np.hypot((pu - 0.5) / 0.3, (pv - 0.28) / 0.17)) / 0.15, 0.0, 1.0)[..., None]
    return colour * (1 - tongue) + np.array([0.55, 0.24, 0.24]) * tongue


def paint_teeth(pu: np.ndarray, pv: np.ndarray, half_width_mm: float) -> np.ndarray:
    """Upper teeth in the top half, lower teeth in the bottom half, gums at the outer edges (RGB)."""
    ivory, gum, gap = np.array([0.88, 0.85, 0.76]), np.array([0.72, 0.42, 0.42]), np.array([0.50, 0.46, 0.40])
    millimetres = np.abs(pu - 0.5) * 2.0 * half_width_mm
    colour = np.empty((*pu.shape, 3))
    for upper in (True, False):
        rows = pv >= 0.5 if upper else pv < 0.5
        widths = (8.5, 6.5, 7.5, 7.0, 7.0) if upper else (5.5, 6.0, 7.0, 7.0, 7.0)
        edges = np.cumsum((0.0,) + widths)
        gap_distance = np.abs(millimetres[..., None] - edges[None, None, 1:]).min(axis=-1)
        gap_distance = np.minimum(gap_distance, millimetres)  # between the central incisors
        separator = np.exp(-0.5 * (gap_distance / 0.35) ** 2)[..., None]
        tooth = ivory * (1 - 0.6 * separator) + gap * 0.6 * separator
        gum_band = (pv > 0.87) if upper else (pv < 0.13)
        depth_shade = (1.0 - 0.45 * np.abs(2.0 * pu - 1.0) ** 2)[..., None]
        value = np.where(gum_band[..., None], gum, tooth) * depth_shade
        colour[rows] = value[rows]
    return colour


def random_blotches(rng: np.random.Generator, size: int, count: int = 4) -> np.ndarray:
    """(size, size, 3) smooth random colour variation (unit-free, up to about 0.03)."""
    u, v = texel_uv(size)
    field = np.zeros((size, size, 3))
    for _ in range(count):
        center = rng.uniform([0.1, 0.1], [FACE_RECT_WIDTH - 0.1, 0.9])
        sigma = rng.uniform(0.05, 0.15)
        colour = rng.normal(size=3)
        colour *= 0.03 / np.linalg.norm(colour)
        field += np.exp(-0.5 * ((u - center[0]) ** 2 + (v - center[1]) ** 2) / sigma**2)[..., None] * colour
    return field
