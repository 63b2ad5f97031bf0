"""Demo face model, step 4: skinning weights, joints and the blend-shape fields.

All fields are smooth functions on the skin, in metres:

* jaw weights: harmonic on the skin (cotangent Laplacian) between the lower lip
  and jaw outline (1) and the upper lip, nose, eyes and upper outline (0);
  the rest of the skin belongs to the neck joint.
* lid sides: harmonic, 1 on the upper lids and brows, 0 on the lower lids and
  cheeks; masks lid motions to the upper or lower lid.
* expression components: one per action unit, each a sum of *handles*: a
  Gaussian of the distance to a set of MediaPipe points (taken with their
  mirror partners, so every component is symmetric) times a displacement
  ``(lateral, up, forward)`` in millimetres, lateral meaning away from the
  midline (smoothly zero on it), optionally masked to the upper/lower lip or
  lid. The displacement at coefficient 1 is the AU at intensity
  :data:`AU_INTENSITY_PER_UNIT`.
* identity components: a dozen named smooth fields (face width, lower-face
  length, nose size, ...) and seeded random smooth symmetric fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from augane.demo.face_model_mesh import (
    LEFT_EYE_LOWER,
    LEFT_EYE_UPPER,
    LOWER_JAW_OUTLINE,
    LOWER_LIP_INNER,
    LOWER_LIP_OUTER,
    NOSE,
    RIGHT_BROW_INNER,
    RIGHT_BROW_MIDDLE,
    RIGHT_BROW_OUTER,
    RIGHT_EYE_LOWER,
    RIGHT_EYE_UPPER,
    UPPER_LIP_INNER,
    UPPER_LIP_OUTER,
    UPPER_OUTLINE,
    cotangent_laplacian,
    harmonic_field,
)

#: AU intensity (0-5 scale) that an expression coefficient of 1 stands for.
AU_INTENSITY_PER_UNIT = 2.5
#: Width (mm) over which "lateral" displacements fade to zero across the midline.
MIDLINE_FADE_MM = 3.0


@dataclass(frozen=True)
class Handle:
    """A smooth displacement around a set of MediaPipe points.

    Attributes:
        anchors: MediaPipe indices (one side and/or the midline; mirror
            partners are added).
        offset: (lateral, up, forward) displacement in mm at the anchors.
        sigma: Gaussian fall-off with the distance to the nearest anchor, mm.
        mask: None, "upper_mouth", "lower_mouth", "upper_lid" or "lower_lid".
    """

    anchors: tuple[int, ...]
    offset: tuple[float, float, float]
    sigma: float
    mask: str | None = None


_LIP_UPPER_RIGHT = (185, 40, 39, 37, 0)
_LIP_LOWER_RIGHT = (146, 91, 181, 84, 17)
_LIP_UPPER_INNER_RIGHT = (191, 80, 81, 82, 13)
_LIP_LOWER_INNER_RIGHT = (95, 88, 178, 87, 14)
_CORNERS = (61, 78)

#: The expression components, in order: AU number -> handles. Directions follow FACS.
AU_HANDLES: dict[int, tuple[Handle, ...]] = {
    1: (  # inner brow raiser: inner brows up, medial forehead up
        Handle(RIGHT_BROW_INNER, (0.0, 5.0, 0.5), 9.0),
        Handle((9, 151, 108), (0.0, 2.5, 0.0), 12.0),
    ),
    2: (  # outer brow raiser: lateral brows up
        Handle(RIGHT_BROW_OUTER, (0.0, 5.0, 0.0), 9.0),
        Handle(RIGHT_BROW_MIDDLE, (0.0, 2.5, 0.0), 8.0),
    ),
    4: (  # brow lowerer: brows down and drawn together, glabella bunched forward
        Handle((55, 107), (-2.5, -3.5, 1.0), 8.0),
        Handle((65, 66), (-1.5, -3.0, 0.5), 8.0),
        Handle((105, 52, 63, 53), (0.0, -2.0, 0.0), 9.0),
        Handle((9, 8), (0.0, -1.2, 0.8), 7.0),
    ),
    5: (  # upper lid raiser: upper lid margin up, sliding back over the eyeball
        Handle(RIGHT_EYE_UPPER, (0.0, 2.8, -0.8), 3.5, "upper_lid"),
    ),
    6: (  # cheek raiser: infraorbital cheek up and forward, lower lid pushed up, crow's feet
        Handle((118, 119, 101, 117, 50), (0.0, 2.8, 1.2), 8.0, "lower_lid"),
        Handle(RIGHT_EYE_LOWER, (0.0, 1.0, 0.2), 3.0, "lower_lid"),
        Handle((226, 130), (-0.8, 0.8, 0.0), 5.0),
        Handle((70, 46), (0.0, -0.8, 0.0), 7.0),
    ),
    7: (  # lid tightener: lower lid raised and straightened, upper lid slightly down
        Handle(RIGHT_EYE_LOWER, (0.0, 1.6, 0.3), 2.5, "lower_lid"),
        Handle(RIGHT_EYE_UPPER, (0.0, -0.7, 0.2), 2.5, "upper_lid"),
        Handle((33,), (-0.4, 0.0, 0.0), 3.0),
    ),
    9: (  # nose wrinkler: nose sides and alae up, inner brows down, upper lip slightly up
        Handle((122, 196, 3, 236, 174, 188), (-0.6, 2.0, 0.4), 5.0),
        Handle((198, 131, 209, 49, 48, 129, 64, 102), (0.0, 2.2, 0.2), 5.0),
        Handle((55, 107, 193), (-1.0, -1.5, 0.0), 6.0),
        Handle((0, 37, 39), (0.0, 1.2, 0.3), 5.0, "upper_mouth"),
    ),
    10: (  # upper lip raiser: upper lip up and everted, nasolabial region up
        Handle(_LIP_UPPER_RIGHT + _LIP_UPPER_INNER_RIGHT, (0.0, 2.8, 1.0), 5.0, "upper_mouth"),
        Handle((206, 203, 36), (0.0, 1.5, 0.4), 7.0),
        Handle((129, 98, 64), (0.0, 0.8, 0.0), 4.0),
    ),
    12: (  # lip corner puller: corners up, out and back along the zygomatic line, cheeks bulge
        Handle(_CORNERS, (4.5, 3.5, -2.5), 7.0),
        Handle((205, 50, 36, 206), (1.0, 1.8, 1.0), 9.0),
        Handle((40, 91, 80, 88), (1.5, 1.0, -0.5), 5.0),
    ),
    15: (  # lip corner depressor: corners down, lateral lower lip down
        Handle(_CORNERS, (0.5, -3.2, -0.3), 6.0),
        Handle((91, 146, 88, 95), (0.0, -1.5, 0.0), 5.0, "lower_mouth"),
    ),
    17: (  # chin raiser: chin boss up and forward, lower lip pushed up and out
        Handle((199, 200, 175, 18), (0.0, 2.6, 1.6), 9.0, "lower_mouth"),
        Handle((17, 84, 14, 87, 181, 178), (0.0, 1.8, 1.8), 4.0, "lower_mouth"),
    ),
    18: (  # lip pucker: lips drawn towards the centre and pushed forward
        Handle(_CORNERS, (-5.0, 0.0, 3.0), 6.0),
        Handle((40, 91, 39, 181, 80, 88, 81, 178), (-2.5, 0.0, 3.0), 4.0),
        Handle((0, 17, 13, 14, 37, 84, 82, 87), (0.0, 0.0, 3.5), 5.0),
    ),
    20: (  # lip stretcher: corners pulled laterally, lips flattened
        Handle(_CORNERS, (5.0, -0.8, -1.0), 7.0),
        Handle((91, 146, 88, 95), (2.0, -0.5, -0.3), 6.0, "lower_mouth"),
    ),
    23: (  # lip tightener: red of the lips narrowed (vermilion borders move in), mouth slightly narrower
        Handle(_LIP_UPPER_RIGHT, (0.0, -1.4, -0.4), 3.0, "upper_mouth"),
        Handle(_LIP_LOWER_RIGHT, (0.0, 1.4, -0.4), 3.0, "lower_mouth"),
        Handle(_CORNERS, (-1.2, 0.0, 0.0), 4.0),
    ),
    25: (  # lips part: lips separate without a jaw drop, mostly the lower lip
        Handle(_LIP_UPPER_INNER_RIGHT, (0.0, 1.0, 0.0), 4.0, "upper_mouth"),
        Handle(_LIP_LOWER_INNER_RIGHT + _LIP_LOWER_RIGHT, (0.0, -3.2, 0.3), 6.0, "lower_mouth"),
    ),
}

#: AU of each expression component, in the order of the expression block (columns 300 + k).
DEMO_EXPRESSION_AUS: tuple[int, ...] = tuple(AU_HANDLES)


def _pairs(indices: tuple[int, ...], mirror: np.ndarray) -> np.ndarray:
    return np.unique(np.concatenate([np.asarray(indices), mirror[np.asarray(indices)]]))


@dataclass(frozen=True)
class SkinFields:
    """Scalar fields on the skin vertices: ``jaw`` and ``upper_lid`` (V,) in [0, 1]."""

    jaw: np.ndarray
    upper_lid: np.ndarray

    def mask(self, name: str | None) -> np.ndarray | float:
        if name is None:
            return 1.0
        return {
            "upper_mouth": 1.0 - self.jaw,
            "lower_mouth": self.jaw,
            "upper_lid": self.upper_lid,
            "lower_lid": 1.0 - self.upper_lid,
        }[name]


def skin_fields(vertices: np.ndarray, faces: np.ndarray, mirror: np.ndarray) -> SkinFields:
    """Harmonic jaw weights and lid sides on the skin (see the module docstring)."""
    laplacian = cotangent_laplacian(vertices, faces)
    jaw_fixed: dict[int, float] = {}
    for index in _pairs(LOWER_LIP_OUTER + LOWER_LIP_INNER + LOWER_JAW_OUTLINE, mirror):
        jaw_fixed[int(index)] = 1.0
    upper = UPPER_LIP_OUTER + UPPER_LIP_INNER + NOSE + UPPER_OUTLINE + RIGHT_EYE_UPPER + RIGHT_EYE_LOWER
    for index in _pairs(upper + RIGHT_BROW_INNER + RIGHT_BROW_OUTER, mirror):
        jaw_fixed[int(index)] = 0.0
    jaw = np.clip(harmonic_field(laplacian, jaw_fixed), 0.0, 1.0)

    lid_fixed: dict[int, float] = {}
    for index in RIGHT_EYE_UPPER + LEFT_EYE_UPPER + tuple(_pairs(RIGHT_BROW_INNER + RIGHT_BROW_OUTER, mirror)):
        lid_fixed[int(index)] = 1.0
    for index in RIGHT_EYE_LOWER + LEFT_EYE_LOWER + tuple(_pairs((118, 119, 101, 117, 50, 128, 114), mirror)):
        lid_fixed[int(index)] = 0.0
    upper_lid = np.clip(harmonic_field(laplacian, lid_fixed), 0.0, 1.0)
    return SkinFields(jaw=jaw, upper_lid=upper_lid)


def handle_field(handle: Handle, vertices: np.ndarray, fields: SkinFields, mirror: np.ndarray) -> np.ndarray:
    """(V, 3) displacement (metres) of one handle on the skin vertices."""
    anchors = vertices[_pairs(handle.anchors, mirror)]
    distance_mm = 1000.0 * np.linalg.norm(vertices[:, None] - anchors[None], axis=2).min(axis=1)
    weight = np.exp(-0.5 * (distance_mm / handle.sigma) ** 2) * fields.mask(handle.mask)
    lateral, up, forward = handle.offset
    side = np.tanh(1000.0 * vertices[:, 0] / MIDLINE_FADE_MM)
    displacement = np.stack([lateral * side, np.full_like(side, up), np.full_like(side, forward)], axis=1)
    return 1e-3 * weight[:, None] * displacement


def expression_components(vertices: np.ndarray, fields: SkinFields, mirror: np.ndarray) -> np.ndarray:
    """(V, 3, len(DEMO_EXPRESSION_AUS)) skin displacement per unit coefficient of each AU component."""
    return np.stack(
        [sum(handle_field(h, vertices, fields, mirror) for h in AU_HANDLES[au]) for au in DEMO_EXPRESSION_AUS],
        axis=2,
    )


# --- identity ------------------------------------------------------------------------

#: Names of the identity components, in the order of the shape block (columns 0..).
NAMED_SHAPE_COMPONENTS: tuple[str, ...] = (
    "face_width", "lower_face_length", "forehead_height", "nose_size", "nose_width", "jaw_width",
    "eye_spacing", "chin_prominence", "cheek_fullness", "brow_ridge", "mouth_width", "face_depth",
)
NUM_RANDOM_SHAPE_COMPONENTS = 8


def gaussian_falloff(points: np.ndarray, centers: np.ndarray, sigma_m: float) -> np.ndarray:
    """(N,) Gaussian of the distance from each point to the nearest of (K, 3) ``centers``."""
    distance = np.linalg.norm(points[:, None] - centers[None], axis=2).min(axis=1)
    return np.exp(-0.5 * (distance / sigma_m) ** 2)


def _softplus(value: np.ndarray, width: float) -> np.ndarray:
    return width * np.logaddexp(0.0, value / width)


@dataclass(frozen=True)
class FaceLandmarks:
    """Named model-space points the identity fields are anchored on (from the neutral skin)."""

    eyes_y: float
    brows_y: float
    nose_tip: np.ndarray
    nose_base: np.ndarray
    alae: np.ndarray
    eye_centers: np.ndarray
    chin: np.ndarray
    cheeks: np.ndarray
    brows: np.ndarray
    mouth_corners: np.ndarray
    mean_z: float

    @classmethod
    def from_skin(cls, skin: np.ndarray, mirror: np.ndarray) -> FaceLandmarks:
        def both(indices: tuple[int, ...]) -> np.ndarray:
            return skin[_pairs(indices, mirror)]

        eyes = np.stack([skin[list(RIGHT_EYE_UPPER + RIGHT_EYE_LOWER)].mean(0),
                         skin[list(LEFT_EYE_UPPER + LEFT_EYE_LOWER)].mean(0)])
        return cls(
            eyes_y=float(eyes[:, 1].mean()),
            brows_y=float(both(RIGHT_BROW_INNER + RIGHT_BROW_OUTER)[:, 1].mean()),
            nose_tip=skin[4],
            nose_base=np.array([0.0, skin[2, 1] + 0.012, skin[[129, 358], 2].mean()]),
            alae=both((129, 98, 64)),
            eye_centers=eyes,
            chin=skin[[199, 175]],
            cheeks=both((50, 205)),
            brows=both(RIGHT_BROW_INNER + RIGHT_BROW_OUTER + RIGHT_BROW_MIDDLE),
            mouth_corners=both((61,)),
            mean_z=float(skin[:, 2].mean()),
        )


def _lateral(points: np.ndarray) -> np.ndarray:
    return np.tanh(1000.0 * points[:, 0] / MIDLINE_FADE_MM)


def named_shape_field(name: str, points: np.ndarray, marks: FaceLandmarks) -> np.ndarray:
    """(N, 3) displacement (metres) of the identity component ``name`` at unit coefficient."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    out = np.zeros_like(points)
    if name == "face_width":
        out[:, 0] = 0.05 * x
    elif name == "lower_face_length":
        out[:, 1] = -0.06 * _softplus(marks.eyes_y - y, 0.005)
    elif name == "forehead_height":
        out[:, 1] = 0.08 * _softplus(y - marks.brows_y, 0.005)
    elif name == "nose_size":
        out = 0.10 * (points - marks.nose_base) * gaussian_falloff(points, marks.nose_tip[None], 0.016)[:, None]
    elif name == "nose_width":
        out[:, 0] = 0.002 * _lateral(points) * gaussian_falloff(points, marks.alae, 0.007)
    elif name == "jaw_width":
        lower = 1.0 / (1.0 + np.exp((y - (marks.eyes_y - 0.06)) / 0.01))
        out[:, 0] = 0.07 * x * lower
    elif name == "eye_spacing":
        out[:, 0] = 0.002 * _lateral(points) * gaussian_falloff(points, marks.eye_centers, 0.014)
    elif name == "chin_prominence":
        out += np.array([0.0, -0.001, 0.003]) * gaussian_falloff(points, marks.chin, 0.014)[:, None]
    elif name == "cheek_fullness":
        weight = gaussian_falloff(points, marks.cheeks, 0.014)
        out[:, 0] = 0.0015 * _lateral(points) * weight
        out[:, 2] = 0.0025 * weight
    elif name == "brow_ridge":
        out[:, 2] = 0.0025 * gaussian_falloff(points, marks.brows, 0.010)
    elif name == "mouth_width":
        out[:, 0] = 0.002 * _lateral(points) * gaussian_falloff(points, marks.mouth_corners, 0.009)
    elif name == "face_depth":
        out[:, 2] = 0.06 * (z - marks.mean_z)
    else:
        raise KeyError(f"unknown identity component {name!r}")
    return out


