"""The `augane` console script lists its subcommands and reports errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys


def test_help_runs():
    result = subprocess.run([sys.executable, "-m", "augane.cli.main", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "augane" in result.stdout
