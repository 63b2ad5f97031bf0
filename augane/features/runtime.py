"""Where and how the feature networks run: device, bf16 autocast, channels_last, torch.compile."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from augane.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a CUDA device is a config error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was requested but PyTorch sees no CUDA device (use auto or cpu)")
    if name not in {"cpu", "cuda"}:
        raise ConfigError(f"device: expected auto, cpu or cuda, got {name!r}")
    return torch.device(name)


@dataclass(frozen=True)
class InferenceSettings:
    """How a batch is run.

    Attributes:
        device: where the networks run.
        bf16: autocast to bfloat16 (CUDA only; CPU always runs float32).
        channels_last: NHWC memory layout for the convolutional trunks.
        compile: ``torch.compile`` the networks (batches are then padded to a fixed size).
        batch_size: samples per forward pass.
        read_ahead: batches read from the store in the background while one computes.
    """

    device: torch.device
    bf16: bool = True
    channels_last: bool = True
    compile: bool = False
    batch_size: int = 16
    read_ahead: int = 1

    @property
    def precision(self) -> str:
        """``"bf16"`` when autocast is active, else ``"fp32"``."""
        return "bf16" if self.bf16 and self.device.type == "cuda" else "fp32"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of a forward pass (a no-op in fp32)."""
        if self.precision == "bf16":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for provenance."""
        return {"device": str(self.device), "precision": self.precision, "channels_last": self.channels_last,
                "compile": self.compile, "batch_size": self.batch_size}


def inference_settings(config: Mapping[str, Any]) -> InferenceSettings:
    """Settings from a validated config (``device`` and the ``features:`` section)."""
    features = config.get("features", {})
    return InferenceSettings(
        device=resolve_device(config.get("device", "auto")),
        bf16=bool(features.get("bf16", True)),
        channels_last=bool(features.get("channels_last", True)),
        compile=bool(features.get("compile", False)),
        batch_size=int(features.get("batch_size", 16)),
        read_ahead=int(features.get("read_ahead", 1)),
    )

