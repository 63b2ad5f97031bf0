"""Settings of the synthetic demo world (config section ``demo.world``), as frozen dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from augane.errors import ConfigError

#: The parts of the world, each generated (and seeded) on its own.
WORLD_PARTS: tuple[str, ...] = ("train", "heldout", "disfa")


@dataclass(frozen=True)
class SplitSize:
    """An image split: ``identities`` distinct faces, ``images_per_identity`` images of each."""

    identities: int
    images_per_identity: int

    @property
    def images(self) -> int:
        return self.identities * self.images_per_identity


@dataclass(frozen=True)
class FaceVariation:
    """How faces, poses, lights and cameras vary (see :mod:`augane.demo.world_sampling`).

    Attributes:
        shape_std, tex_std: standard deviation of the identity and albedo coefficients.
        yaw_deg, pitch_deg, roll_deg: head rotation limits; angles are normal with
            half the limit as standard deviation, clipped at the limit.
        scale: range of the camera scale ``s`` (face about 0.13 m wide: 9 fills ~60 % of the image).
        translation: camera shift range in metres (``tx, ty`` uniform in +-translation).
        ambient: range of the ambient SH term (shading units).
        directional: range of the directional (first-order) SH strength.
        max_light_angle_deg: largest angle between the light and the frontal direction.
    """

    shape_std: float = 1.0
    tex_std: float = 1.0
    yaw_deg: float = 30.0
    pitch_deg: float = 15.0
    roll_deg: float = 10.0
    scale: tuple[float, float] = (7.0, 9.5)
    translation: float = 0.012
    ambient: tuple[float, float] = (0.55, 0.85)
    directional: tuple[float, float] = (0.1, 0.45)
    max_light_angle_deg: float = 60.0


@dataclass(frozen=True)
class AuSampling:
    """How AU activations are drawn for still images (see :func:`augane.demo.world_sampling.sample_aus`).

    Attributes:
        neutral_fraction: share of images with no AU at all.
        prototype_fraction: share of the rest showing a prototypical combination.
        sparse_probability: chance of each AU being active on its own (added to prototypes too).
    """

    neutral_fraction: float = 0.15
    prototype_fraction: float = 0.6
    sparse_probability: float = 0.1


@dataclass(frozen=True)
class DisfaSettings:
    """The DISFA-layout part: ``subjects`` videos of ``frames`` frames at ``fps``."""

    subjects: int = 4
    frames: int = 200
    fps: float = 25.0


@dataclass(frozen=True)
class WorldSettings:
    """Everything that decides the demo world (deterministic given these).

    Attributes:
        seed: seeds every random draw (each part and sample has its own stream).
        image_size: side of the rendered images and video frames, pixels.
        supersample: renders at this factor and area-averages down (anti-aliasing).
        render_batch: faces rendered per batch.
        jpeg_quality: quality of the written JPEG images.
        train, heldout: the image splits (disjoint identities).
        disfa: the DISFA-layout videos.
        faces: identity, pose, light and camera variation.
        aus: AU sampling of still images.
    """

    seed: int = 0
    image_size: int = 256
    supersample: int = 2
    render_batch: int = 16
    jpeg_quality: int = 92
    train: SplitSize = SplitSize(200, 12)
    heldout: SplitSize = SplitSize(40, 10)
    disfa: DisfaSettings = field(default_factory=DisfaSettings)
    faces: FaceVariation = field(default_factory=FaceVariation)
    aus: AuSampling = field(default_factory=AuSampling)

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> WorldSettings:
        """Settings from the validated ``demo.world`` section (defaults already filled by the schema)."""
        try:
            faces = dict(section.get("faces", {}))
            for key in ("scale", "ambient", "directional"):
                if key in faces:
                    faces[key] = tuple(float(value) for value in faces[key])
            return cls(
                seed=int(section.get("seed", 0)),
                image_size=int(section.get("image_size", 256)),
                supersample=int(section.get("supersample", 2)),
                render_batch=int(section.get("render_batch", 16)),
                jpeg_quality=int(section.get("jpeg_quality", 92)),
                train=SplitSize(**section.get("train", {"identities": 200, "images_per_identity": 12})),
                heldout=SplitSize(**section.get("heldout", {"identities": 40, "images_per_identity": 10})),
                disfa=DisfaSettings(**section.get("disfa", {})),
                faces=FaceVariation(**faces),
                aus=AuSampling(**section.get("aus", {})),
            )
        except TypeError as err:
            raise ConfigError(f"demo.world: {err}") from err

    def split(self, part: str) -> SplitSize:
        """The size of image split ``part`` (``train`` or ``heldout``)."""
        if part not in ("train", "heldout"):
            raise ConfigError(f"demo world image split must be 'train' or 'heldout', got {part!r}")
        return self.train if part == "train" else self.heldout
