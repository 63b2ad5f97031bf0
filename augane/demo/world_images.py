"""The demo world's still images: an image folder and its label table, one split (train or heldout) at a time.

Layout written under ``out_dir``::

    images/<subject>/<k>.jpg     one folder per identity (subject ``train0007``, ``heldout0003``, ...)
    labels.csv                   path (relative to images/), subject, AU<k> (0-5), gt_<name>_<i>
    summary.json                 counts, AU occurrence and settings of the split

``labels.csv`` is what ``datasets.<name>.labels`` points at, so the manifest
carries every column. AU columns cover the AUs the demo face model can show
(:data:`augane.demo.face_model.DEMO_AUS`); the ground-truth columns are
described in :mod:`augane.demo.world_params`. The train and heldout splits
draw their identities from different random streams, so no identity is shared.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from augane.aus import au_label
from augane.demo.face_model import DEMO_AUS, au_parameters
from augane.demo.world_backgrounds import sample_background
from augane.demo.world_params import FaceParameters
from augane.demo.world_render import WorldRenderer, to_uint8
from augane.demo.world_sampling import (
    head_rotation,
    sample_aus,
    sample_camera,
    sample_head_angles,
    sample_identity,
    sample_light,
    sample_rng,
)
from augane.demo.world_settings import WorldSettings
from augane.io.atomic import atomic_path, write_text_atomic
from augane.io.images import write_image

log = logging.getLogger(__name__)

#: Standard deviation of the sensor noise added to every image (in [0, 1] units).
SENSOR_NOISE = 1.5 / 255.0


@dataclass
class ImageDraw:
    """Everything drawn for one still image.

    Attributes:
        subject: identity name (``<part><identity:04d>``).
        path: image path relative to ``images/``.
        aus: (len(DEMO_AUS),) integer intensities.
        params: the face's parameters (batch of one).
        background: (S, S, 3) float32.
        rng: the image's generator (sensor noise is drawn from it after rendering).
    """

    subject: str
    path: str
    aus: np.ndarray
    params: FaceParameters
    background: np.ndarray
    rng: np.random.Generator


def draw_image(settings: WorldSettings, part: str, identity: int, image: int, n_shape: int, n_tex: int) -> ImageDraw:
    """Draw image ``image`` of identity ``identity`` of split ``part`` (independent of every other draw)."""
    shape, tex = sample_identity(sample_rng(settings.seed, part, identity, 0), settings.faces, n_shape, n_tex)
    rng = sample_rng(settings.seed, part, identity, image + 1)
    aus = sample_aus(rng, settings.aus)
    expression, jaw = au_parameters(aus, n_exp=50)
    pose = np.concatenate([head_rotation(*sample_head_angles(rng, settings.faces)), jaw])
    params = FaceParameters(
        shape=shape[None], tex=tex[None], exp=expression[None], pose=pose[None],
        cam=sample_camera(rng, settings.faces)[None], light=sample_light(rng, settings.faces)[None],
    )
    subject = f"{part}{identity:04d}"
    return ImageDraw(subject, f"{subject}/{image:03d}.jpg", aus, params, sample_background(rng, settings.image_size), rng)


def _draws(settings: WorldSettings, part: str, n_shape: int, n_tex: int) -> Iterator[ImageDraw]:
    split = settings.split(part)
    for identity in range(split.identities):
        for image in range(split.images_per_identity):
            yield draw_image(settings, part, identity, image, n_shape, n_tex)


def _batches(draws: Iterator[ImageDraw], size: int) -> Iterator[list[ImageDraw]]:
    batch: list[ImageDraw] = []
    for draw in draws:
        batch.append(draw)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def label_table(draws: list[ImageDraw], landmarks: np.ndarray) -> pd.DataFrame:
    """The label rows of rendered draws: path, subject, AU<k>, gt_<name>_<i> (landmarks (B, 105, 2) pixels)."""
    head = pd.DataFrame({"path": [d.path for d in draws], "subject": [d.subject for d in draws]})
    aus = pd.DataFrame(np.stack([d.aus for d in draws]).astype(np.int64), columns=[au_label(au) for au in DEMO_AUS])
    params = FaceParameters.concatenate([d.params for d in draws])
    return pd.concat([head, aus, params.columns(landmarks)], axis=1)


def summarise(labels: pd.DataFrame, settings: WorldSettings, part: str, seconds: float) -> dict:
    """Counts and AU occurrence (share of images at intensity >= 1 and >= 2) of a split."""
    occurrence = {}
    for au in DEMO_AUS:
        values = labels[au_label(au)]
        occurrence[au_label(au)] = {"active": round(float((values >= 1).mean()), 4),
                                    "intensity_2_plus": round(float((values >= 2).mean()), 4)}
    return {
        "part": part,
        "images": int(len(labels)),
        "identities": int(labels["subject"].nunique()),
        "image_size": settings.image_size,
        "seed": settings.seed,
        "neutral_share": round(float((labels[[au_label(au) for au in DEMO_AUS]].sum(axis=1) == 0).mean()), 4),
        "au_occurrence": occurrence,
        "seconds": round(seconds, 2),
    }


def write_image_split(settings: WorldSettings, part: str, renderer: WorldRenderer, out_dir: str | Path) -> Path:
    """Render split ``part`` (``train`` or ``heldout``) into ``out_dir`` (images/, labels.csv, summary.json).

    The image folder is written under a temporary name and renamed into place.
    """
    out_dir = Path(out_dir)
    split = settings.split(part)
    n_shape, n_tex = renderer.active_shape_components, renderer.active_tex_components
    started = time.perf_counter()
    tables = []
    with atomic_path(out_dir / "images") as folder:
        for batch in _batches(_draws(settings, part, n_shape, n_tex), settings.render_batch):
            params = FaceParameters.concatenate([draw.params for draw in batch])
            rendered = renderer.render(params, np.stack([draw.background for draw in batch]))
            pixels = to_uint8(rendered.images, [draw.rng for draw in batch], SENSOR_NOISE)
            for draw, image in zip(batch, pixels):
                target = folder / draw.path
                target.parent.mkdir(parents=True, exist_ok=True)
                write_image(target, image, quality=settings.jpeg_quality)
            tables.append(label_table(batch, rendered.landmarks))
            done = sum(len(table) for table in tables)
            if done % (settings.render_batch * 20) < settings.render_batch:
                log.info("%s: %d/%d images (%.1f/s)", part, done, split.images, done / (time.perf_counter() - started))
    labels = pd.concat(tables, ignore_index=True)
    with atomic_path(out_dir / "labels.csv") as temporary:
        labels.to_csv(temporary, index=False, float_format="%.7g")
    seconds = time.perf_counter() - started
    write_text_atomic(out_dir / "summary.json", json.dumps(summarise(labels, settings, part, seconds), indent=2) + "\n")
    log.info("%s: %d images of %d identities in %.1f s -> %s", part, len(labels), split.identities, seconds, out_dir)
    return out_dir
