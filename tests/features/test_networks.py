"""Networks built from the config's `resources:` section."""

from __future__ import annotations

import pytest

from augane.errors import ConfigError
from augane.features.networks import AuDetectorSettings, load_emoca_from_config, load_feature_networks
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
