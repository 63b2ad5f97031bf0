"""Reconstruction speed: frames per second of each method, from the cache (evaluation) and from video (users' media).

Evaluation path (``augane evaluate-reconstruct``): the first ``--frames``
usable frames of a cached DISFA-type dataset are read back, reconstructed
(GANE for AUGANE; the cached estimates for DECA and EMOCA), decoded with the
face model, rendered over the crop and scored by the AU detector, in batches
of ``evaluate.disfa.batch_size``. Besides the end-to-end rate, one pass is
split between device synchronisations into: read (stores -> batch),
parameters (GANE, or nothing), face + render (FLAME, UV albedo, raster,
shading, compositing) and detector (preprocessing + network on the
renders). The peer line is the AU detector alone on the same input crops,
which is what the feature stage pays per frame for the ``input`` rows: the
evaluation's cost per method in units of one detector pass.

Media path (``--media``): ``augane reconstruct`` on a video made from the
bundled astronaut photo (pan and zoom, 256 x 256), MediaPipe included,
against bare MediaPipe's face mesh on the same frames.

Run from a working directory holding the cache (after ``snakemake
evaluate_disfa`` or the features stage); AUGANE needs the run's GANE
checkpoint (or ``--checkpoint``) and is skipped without one.

    python benchmarks/bench_reconstruct.py [--config config/config.yaml] [--frames 256] [--device cpu|cuda|all]
        [--threads T] [--media]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from augane.config import load_config
from augane.evaluate.cached_frames import CachedFrames
from augane.evaluate.inputs import input_table
from augane.evaluate.reconstruction import METHODS, Reconstructor, default_checkpoint, emoca_configured


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cached_frames(config: dict, frames: int) -> CachedFrames:
    dataset = config["evaluate"]["disfa"]["dataset"]
    folder = Path("results/cache") / dataset
    table = input_table(pd.read_parquet(folder / "index.parquet"), pd.read_parquet(folder / "features.parquet"))
    table = table[table["valid"]].head(frames)
    return CachedFrames(folder, table)


def bench_method(config: dict, method: str, frames: int, device: torch.device, checkpoint: Path | None) -> dict:
    cached = cached_frames(config, frames)
    reconstructor = Reconstructor.from_config(config, method, cached.layout, device, checkpoint=checkpoint,
                                              networks=cached.networks())
    batch_size = int(config["evaluate"]["disfa"]["batch_size"])
    warm = next(cached.batches(batch_size, device))
    reconstructor(warm.batch)
    _sync(device)
    parts = {"read": 0.0, "parameters": 0.0, "face + render": 0.0, "detector": 0.0}
    count = 0
    started = time.perf_counter()
    with torch.no_grad():
        iterator = cached.batches(batch_size, device)
        while True:
            tick = time.perf_counter()
            part = next(iterator, None)
            _sync(device)
            parts["read"] += time.perf_counter() - tick
            if part is None:
                break
            tick = time.perf_counter()
            params = reconstructor.parameters(part.batch)
            _sync(device)
            parts["parameters"] += time.perf_counter() - tick
            tick = time.perf_counter()
            deca = part.batch["deca_params"]
            face = reconstructor.face.decode(deca["shape"], params["exp"], params["pose"])
            render = reconstructor.face.render(face.vertices, params["cam"], deca["tex"], deca["light"],
                                               part.batch["image"])
            _sync(device)
            parts["face + render"] += time.perf_counter() - tick
            tick = time.perf_counter()
            reconstructor.objective.detector(render.image)
            _sync(device)
            parts["detector"] += time.perf_counter() - tick
            count += len(part)
    split_total = time.perf_counter() - started
    # end to end, as evaluate-reconstruct runs (the objective in one call)
    started = time.perf_counter()
    done = 0
    for part in cached.batches(batch_size, device):
        reconstructor(part.batch)
        done += len(part)
    _sync(device)
    end_to_end = time.perf_counter() - started
    peer_started = time.perf_counter()
    with torch.no_grad():
        for part in cached.batches(batch_size, device):
            reconstructor.objective.detector(part.batch["image"])
    _sync(device)
    peer = time.perf_counter() - peer_started
    return {"frames": done, "end_to_end": done / end_to_end, "split": {k: v / count * 1e3 for k, v in parts.items()},
            "split_total_ms": split_total / count * 1e3, "peer_detector": done / peer}


def bench_media(config: dict, device: torch.device, checkpoint: Path | None, frames: int = 48) -> None:
    import cv2
    import mediapipe as mp
    import skimage.data

    from augane.evaluate.user_media import MediaSettings, reconstruct_media
    from augane.io.videos import write_video

    photo = skimage.data.astronaut()
    windows = [cv2.resize(photo[4 * i:4 * i + 400, 40 + 3 * i:440 + 3 * i], (256, 256), interpolation=cv2.INTER_AREA)
               for i in range(frames)]
    with tempfile.TemporaryDirectory() as folder:
        video = write_video(Path(folder) / "clip.mp4", windows, fps=25)
        started = time.perf_counter()
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as mesh:
            for window in windows:
                mesh.process(window)
        bare = frames / (time.perf_counter() - started)
        for method in ("deca", "augane"):
            if method == "augane" and not (checkpoint or default_checkpoint(config)).is_file():
                print(f"media  {method:7s}  skipped: no GANE checkpoint")
                continue
            result = reconstruct_media(video, Path(folder) / method, config, MediaSettings(method=method, mesh=None,
                                       checkpoint=checkpoint), device)
            print(f"media  {method:7s}  {result.summary['frames_per_second']:7.1f} frames/s (256 px video, MediaPipe "
                  f"included; {result.summary['seconds_loading']:.1f} s loading)   peer: bare MediaPipe face mesh "
                  f"{bare:.1f} frames/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--media", action="store_true", help="also time augane reconstruct on a generated video")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    checkpoint = args.checkpoint or config["evaluate"]["disfa"].get("checkpoint")
    checkpoint = Path(checkpoint) if checkpoint else None
    print(f"threads {torch.get_num_threads()}, batch {config['evaluate']['disfa']['batch_size']}, "
          f"crop {config['preprocess']['crop']['size']} px, detector {config['resources']['au_detector']['backbone']}")
    for name in devices:
        if name == "cuda" and not torch.cuda.is_available():
            print("cuda: not available")
            continue
        device = torch.device(name)
        for method in METHODS:
            if method == "emoca" and not emoca_configured(config):
                continue
            if method == "augane" and not (checkpoint or default_checkpoint(config)).is_file():
                print(f"{name}  {method:7s}  skipped: no GANE checkpoint at {checkpoint or default_checkpoint(config)}")
                continue
            result = bench_method(config, method, args.frames, device, checkpoint)
            split = ", ".join(f"{k} {v:.1f}" for k, v in result["split"].items())
            print(f"{name}  {method:7s}  {result['end_to_end']:7.1f} frames/s over {result['frames']} frames  "
                  f"(ms/frame: {split})   peer: AU detector alone on the input crops "
                  f"{result['peer_detector']:.1f} frames/s")
        if args.media:
            bench_media(config, device, checkpoint)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
