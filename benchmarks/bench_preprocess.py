"""Throughput of the preprocessing stage against bare MediaPipe, on the same images, in one process on one core.

Compares, per image already decoded in memory:

* bare: ``mediapipe.solutions.face_mesh.FaceMesh.process`` with the settings the
  stage uses (static mode, refined 478-point mesh, up to ``max_faces`` faces);
* stage: :meth:`augane.preprocess.faces.FaceCropper.process` - the same mesh
  graph plus detection scores, largest-face choice, DECA crop box, the
  anti-aliased warp and the landmark transform;

and, for the full picture, the stage from files (decode included) through a
whole shard. Prints images/s and the stage/bare ratio (goal: >= 0.80).

Run: ``.venv/bin/python benchmarks/bench_preprocess.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def _images() -> list[np.ndarray]:
    """The two bundled portraits at a few sizes and positions: 8 real face images."""
    from augane.preprocess.samples import astronaut, grace_hopper

    images = []
    for photo in (astronaut(), grace_hopper()):
        images.append(photo)
        images.append(cv2.resize(photo, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA))
        images.append(cv2.resize(photo, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC))
        images.append(np.ascontiguousarray(photo[:, ::-1]))
    return images


def _rate(function, images: list[np.ndarray], repeats: int) -> float:
    """Images per second of ``function`` over ``images``, best of ``repeats`` passes (after one warm-up pass)."""
    for image in images:
        function(image)
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        for image in images:
            function(image)
        best = min(best, time.perf_counter() - started)
    return len(images) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed passes over the images (best is kept)")
    parser.add_argument("--max-faces", type=int, default=4)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as one Snakemake job gets
    cv2.setNumThreads(1)  # as `augane preprocess` does

    import mediapipe

    from augane.config import validate_config
    from augane.io.images import write_image
    from augane.io.manifest import build_manifest, write_manifest
    from augane.preprocess.crop import CropSettings
    from augane.preprocess.faces import FaceCropper
    from augane.preprocess.landmarkers import MediaPipeFaceMesh
    from augane.preprocess.shard import preprocess_shard

    images = _images()
    bare = mediapipe.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=args.max_faces)
    stage = FaceCropper(MediaPipeFaceMesh(static_image_mode=True, max_faces=args.max_faces), CropSettings(size=224))
    assert all(stage.process(image).status == 0 for image in images), "every benchmark image must hold a face"

    rates = {}
    for _ in range(3):  # interleave the two to share any background load fairly
        rates.setdefault("bare", []).append(_rate(bare.process, images, args.repeats))
        rates.setdefault("stage", []).append(_rate(stage.process, images, args.repeats))
    bare_rate, stage_rate = max(rates["bare"]), max(rates["stage"])

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        copies = 4
        for copy in range(copies):
            for index, image in enumerate(images):
                write_image(folder / "images" / f"{copy}-{index}.jpg", image)
        config = validate_config({"datasets": {"bench": {"type": "images", "path": str(folder / "images")}}})
        manifest, _ = build_manifest("bench", config["datasets"]["bench"], 256)
        manifest_path = write_manifest(folder / "manifest.parquet", manifest, "bench", 256)
        started = time.perf_counter()
        preprocess_shard(config, "bench", manifest_path, 0, folder / "shard.zarr")
        shard_rate = len(manifest) / (time.perf_counter() - started)

    sizes = sorted({f"{image.shape[1]}x{image.shape[0]}" for image in images})
    print(f"images: {len(images)} real portraits ({', '.join(sizes)}), one core, best of {args.repeats} passes")
    print(f"bare MediaPipe FaceMesh.process       {bare_rate:8.1f} images/s")
    print(f"stage FaceCropper.process (in memory)  {stage_rate:8.1f} images/s")
    print(f"ratio stage / bare                     {stage_rate / bare_rate:8.2f}   (goal >= 0.80)")
    print(f"whole shard from JPEG files ({len(manifest)} images, decode + store, incl. graph start) {shard_rate:8.1f} images/s")


if __name__ == "__main__":
    main()
