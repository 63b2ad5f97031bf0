"""Networks built from the config's `resources:` section."""

from __future__ import annotations

import pytest

from augane.errors import ConfigError
import torch

from augane.features.networks import (
    AuDetectorSettings,
    frozen_au_detector_from_config,
    load_emoca_from_config,
    load_feature_networks,
)
from tests.features.tiny_shards import tiny_config


def test_loads_declared_networks_and_reports_provenance(tmp_path):
    config = tiny_config(tmp_path)
    networks = load_feature_networks(config)
    assert networks.emoca is None and load_emoca_from_config(config["resources"]) is None
    assert networks.deca_input_size == 64 and networks.au_settings.resize == 72
    provenance = networks.provenance()
    assert provenance["au_detector"]["checkpoint"] == "au.pth" and len(provenance["deca"]["sha256"]) == 64
    assert provenance["emoca"] is None and networks.untrained is False


def test_inconsistent_detector_settings_are_config_errors():
    with pytest.raises(ConfigError, match="input_size 256 must not exceed resize 224"):
        AuDetectorSettings.from_config({"au_detector": {"checkpoint": "x.pth", "resize": 224, "input_size": 256}})
    with pytest.raises(ConfigError, match="resources.au_detector.checkpoint is not set"):
        AuDetectorSettings.from_config({"au_detector": {}})


def test_frozen_detector_from_config_uses_the_configured_preprocessing(tmp_path):
    config = tiny_config(tmp_path)
    frozen = frozen_au_detector_from_config(config["resources"])
    assert (frozen.resize, frozen.crop) == (72, 64) and not frozen.detector.training
    renders = torch.rand(2, 3, 64, 64, requires_grad=True)
    frozen(renders).afg.square().sum().backward()
    assert renders.grad.abs().sum() > 0
