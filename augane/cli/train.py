"""``augane train``: GANE on the cached features with the AU-based losses (one process, or one rank of torchrun)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from augane.cli.common import add_config_arguments, add_threads_argument, config_from_args, set_torch_threads

log = logging.getLogger("augane.train")


def run_train(args: argparse.Namespace) -> int:
    import os

    from augane.train.trainer import train_gane

    config = config_from_args(args)
    set_torch_threads(args)
    resume = "always" if args.resume else "never" if args.restart else "auto"
    summary = train_gane(config, out_dir=args.out_dir, cache_root=args.cache_root, resume=resume)
    if int(os.environ.get("RANK", "0")) == 0:
        final = summary["final_validation"]
        log.info("summary: %s", json.dumps({key: final.get(key) for key in ("step", "gane", "deca")}, default=str))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``."""
    parser = subparsers.add_parser(
        "train",
        help="train GANE on the cached features (AU-based losses through FLAME and the renderer)",
        description="Train GANE (the graph attention network encoder) on the cached features of `train.datasets`: "
        "GANE predicts expression, pose and camera; DECA's cached shape, albedo and light complete the face; "
        "losses L_auLmk, L_auRel, L_auFeat (render through the frozen AU detector) and L_reg, weighted by "
        "`losses.weights`. Writes results/train/<run_name>/ (checkpoints/last.pt and best.pt, train_steps.csv, "
        "validation.csv, loss_curves.png, summary.json, tensorboard/). Resumes from last.pt when it exists and "
        "was written with the same settings. For several GPUs start it with "
        "`torchrun --standalone --nproc-per-node N --no-python augane train ...`.",
    )
    add_config_arguments(parser)
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--resume", action="store_true",
                        help="require resuming from last.pt (error if it is missing or was written with other settings)")
    choice.add_argument("--restart", action="store_true", help="ignore an existing last.pt and start a new run")
    parser.add_argument("--out-dir", type=Path, default=None, help="run folder (default results/train/<run_name>)")
    parser.add_argument("--cache-root", type=Path, default=Path("results/cache"),
                        help="folder of the cached datasets (default results/cache)")
    add_threads_argument(parser, " in each process")
    parser.set_defaults(func=run_train)
