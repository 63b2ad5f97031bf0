"""Device and precision settings of the feature stage."""

from __future__ import annotations

import pytest
import torch

from augane.config import validate_config
from augane.errors import ConfigError
from augane.features.runtime import InferenceSettings, inference_settings, resolve_device


def test_settings_from_config():
    settings = inference_settings(validate_config({"device": "cpu", "features": {"batch_size": 64, "read_ahead": 0}}))
    assert settings.device == torch.device("cpu") and settings.batch_size == 64 and settings.read_ahead == 0
    assert settings.precision == "fp32"  # bf16 autocast is for CUDA only
    assert settings.describe()["precision"] == "fp32"
    assert InferenceSettings(torch.device("cuda"), bf16=True).precision == "bf16"
    assert InferenceSettings(torch.device("cuda"), bf16=False).precision == "fp32"


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")
