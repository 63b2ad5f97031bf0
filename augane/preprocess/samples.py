"""Real media for the default config before any dataset is brought: two bundled photos and a video made from them.

The photos are the portraits that ship with installed packages
(scikit-image's astronaut, Eileen Collins; matplotlib's Grace Hopper). The
video is a slow zoom into one and a pan across the other, written with
OpenCV, so the video path of the preprocessing stage has something real to
read.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from augane.io.images import write_image
from augane.io.videos import write_video

VIDEO_SIZE = 256
VIDEO_FPS = 12.0


def astronaut() -> np.ndarray:
    """(512, 512, 3) uint8 RGB portrait bundled with scikit-image."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut())


def grace_hopper() -> np.ndarray:
    """(600, 512, 3) uint8 RGB portrait bundled with matplotlib."""
    import matplotlib.cbook
    import matplotlib.image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.ascontiguousarray(matplotlib.image.imread(handle, format="jpg"))


def _window(image: np.ndarray, centre: tuple[float, float], side: float, size: int) -> np.ndarray:
    """The square of ``side`` source pixels around ``centre``, resampled to ``size`` (area filter when shrinking)."""
    scale = size / side
    affine = np.array([[scale, 0.0, size / 2 - scale * centre[0]], [0.0, scale, size / 2 - scale * centre[1]]])
    shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    half = np.array([0.5, 0.5])
    affine[:, 2] += affine[:, :2] @ half - half
    return cv2.warpAffine(image, affine, (size, size), flags=shrink, borderMode=cv2.BORDER_REFLECT)


def pan_zoom_frames(frames_per_photo: int = 24, size: int = VIDEO_SIZE) -> list[np.ndarray]:
    """(size, size, 3) uint8 RGB frames: a slow zoom towards the astronaut's face, then a pan across Grace Hopper's."""
    frames = []
    for t in np.linspace(0.0, 1.0, frames_per_photo):
        centre = (256 - 36 * t, 256 - 96 * t)
        frames.append(_window(astronaut(), centre, 512 - 200 * t, size))
    hopper = grace_hopper()
    for t in np.linspace(0.0, 1.0, frames_per_photo):
        frames.append(_window(hopper, (226 + 60 * t, 230), 420, size))
    return frames


def write_samples(images_dir: str | Path, videos_dir: str | Path) -> list[Path]:
    """Write ``astronaut.png``, ``grace_hopper.jpg`` to ``images_dir`` and ``pan_zoom.mp4`` to ``videos_dir``."""
    images_dir, videos_dir = Path(images_dir), Path(videos_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    videos_dir.mkdir(parents=True, exist_ok=True)
    return [
        write_image(images_dir / "astronaut.png", astronaut()),
        write_image(images_dir / "grace_hopper.jpg", grace_hopper()),
        write_video(videos_dir / "pan_zoom.mp4", pan_zoom_frames(), fps=VIDEO_FPS),
    ]
