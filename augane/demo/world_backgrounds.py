"""Backgrounds behind the demo world's faces: smooth colour noise, gradients, and crops of bundled photos.

The photos are scikit-image's bundled sample images without people (coffee,
rocket, textures, microscopy, a star field, ...); none is downloaded. The
portraits (astronaut, camera man) are left out so that no second face
appears behind the rendered one. Grey photos get a random tint.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

#: scikit-image sample images used as background photos (all bundled, none shows a face).
BACKGROUND_PHOTOS: tuple[str, ...] = (
    "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "brick", "grass", "gravel",
    "coins", "moon", "page", "text", "clock", "colorwheel",
)

BACKGROUND_KINDS: tuple[str, ...] = ("noise", "gradient", "photo")


@lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] of a bundled scikit-image sample."""
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = image[..., :3].astype(np.float32)
    return image / 255.0 if image.max() > 1.0 else image


def noise_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth multi-scale colour noise around a random colour, (size, size, 3) float32 in [0, 1]."""
    base = rng.uniform(0.1, 0.9, 3)
    image = np.zeros((size, size, 3), np.float32)
    for cells, amplitude in ((4, 0.25), (12, 0.12), (size // 4, 0.05)):
        field = rng.normal(0.0, amplitude, (cells, cells, 3)).astype(np.float32)
        image += cv2.resize(field, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(image + base.astype(np.float32), 0.0, 1.0)


def gradient_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A linear gradient between two random colours in a random direction, with faint noise."""
    start, end = rng.uniform(0.05, 0.95, 3), rng.uniform(0.05, 0.95, 3)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1) - 0.5
    ramp = np.clip(x * np.cos(angle) + y * np.sin(angle) + 0.5, 0.0, 1.0)[..., None]
    image = start * (1.0 - ramp) + end * ramp + rng.normal(0.0, 0.01, (size, size, 3))
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def photo_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random square crop of a bundled photo (random side, flip, tint for grey photos), resized to ``size``."""
    name = BACKGROUND_PHOTOS[int(rng.integers(len(BACKGROUND_PHOTOS)))]
    photo = _photo(name)
    height, width = photo.shape[:2]
    side = int(rng.uniform(0.4, 1.0) * min(height, width))
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    crop = photo[top:top + side, left:left + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    image = cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=interpolation)
    if np.allclose(image[..., 0], image[..., 1]) and np.allclose(image[..., 1], image[..., 2]):
        image = image * rng.uniform(0.6, 1.0, 3).astype(np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def sample_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """One background of a random kind (noise, gradient or photo, equally likely), (size, size, 3) float32."""
    kind = BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))]
    return {"noise": noise_background, "gradient": gradient_background, "photo": photo_background}[kind](rng, size)
