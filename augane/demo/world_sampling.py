"""Random draws of the demo world: identities, AU activations, head poses, lights, cameras, AU trajectories.

Every draw takes its own :class:`numpy.random.Generator`, seeded from the
world seed, the part (train, heldout, disfa) and the sample's indices
(:func:`sample_rng`), so a sample does not depend on how samples are batched
or on which other parts are generated.

AU activations (0-5, DISFA's integer scale for still images) are sparse and
co-occur as in real faces: a share of faces is neutral; most others show
one of the prototypical combinations of :data:`AU_PROTOTYPES` (required AUs
at a shared base intensity, optional ones half the time), and any AU may
also appear on its own (:class:`~augane.demo.world_settings.AuSampling`).
Two consistency rules hold everywhere: a dropped jaw (AU26) parts the lips
(AU25 at least as strong), and a pucker (AU18) never coexists with a lip
corner pull or stretch (AU12, AU20).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

from augane.demo.face_model import DEMO_AUS, MAX_AU_INTENSITY
from augane.demo.world_settings import AuSampling, FaceVariation
from augane.render.shading import SH_CONSTANTS

#: Prototypical AU combinations: name -> (required AUs, optional AUs).
AU_PROTOTYPES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "happiness": ((6, 12), (25,)),
    "surprise": ((1, 2, 5), (25, 26)),
    "anger": ((4, 7), (23, 17)),
    "sadness": ((1, 4, 15), (17,)),
    "disgust": ((9, 10), (17, 25)),
    "fear": ((1, 2, 4, 5, 20), (25,)),
}

#: Probabilities of intensities 1..5 for an AU drawn on its own.
SPARSE_INTENSITY_WEIGHTS: tuple[float, ...] = (0.15, 0.25, 0.25, 0.2, 0.15)
#: Probabilities of the base intensity 1..5 of a prototype.
PROTOTYPE_INTENSITY_WEIGHTS: tuple[float, ...] = (0.1, 0.2, 0.25, 0.25, 0.2)

#: Codes of the world's parts in the seed of every draw.
PART_CODES: dict[str, int] = {"train": 1, "heldout": 2, "disfa": 3}

_AU_POSITION = {au: position for position, au in enumerate(DEMO_AUS)}


def sample_rng(seed: int, part: str, *indices: int) -> np.random.Generator:
    """The generator of one draw: seeded by the world seed, the part and the sample's indices."""
    return np.random.default_rng([int(seed), PART_CODES[part], *map(int, indices)])


def apply_au_rules(intensities: np.ndarray) -> np.ndarray:
    """Enforce the consistency rules on (..., len(DEMO_AUS)) intensities (copy returned).

    * AU25 >= AU26 (a dropped jaw parts the lips);
    * AU18 is cleared where AU12 or AU20 is active.
    """
    values = np.array(intensities, dtype=np.float64, copy=True)
    lips, jaw = _AU_POSITION[25], _AU_POSITION[26]
    values[..., lips] = np.maximum(values[..., lips], values[..., jaw])
    pulled = (values[..., _AU_POSITION[12]] > 0) | (values[..., _AU_POSITION[20]] > 0)
    values[..., _AU_POSITION[18]] = np.where(pulled, 0.0, values[..., _AU_POSITION[18]])
    return values


def _draw_intensity(rng: np.random.Generator, weights: tuple[float, ...]) -> int:
    return int(rng.choice(np.arange(1, len(weights) + 1), p=np.asarray(weights) / np.sum(weights)))


def sample_aus(rng: np.random.Generator, settings: AuSampling, allow_neutral: bool = True) -> np.ndarray:
    """One face's AU intensities, (len(DEMO_AUS),) integers 0-5 as float64 in :data:`DEMO_AUS` order."""
    values = np.zeros(len(DEMO_AUS))
    if allow_neutral and rng.random() < settings.neutral_fraction:
        return values
    if rng.random() < settings.prototype_fraction:
        name = sorted(AU_PROTOTYPES)[int(rng.integers(len(AU_PROTOTYPES)))]
        required, optional = AU_PROTOTYPES[name]
        base = _draw_intensity(rng, PROTOTYPE_INTENSITY_WEIGHTS)
        members = list(required) + [au for au in optional if rng.random() < 0.5]
        for au in members:
            values[_AU_POSITION[au]] = float(np.clip(base + round(rng.normal(0.0, 0.7)), 1, MAX_AU_INTENSITY))
    for position in range(len(DEMO_AUS)):
        if values[position] == 0 and rng.random() < settings.sparse_probability:
            values[position] = _draw_intensity(rng, SPARSE_INTENSITY_WEIGHTS)
    if not values.any():
        values[int(rng.integers(len(DEMO_AUS)))] = _draw_intensity(rng, SPARSE_INTENSITY_WEIGHTS)
    return apply_au_rules(values)


