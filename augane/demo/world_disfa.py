"""The demo world's videos in DISFA's layout, with the per-frame ground truth DISFA lacks.

Layout written under the root (read by :mod:`augane.io.disfa` exactly as a real DISFA tree)::

    Videos_LeftCamera/LeftVideoSN001_comp.avi     MJPG, image_size x image_size, ``fps``
    ActionUnit_Labels/SN001/SN001_au<k>.txt        "frame,intensity", frames from 1, DISFA's 12 AUs
    GroundTruth/SN001.parquet                      per-frame truth (see GROUND_TRUTH_README)
    GroundTruth/README.md

Each subject has its own identity, albedo, light, camera and background
(a static camera), gentle head motion and smooth AU episodes
(:func:`augane.demo.world_sampling.au_trajectory`). The face is rendered
with the continuous intensities; the label files hold them rounded to
DISFA's integer scale. Subjects take the official DISFA names in order
(SN001, SN002, ...).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from augane.aus import DISFA_AUS, au_label
from augane.demo.face_model import DEMO_AUS, MAX_AU_INTENSITY, au_parameters
from augane.demo.world_backgrounds import sample_background
from augane.demo.world_params import FaceParameters
from augane.demo.world_render import WorldRenderer, to_uint8
from augane.demo.world_sampling import (
    au_trajectory,
    head_motion,
    head_rotation,
    sample_camera,
    sample_identity,
    sample_light,
    sample_rng,
)
from augane.demo.world_settings import WorldSettings
from augane.io.atomic import atomic_path, write_text_atomic
from augane.io.disfa import DISFA_SUBJECTS, write_disfa_labels
from augane.io.videos import write_video

log = logging.getLogger(__name__)

GROUND_TRUTH_FOLDER = "GroundTruth"
SENSOR_NOISE = 1.5 / 255.0

GROUND_TRUTH_README = """\
# Ground truth of the synthetic DISFA-layout videos (AUGANE demo world)

Real DISFA has no such folder. One Parquet table per subject, `SNxxx.parquet`,
one row per video frame:

- `sample_id`: `SNxxx#<frame:06d>`, as in the dataset's manifest; `subject`; `frame` (0-based video frame;
  the label files count from 1).
- `intensity_AU<k>`: the continuous AU intensity (0-5) the frame was rendered with, for every AU the demo
  face model shows; the label files hold DISFA's 12 AUs rounded to integers.
- `gt_<name>_<i>`: the face parameters in DECA's layout: shape (100), tex (50), exp (50), pose (6: global then
  jaw axis-angle, radians), cam (3: DECA's (s, tx, ty) for the whole frame), light (27: the 9 x 3 SH
  coefficients, row-major).
- `gt_landmarks_<i>`: the 105 landmarks projected into the frame, in pixels, flattened x0, y0, x1, ...

Decode the parameters with the demo face model (`resources.face_model`) to get the true vertices.
"""


def subject_names(count: int) -> list[str]:
    """The first ``count`` official DISFA subject names."""
    if not 1 <= count <= len(DISFA_SUBJECTS):
        raise ValueError(f"the DISFA layout has names for 1-{len(DISFA_SUBJECTS)} subjects, got {count}")
    return list(DISFA_SUBJECTS[:count])


def subject_parameters(settings: WorldSettings, index: int, n_shape: int, n_tex: int) -> tuple[FaceParameters, np.ndarray, np.ndarray]:
    """Per-frame parameters of subject ``index``, its continuous AU intensities (F, len(DEMO_AUS)) and background."""
    rng = sample_rng(settings.seed, "disfa", index, 0)
    frames, fps, faces = settings.disfa.frames, settings.disfa.fps, settings.faces
    shape, tex = sample_identity(rng, faces, n_shape, n_tex)
    light = sample_light(rng, faces)
    base_camera = sample_camera(rng, faces)
    background = sample_background(rng, settings.image_size)
    intensities = au_trajectory(rng, frames, fps, settings.aus)
    angles = head_motion(rng, frames, fps, faces)
    drift = rng.normal(0.0, faces.translation * 0.1, (2,)) * np.linspace(0.0, 1.0, frames)[:, None]
    expression, jaw = au_parameters(intensities, n_exp=50)
    pose = np.concatenate([np.stack([head_rotation(*angle) for angle in angles]), jaw], axis=1)
    cam = np.repeat(base_camera[None], frames, axis=0)
    cam[:, 1:] += drift
    params = FaceParameters(
        shape=np.repeat(shape[None], frames, axis=0), tex=np.repeat(tex[None], frames, axis=0), exp=expression,
        pose=pose, cam=cam, light=np.repeat(light[None], frames, axis=0),
    )
    return params, intensities, background


def integer_labels(intensities: np.ndarray) -> np.ndarray:
    """Continuous intensities rounded (halves up) to DISFA's integer scale 0-5."""
    return np.clip(np.floor(intensities + 0.5), 0, MAX_AU_INTENSITY).astype(np.int64)


