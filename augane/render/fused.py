"""Fused CPU kernels for the renderer: its long element-wise chains through ``torch.compile``.

Eager PyTorch runs one operation at a time, each streaming its operands
through memory; the rasteriser's per-face tables (some forty operations per
face), its row spans (a dozen per trapezoid row), its per-pixel lookups
(gathers from the face tables, barycentrics, interpolation, packing into
images) and the per-pixel terms of the backward passes are bound by that
traffic on CPU. Compiled with Inductor (PyTorch's own compiler, which
writes and builds C++ loops for the CPU), each chain becomes one pass over
the faces, rows or pixels, and runs on all of torch's threads. The
operations are the same, in the same order (an eager variant may write them
in place, and plain multiply-adds are never fused into FMAs by either), so
the results are bit-identical to eager (tests/render/test_fused.py): shared
edges still get identical crossings.

Fusing is the caller's choice (``fused=`` of :func:`augane.render.rasterize`,
``render.fused_kernels`` in the config, off by default) and applies to CPU
tensors only (CUDA runs eager). The first call of each kernel compiles it, a
few seconds (Inductor caches the code on disk for later processes), with
dynamic shapes, so new batch or image sizes do not compile again. Where
compiling fails (no C++ compiler on the machine, for one) the failure is
logged once and the kernel runs eager from then on: same outputs, slower.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger(__name__)


class FusedKernel:
    """A function of tensors that runs compiled (``fused=True``, CPU) or eager.

    Args:
        function: the definition that is compiled (and run eager unless ``eager`` is given).
        eager: an equivalent definition for eager runs, the same arithmetic in the same order
            written the way eager PyTorch runs fastest (1-D gathers, results written in place with
            ``out=``, which compiled code does not need); tests check that both give the same bits.
    """

    def __init__(self, function: Callable[..., Any], eager: Callable[..., Any] | None = None) -> None:
        self.compiled_function = function
        self.function = eager or function
        self.name = function.__name__
        self._compiled: Callable[..., Any] | None = None
        self._broken = False
        self._lock = threading.Lock()

    def __call__(self, *args: Any, fused: bool, device: torch.device) -> Any:
        """Run on ``args``: compiled when ``fused``, ``device`` is the CPU and compiling works, else eager."""
        if not fused or device.type != "cpu" or self._broken:
            return self.function(*args)
        with self._lock:
            if self._compiled is None:
                self._compiled = torch.compile(self.compiled_function, dynamic=True)
        try:
            return self._compiled(*args)
        except Exception as error:
            if not _is_compile_failure(error):
                raise
            self._broken = True
            first_line = str(error).splitlines()[0] if str(error) else ""
            log.warning("could not compile the renderer kernel %s (%s: %s); it runs eager from now on "
                        "(same results, slower)", self.name, type(error).__name__, first_line)
            return self.function(*args)


def _is_compile_failure(error: Exception) -> bool:
    """Whether ``error`` was raised by Dynamo or Inductor (compiling, or the C++ toolchain), not by the inputs."""
    return (type(error).__module__ or "").startswith(("torch._dynamo", "torch._inductor"))