def sample_identity(rng: np.random.Generator, variation: FaceVariation, n_shape: int, n_tex: int,
                    shape_size: int = 100, tex_size: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """An identity: (shape_size,) shape and (tex_size,) albedo coefficients, the first ``n_shape`` / ``n_tex`` random."""
    shape = np.zeros(shape_size)
    shape[:n_shape] = rng.normal(0.0, variation.shape_std, n_shape)
    tex = np.zeros(tex_size)
    tex[:n_tex] = rng.normal(0.0, variation.tex_std, n_tex)
    return shape, tex


def _clipped_normal(rng: np.random.Generator, limit: float) -> float:
    return float(np.clip(rng.normal(0.0, limit / 2.0), -limit, limit))


def head_rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """(3,) axis-angle (radians) of a head turned by yaw (about y), then pitch (x), then roll (z), in degrees."""
    return Rotation.from_euler("YXZ", [yaw_deg, pitch_deg, roll_deg], degrees=True).as_rotvec()


def sample_head_angles(rng: np.random.Generator, variation: FaceVariation) -> np.ndarray:
    """(3,) yaw, pitch, roll in degrees: frontal-ish, as in in-the-wild photos."""
    return np.array([_clipped_normal(rng, variation.yaw_deg), _clipped_normal(rng, variation.pitch_deg),
                     _clipped_normal(rng, variation.roll_deg)])


def sample_light(rng: np.random.Generator, variation: FaceVariation) -> np.ndarray:
    """(9, 3) SH coefficients in DECA's layout: tinted ambient, a directional light near the front, weak second order."""
    constants = np.asarray(SH_CONSTANTS)
    tint = 1.0 + rng.normal(0.0, 0.05, 3)
    ambient = rng.uniform(*variation.ambient)
    strength = rng.uniform(*variation.directional)
    polar = math.radians(variation.max_light_angle_deg) * math.sqrt(rng.random())
    azimuth = rng.uniform(0.0, 2.0 * math.pi)
    direction = np.array([math.sin(polar) * math.cos(azimuth), math.sin(polar) * math.sin(azimuth), math.cos(polar)])
    light = np.zeros((9, 3))
    light[0] = ambient * tint / constants[0]
    light[1:4] = strength * direction[:, None] * tint[None] / constants[1:4, None]
    light[4:] = rng.normal(0.0, 0.03, (5, 3)) / constants[4:, None]
    return light


def sample_camera(rng: np.random.Generator, variation: FaceVariation) -> np.ndarray:
    """(3,) DECA camera ``(s, tx, ty)`` for the whole image: scale and framing jitter."""
    return np.array([rng.uniform(*variation.scale), *rng.uniform(-variation.translation, variation.translation, 2)])


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def au_trajectory(rng: np.random.Generator, frames: int, fps: float, settings: AuSampling) -> np.ndarray:
    """Smooth AU intensities over a video, (frames, len(DEMO_AUS)) float64 in [0, 5].

    Episodes follow one another with neutral gaps (0.3-1.5 s): each draws an
    AU combination as :func:`sample_aus` does (never neutral) and plays it
    with a smooth onset (0.3-0.8 s), an apex (0.5-2 s, intensities jittered by
    up to half a step) and an offset (0.3-0.8 s). Overlapping episodes take
    the stronger value per AU.
    """
    values = np.zeros((frames, len(DEMO_AUS)))
    time = np.arange(frames) / fps
    start = rng.uniform(0.0, 1.0)
    while start < frames / fps:
        onset, apex, offset = rng.uniform(0.3, 0.8), rng.uniform(0.5, 2.0), rng.uniform(0.3, 0.8)
        peak = sample_aus(rng, settings, allow_neutral=False)
        peak = np.where(peak > 0, np.clip(peak + rng.uniform(-0.5, 0.5, peak.shape), 0.5, MAX_AU_INTENSITY), 0.0)
        rise = _smoothstep((time - start) / onset)
        fall = 1.0 - _smoothstep((time - start - onset - apex) / offset)
        envelope = np.minimum(rise, fall)
        values = np.maximum(values, envelope[:, None] * peak[None])
        start += onset + apex + offset + rng.uniform(0.3, 1.5)
    return apply_au_rules(values)


def head_motion(rng: np.random.Generator, frames: int, fps: float, variation: FaceVariation,
                amplitude: float = 0.4) -> np.ndarray:
    """Gentle head motion: (frames, 3) yaw, pitch, roll in degrees, a sum of two slow sinusoids per angle
    (0.05-0.3 Hz) around a frontal-ish rest pose, within ``amplitude`` of each limit."""
    time = np.arange(frames) / fps
    rest = sample_head_angles(rng, variation) * 0.5
    limits = np.array([variation.yaw_deg, variation.pitch_deg, variation.roll_deg]) * amplitude
    angles = np.zeros((frames, 3))
    for axis in range(3):
        for _ in range(2):
            frequency, phase = rng.uniform(0.05, 0.3), rng.uniform(0.0, 2.0 * math.pi)
            angles[:, axis] += 0.5 * limits[axis] * np.sin(2.0 * math.pi * frequency * time + phase)
    return rest[None] + angles
