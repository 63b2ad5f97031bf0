"""``augane dev-weights --untrained``: random networks in the released file formats, for development only."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from augane.cli.common import add_config_arguments, config_from_args

log = logging.getLogger("augane.dev_weights")

BANNER = (
    "UNTRAINED DEVELOPMENT WEIGHTS: these files hold RANDOM initialisations in the released formats. "
    "They are NOT pretrained; every feature, reconstruction and score computed with them is meaningless. "
    "Use them only to exercise the pipeline before real checkpoints (or the demo world's trained stand-ins) exist."
)


def run_dev_weights(args: argparse.Namespace) -> int:
    import torch

    from augane.nets.deca import DecaCoarseEncoder
    from augane.nets.emoca import EmocaCoarse
    from augane.nets.mefarg import MEFARG
    from augane.nets.release_format import save_au_detector_checkpoint, save_deca_checkpoint, save_emoca_checkpoint

    config = config_from_args(args)
    resources = config["resources"]
    seed = config["seed"] if args.seed is None else args.seed
    torch.manual_seed(seed)
    out = args.out_dir
    log.warning(BANNER)
    au = resources["au_detector"]
    paths = [
        save_deca_checkpoint(DecaCoarseEncoder(resources["deca"]["backbone"]), out / "untrained_deca_model.tar", untrained=True),
        save_au_detector_checkpoint(MEFARG(au["variant"], au["head"], au["backbone"]), out / "untrained_au_detector.pth",
                                    untrained=True),
        save_emoca_checkpoint(EmocaCoarse(resources["emoca"]["backbone"]), out / "untrained_emoca.ckpt", untrained=True),
    ]
    for path in paths:
        log.warning("wrote UNTRAINED %s", path)
    log.warning(
        "to use them: --set resources.deca.checkpoint=%s --set resources.au_detector.checkpoint=%s "
        "[--set resources.emoca.checkpoint=%s]", *paths,
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the development-weights subcommand."""
    parser = subparsers.add_parser(
        "dev-weights",
        help="write UNTRAINED random DECA/EMOCA/AU-detector checkpoints in the released formats (development only)",
        description=BANNER + " Layouts (backbones, detector variant and head) follow `resources:` in the config; "
        "files are named untrained_*.",
    )
    add_config_arguments(parser)
    parser.add_argument("--untrained", action="store_true", required=True,
                        help="required: acknowledges that the written weights are random, not pretrained")
    parser.add_argument("--out-dir", type=Path, default=Path("results/dev_weights"), help="folder for the untrained_* files")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the config's seed)")
    parser.set_defaults(func=run_dev_weights)
