"""Demo-world commands: ``demo world`` (synthetic data), ``demo train-au-detector`` and ``demo train-deca``
(stand-in detectors trained on the synthetic faces, written in the released checkpoint formats)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from augane.cli.common import add_config_arguments, config_from_args

log = logging.getLogger("augane.demo")

DEFAULT_WORLD_DIR = Path("results/demo/world")
STAND_IN_NOTE = (
    "Stand-in detectors are trained on the synthetic demo world only; they are not pretrained networks and their "
    "scores say nothing about real faces."
)


def run_world(args: argparse.Namespace) -> int:
    from augane.demo.world import write_world_part

    from augane.errors import ConfigError

    config = config_from_args(args)
    if args.out is not None and len(args.part) != 1:
        raise ConfigError("--out names one part's folder: give exactly one --part with it (or use --out-dir)")
    for part in args.part:
        out = args.out if args.out is not None else args.out_dir / part
        write_world_part(config, part, out, face_model_dir=args.face_model_dir)
    return 0


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))


def run_train_au_detector(args: argparse.Namespace) -> int:
    from augane.demo.train_au_detector import train_au_detector

    config = config_from_args(args)
    _set_threads(args.threads)
    train_au_detector(config, args.out, args.score, max_steps=args.max_steps)
    return 0


def run_train_deca(args: argparse.Namespace) -> int:
    from augane.demo.train_deca import train_deca

    config = config_from_args(args)
    _set_threads(args.threads)
    train_deca(config, args.out, args.score, max_steps=args.max_steps)
    return 0


def _training_arguments(parser: argparse.ArgumentParser, checkpoint: str, score: str) -> None:
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path(checkpoint), help=f"checkpoint to write (default: {checkpoint})")
    parser.add_argument("--score", type=Path, default=Path(score),
                        help=f"JSON file for the held-out scores (default: {score})")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads (default: 1)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop after this many optimiser steps (smoke tests; the score is still computed)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo world``, ``demo train-au-detector`` and ``demo train-deca``."""
    from augane.demo.world_settings import WORLD_PARTS

    parser = subparsers.add_parser(
        "demo",
        help="build the synthetic demo world and train its stand-in detectors",
        description="The embedded default: a synthetic AU-labelled face world rendered from the demo face model, "
        "and stand-in AU/DECA detectors trained on it. " + STAND_IN_NOTE,
    )
    commands = parser.add_subparsers(dest="demo_command", metavar="COMMAND", required=True)

    world = commands.add_parser(
        "world",
        help="render parts of the synthetic world (train/heldout images with labels, DISFA-layout videos)",
        description="Render the synthetic world from the demo face model with the settings of "
        "demo.world: <out-dir>/train and <out-dir>/heldout (images/, labels.csv, summary.json) and "
        "<out-dir>/disfa (DISFA layout plus GroundTruth/). Deterministic given demo.world.seed.",
    )
    add_config_arguments(world)
    world.add_argument("--part", nargs="+", choices=WORLD_PARTS, default=list(WORLD_PARTS),
                       help="parts to write (default: all)")
    world.add_argument("--out-dir", type=Path, default=DEFAULT_WORLD_DIR,
                       help=f"folder holding one subfolder per part (default: {DEFAULT_WORLD_DIR})")
    world.add_argument("--out", type=Path, default=None,
                       help="the folder of a single part (instead of <out-dir>/<part>)")
    world.add_argument("--face-model-dir", type=Path, default=Path("results/demo/face_model"),
                       help="the demo face model's folder (default: results/demo/face_model)")
    world.set_defaults(func=run_world)

    au = commands.add_parser(
        "train-au-detector",
        help="train the stand-in AU detector (MEFARG, resources.au_detector layout) on the synthetic crops",
        description="Train a MEFARG AU detector in the layout of resources.au_detector (variant, head, backbone, "
        "sizes) on the preprocessed crops of demo.detectors.train_dataset, score it on "
        "demo.detectors.heldout_dataset and write it in the OpenGraphAU/ME-GraphAU checkpoint format. " + STAND_IN_NOTE,
    )
    _training_arguments(au, "results/demo/detectors/au_detector.pth", "results/demo/detectors/au_detector_score.json")
    au.set_defaults(func=run_train_au_detector)

    deca = commands.add_parser(
        "train-deca",
        help="train the stand-in DECA coarse encoder (resources.deca layout) on the synthetic crops",
        description="Train DECA's coarse encoder (E_flame, backbone and input size of resources.deca) to regress "
        "the known parameters of the crops of demo.detectors.train_dataset (camera in the crop's frame), score "
        "it on demo.detectors.heldout_dataset and write it as deca_model.tar does. " + STAND_IN_NOTE,
    )
    _training_arguments(deca, "results/demo/detectors/deca_model.tar", "results/demo/detectors/deca_score.json")
    deca.set_defaults(func=run_train_deca)
