"""Entry point of the ``augane`` console script.

Subcommands are discovered from the modules of :mod:`augane.cli`: every module
that defines ``register(subparsers)`` adds its parser(s) there and sets
``func`` on them. Heavy imports (torch, mediapipe) happen inside the command
functions, so ``augane --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

import augane
import augane.cli
from augane.errors import AuganeError


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="augane",
        description="AUGANE: action-unit-guided 3D face reconstruction (preprocess, features, train, evaluate).",
    )
    parser.add_argument("--version", action="version", version=f"augane {augane.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(augane.cli.__path__), key=lambda m: m.name):
        if module_info.name in {"main", "common"}:
            continue
        module = importlib.import_module(f"augane.cli.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``augane`` command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except AuganeError as err:
        logging.getLogger("augane").error("%s", err)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
