"""Options shared by the subcommands: ``--threads``."""

from __future__ import annotations

import argparse

import torch

from augane.cli.common import add_threads_argument, set_torch_threads


def test_threads_option_sets_torchs_thread_count_and_is_optional():
    parser = argparse.ArgumentParser()
    add_threads_argument(parser, " in each process")
    before = torch.get_num_threads()
    try:
        set_torch_threads(parser.parse_args([]))
        assert torch.get_num_threads() == before
        set_torch_threads(parser.parse_args(["--threads", "0"]))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert "in each process" in parser.format_help()
