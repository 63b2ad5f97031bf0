"""Preprocessing commands: ``manifest``, ``preprocess`` (one shard), ``gather-index`` and ``samples``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from augane.cli.common import add_config_arguments, config_from_args

log = logging.getLogger("augane.preprocess")


def _dataset_config(config: dict, name: str) -> dict:
    from augane.errors import ConfigError

    datasets = config.get("datasets", {})
    if name not in datasets:
        raise ConfigError(f"datasets.{name}: no such dataset in the config (known: {sorted(datasets) or 'none'})")
    return datasets[name]


def run_manifest(args: argparse.Namespace) -> int:
    from augane.io.manifest import build_manifest, write_manifest

    config = config_from_args(args)
    shard_size = int(config["preprocess"]["shard_size"])
    manifest, problems = build_manifest(args.dataset, _dataset_config(config, args.dataset), shard_size)
    for problem in problems:
        log.warning("datasets.%s: %s", args.dataset, problem)
    write_manifest(args.out, manifest, args.dataset, shard_size, problems)
    log.info(
        "%s: %d samples in %d shards of up to %d -> %s",
        args.dataset, len(manifest), int(manifest["shard"].max()) + 1, shard_size, args.out,
    )
    return 0


def run_preprocess(args: argparse.Namespace) -> int:
    import cv2

    from augane.preprocess.shard import preprocess_shard

    cv2.setNumThreads(1)  # a shard job is given one core (the rule's threads); OpenCV's pool would only contend
    config = config_from_args(args)
    _dataset_config(config, args.dataset)
    preprocess_shard(config, args.dataset, args.manifest, int(args.shard), args.out)
    return 0


def run_gather_index(args: argparse.Namespace) -> int:
    from augane.preprocess.index import gather_index

    gather_index(args.manifest, args.out)
    return 0


def run_samples(args: argparse.Namespace) -> int:
    from augane.preprocess.samples import write_samples

    for path in write_samples(args.out_dir / "images", args.out_dir / "videos"):
        log.info("wrote %s", path)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the preprocessing subcommands."""
    parser = subparsers.add_parser(
        "manifest",
        help="list a configured dataset's samples and split them into shards (manifest.parquet)",
        description="Scan a dataset named under `datasets:` and write its manifest: one row per sample "
        "(image, or video frame), with labels, assigned to shards of preprocess.shard_size.",
    )
    add_config_arguments(parser)
    parser.add_argument("--dataset", required=True, help="dataset name (a key under `datasets:`)")
    parser.add_argument("--out", type=Path, required=True, help="manifest to write (results/cache/<dataset>/manifest.parquet)")
    parser.set_defaults(func=run_manifest)

    parser = subparsers.add_parser(
        "preprocess",
        help="crop faces and find 478 MediaPipe landmarks for one shard (preprocess.zarr)",
        description="Preprocess one shard of a dataset's manifest: largest face, DECA-style crop, MediaPipe mesh, "
        "105 landmarks, detection confidence and a status per sample, into one Zarr store written atomically.",
    )
    add_config_arguments(parser)
    parser.add_argument("--dataset", required=True, help="dataset name (a key under `datasets:`)")
    parser.add_argument("--manifest", type=Path, required=True, help="the dataset's manifest.parquet")
    parser.add_argument("--shard", type=int, required=True, help="shard number")
    parser.add_argument("--out", type=Path, required=True, help="store to write (.../shard-XXXX/preprocess.zarr)")
    parser.set_defaults(func=run_preprocess)

    parser = subparsers.add_parser(
        "gather-index",
        help="join a manifest with the per-sample status of its preprocess stores (index.parquet)",
        description="Read the preprocess stores beside a manifest and write the index: the manifest plus "
        "status, status_name, confidence and face_count per sample.",
    )
    parser.add_argument("--manifest", type=Path, required=True, help="the dataset's manifest.parquet")
    parser.add_argument("--out", type=Path, required=True, help="index to write (results/cache/<dataset>/index.parquet)")
    parser.set_defaults(func=run_gather_index)

    parser = subparsers.add_parser(
        "samples",
        help="write the bundled sample photos and a short video made from them",
        description="Write astronaut.png and grace_hopper.jpg (portraits bundled with scikit-image and "
        "matplotlib) to OUT_DIR/images and a pan/zoom video made from them to OUT_DIR/videos.",
    )
    parser.add_argument("--out-dir", type=Path, default=Path("results/samples"), help="default: results/samples")
    parser.set_defaults(func=run_samples)
