"""Images per second of the feature-caching stage (AU detector + DECA), and where the time goes.

Networks: the released layouts (OpenGraphAU ResNet-50 with the stage-1 or
stage-2 head, DECA's ResNet-50 ``E_flame``, optionally EMOCA) with random
weights built in memory; throughput does not depend on the values. Crops: a
preprocess.zarr shard of 224-pixel crops of a real photo (random windows,
so chunks compress as real data does), written to a temporary folder and
read through the stage's own code (:func:`augane.features.shard.compute_features`):
store reading and decompression, host-to-device copy, the detector's
preprocessing, both networks and the copy back are all timed. "read" is the
time the networks waited for crops (reading overlaps computing with
``read_ahead``), "compute" the rest.

Peer: the reference pipelines' way of running the same networks, one image
at a time, PIL preprocessing (Resize 256, CenterCrop 224, ToTensor,
Normalize), float32, no batching.

    python benchmarks/bench_features.py [--device cpu|cuda|all] [--images N] [--batch 16 64]
                                        [--head anfl|mefl] [--emoca] [--threads T] [--compile]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch
from PIL import Image

from augane.features.extract import FeatureExtractor
from augane.features.networks import AuDetectorSettings, FeatureNetworks
from augane.features.runtime import InferenceSettings
from augane.features.shard import compute_features
from augane.io.shards import ArraySpec, open_store, write_store
from augane.nets.au_preprocess import IMAGENET_MEAN, IMAGENET_STD
from augane.nets.deca import DecaCoarseEncoder
from augane.nets.emoca import EmocaCoarse
from augane.nets.mefarg import MEFARG

CROP = 224


def write_shard(folder: Path, count: int, seed: int = 0) -> Path:
    """A preprocess store of ``count`` 224-px crops from random windows of a real photo (all status ok)."""
    rng = np.random.default_rng(seed)
    photo = skimage.data.astronaut()
    crops = np.empty((count, CROP, CROP, 3), dtype=np.uint8)
    for index in range(count):
        side = int(rng.integers(200, 400))
        top, left = rng.integers(0, 512 - side, size=2)
        crops[index] = cv2.resize(photo[top:top + side, left:left + side], (CROP, CROP), interpolation=cv2.INTER_AREA)
    arrays = {"image": ArraySpec(crops, ("sample", "y", "x", "channel")),
              "status": ArraySpec(np.zeros(count, dtype=np.uint8), ("sample",))}
    return write_store(folder / "preprocess.zarr", arrays, {"status_codes": {"ok": 0}})


def build_networks(head: str, with_emoca: bool) -> FeatureNetworks:
    return FeatureNetworks(
        au_detector=MEFARG("opengraphau", head, "resnet50").eval(),
        au_settings=AuDetectorSettings(checkpoint="(in memory)", head=head),
        deca=DecaCoarseEncoder("resnet50").eval(),
        deca_input_size=CROP,
        emoca=EmocaCoarse("resnet50").eval() if with_emoca else None,
    )


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_stage(store, networks: FeatureNetworks, settings: InferenceSettings) -> dict[str, float]:
    """Run the stage once over the whole store after one warm-up batch; images/s and time shares."""
    extractor = FeatureExtractor(networks, settings)
    ok = np.ones(store["status"].shape[0], dtype=bool)
    extractor(np.asarray(store["image"][: settings.batch_size]))
    _synchronise(settings.device)
    started = time.perf_counter()
    timings = compute_features(store, ok, extractor).timings
    wall = time.perf_counter() - started
    return {"images_per_second": ok.size / wall, "read": timings.read / wall, "compute": timings.compute / wall}


def time_reference_style(store, networks: FeatureNetworks, device: torch.device, count: int) -> float:
    """Images/s of one-image-at-a-time inference with PIL preprocessing in float32 (the reference demos' way)."""
    detector = networks.au_detector.to(device, memory_format=torch.contiguous_format)
    deca = networks.deca.to(device, memory_format=torch.contiguous_format)
    mean, std = np.array(IMAGENET_MEAN, np.float32), np.array(IMAGENET_STD, np.float32)

    def one(crop: np.ndarray) -> None:
        pil = Image.fromarray(crop).resize((256, 256), Image.BILINEAR)
        pixels = np.asarray(pil.crop((16, 16, 240, 240)), dtype=np.float32) / 255.0
        au_input = torch.from_numpy((pixels - mean) / std).permute(2, 0, 1)[None].to(device)
        deca_input = torch.from_numpy(crop.astype(np.float32) / 255.0).permute(2, 0, 1)[None].to(device)
        with torch.no_grad():
            detector(au_input).prob.cpu()
            deca(deca_input).params.cpu()

    crops = np.asarray(store["image"][:count])
    one(crops[0])
    _synchronise(device)
    started = time.perf_counter()
    for crop in crops:
        one(crop)
    _synchronise(device)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--images", type=int, default=None, help="crops per run (default 64 on CPU, 4096 on CUDA)")
    parser.add_argument("--batch", type=int, nargs="+", default=None, help="batch sizes (default 16 64 on CPU, 64 256 on CUDA)")
    parser.add_argument("--head", choices=["anfl", "mefl"], default="anfl", help="OpenGraphAU stage 1 (anfl) or 2 (mefl)")
    parser.add_argument("--emoca", action="store_true", help="also run EMOCA (two more ResNet-50s)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile on CUDA")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        print("CUDA: not available, skipped")
        devices.remove("cuda")
    networks = build_networks(args.head, args.emoca)
    trunks = 2 + (2 if args.emoca else 0)
    print(f"feature stage: OpenGraphAU ResNet-50 ({args.head}) + DECA ResNet-50"
          f"{' + EMOCA' if args.emoca else ''} ({trunks} ResNet-50 trunks), 224-px crops from a Zarr shard; "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    header = f"{'device':<26} {'mode':<30} {'batch':>5} {'images/s':>9} {'read':>6} {'compute':>8}"
    with tempfile.TemporaryDirectory() as folder:
        for name in devices:
            device = torch.device(name)
            count = args.images or (64 if name == "cpu" else 4096)
            batches = args.batch or ([16, 64] if name == "cpu" else [64, 256])
            store = open_store(write_shard(Path(folder) / name, count))
            label = torch.cuda.get_device_name(device) if name == "cuda" else "cpu"
            print(f"\n{count} crops on {label}\n{header}")
            modes = [("fp32", False, False, False)] if name == "cpu" else [
                ("fp32", False, False, False), ("bf16 + channels_last", True, True, False)]
            if name == "cpu":
                modes.append(("fp32 + channels_last", False, True, False))
            if name == "cuda" and args.compile:
                modes.append(("bf16 + channels_last + compile", True, True, True))
            for mode, bf16, channels_last, compiled in modes:
                for batch in batches:
                    settings = InferenceSettings(device=device, bf16=bf16, channels_last=channels_last,
                                                 compile=compiled, batch_size=batch, read_ahead=2)
                    result = time_stage(store, networks, settings)
                    print(f"{label[:26]:<26} {'augane ' + mode:<30} {batch:>5} {result['images_per_second']:>9.1f} "
                          f"{100 * result['read']:>5.1f}% {100 * result['compute']:>7.1f}%")
            peer_count = min(count, 16 if name == "cpu" else 256)
            rate = time_reference_style(store, networks, device, peer_count)
            print(f"{label[:26]:<26} {'peer: per image, PIL, fp32':<30} {1:>5} {rate:>9.1f} {'':>6} {'':>8}")


if __name__ == "__main__":
    main()