@dataclass(frozen=True)
class RandomShapeField:
    """A seeded smooth symmetric identity field: Gaussian bumps (and their mirror images)."""

    centers: np.ndarray  # (K, 3)
    directions: np.ndarray  # (K, 3) (lateral, up, forward) in metres
    sigma: float

    @classmethod
    def draw(cls, rng: np.random.Generator, skin: np.ndarray, bumps: int = 3) -> RandomShapeField:
        centers = skin[rng.choice(len(skin), bumps, replace=False)]
        directions = rng.normal(size=(bumps, 3))
        directions *= 0.0015 / np.linalg.norm(directions, axis=1, keepdims=True)
        return cls(centers=centers, directions=directions, sigma=float(rng.uniform(0.012, 0.025)))

    def __call__(self, points: np.ndarray) -> np.ndarray:
        out = np.zeros_like(points)
        for center, (lateral, up, forward) in zip(self.centers, self.directions):
            mirrored = center * np.array([-1.0, 1.0, 1.0])
            weight = gaussian_falloff(points, np.stack([center, mirrored]), self.sigma)
            out += weight[:, None] * np.stack(
                [lateral * _lateral(points), np.full(len(points), up), np.full(len(points), forward)], axis=1
            )
        return out


# --- joints ---------------------------------------------------------------------------


def affine_regressor(anchors: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Smallest weights ``w`` with ``sum(w) == 1`` and ``w @ anchors == target``.

    A joint regressed with these weights sits exactly at ``target`` on the
    template and moves with its anchor vertices under identity changes.

    Args:
        anchors: (n, 3) anchor vertices.
        target: (3,) joint position.
    Returns:
        (n,) weights.
    """
    system = np.concatenate([anchors.T, np.ones((1, len(anchors)))])  # (4, n)
    goal = np.concatenate([target, [1.0]])
    return system.T @ np.linalg.solve(system @ system.T, goal)
