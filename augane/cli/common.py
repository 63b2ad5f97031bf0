"""Helpers shared by the subcommand modules: the ``--config``/``--set`` and ``--threads`` options."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config FILE`` and repeatable ``--set key.path=value`` overrides."""
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("config/config.yaml"),
        help="AUGANE YAML config (default: config/config.yaml)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=2 (YAML value syntax); repeatable",
    )


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Load, override and validate the config named on the command line."""
    from augane.config import load_config

    return load_config(args.config, overrides=args.overrides)


def add_threads_argument(parser: argparse.ArgumentParser, scope: str = "") -> None:
    """Add ``--threads N`` (PyTorch CPU threads; ``scope`` is appended to the help, e.g. " in each process")."""
    parser.add_argument("--threads", type=int, default=None,
                        help=f"CPU threads for PyTorch{scope} (default: PyTorch's choice)")


def set_torch_threads(args: argparse.Namespace) -> None:
    """Give PyTorch ``args.threads`` CPU threads (at least 1); without ``--threads`` PyTorch keeps its choice."""
    if args.threads is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))