def write_subject(settings: WorldSettings, renderer: WorldRenderer, root: Path, index: int, subject: str) -> int:
    """Render, label and describe one subject under ``root``; returns its frame count."""
    params, intensities, background = subject_parameters(
        settings, index, renderer.active_shape_components, renderer.active_tex_components
    )
    frames = len(params)
    landmarks = np.zeros((frames, 105, 2))

    def rendered() -> Iterator[np.ndarray]:
        for start in range(0, frames, settings.render_batch):
            chunk = slice(start, min(start + settings.render_batch, frames))
            batch = params.select(chunk)
            out = renderer.render(batch, np.repeat(background[None], len(batch), axis=0))
            landmarks[chunk] = out.landmarks
            rngs = [sample_rng(settings.seed, "disfa", index, frame + 1) for frame in range(chunk.start, chunk.stop)]
            yield from to_uint8(out.images, rngs, SENSOR_NOISE)

    from augane.io.disfa import disfa_video_path

    write_video(disfa_video_path(root, subject), rendered(), fps=settings.disfa.fps)
    labels = integer_labels(intensities)
    table = pd.DataFrame({"frame": np.arange(frames)})
    for au in DISFA_AUS:
        table[au_label(au)] = labels[:, DEMO_AUS.index(au)]
    write_disfa_labels(root, subject, table)
    truth = pd.DataFrame({
        "sample_id": [f"{subject}#{frame:06d}" for frame in range(frames)],
        "subject": subject,
        "frame": np.arange(frames, dtype=np.int64),
    })
    continuous = pd.DataFrame(intensities, columns=[f"intensity_{au_label(au)}" for au in DEMO_AUS])
    truth = pd.concat([truth, continuous, params.columns(landmarks)], axis=1)
    path = root / GROUND_TRUTH_FOLDER / f"{subject}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        truth.to_parquet(temporary, index=False)
    return frames


def write_disfa_world(settings: WorldSettings, renderer: WorldRenderer, root: str | Path) -> Path:
    """Write the DISFA-layout videos, labels and ground truth under ``root`` (built under a temporary name)."""
    root = Path(root)
    started = time.perf_counter()
    subjects = subject_names(settings.disfa.subjects)
    with atomic_path(root) as folder:
        for index, subject in enumerate(subjects):
            frames = write_subject(settings, renderer, folder, index, subject)
            log.info("disfa: %s, %d frames (%.1f s so far)", subject, frames, time.perf_counter() - started)
        write_text_atomic(folder / GROUND_TRUTH_FOLDER / "README.md", GROUND_TRUTH_README)
        summary = {"part": "disfa", "subjects": subjects, "frames_per_subject": settings.disfa.frames,
                   "fps": settings.disfa.fps, "image_size": settings.image_size, "seed": settings.seed,
                   "seconds": round(time.perf_counter() - started, 2)}
        write_text_atomic(folder / GROUND_TRUTH_FOLDER / "summary.json", json.dumps(summary, indent=2) + "\n")
    log.info("disfa: %d subjects in %.1f s -> %s", len(subjects), time.perf_counter() - started, root)
    return root
