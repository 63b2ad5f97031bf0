"""Helpers shared by the subcommand modules: the ``--config``/``--set`` options."""

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
