"""Settings read from the resolved config: defaults, overrides, demo-world detection, bad values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from augane.aus import PAPER_EVAL_AUS
from augane.config import load_config
from augane.errors import ConfigError
from augane.evaluate.settings import EvaluationSettings, is_demo_world

CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"


def test_defaults_are_the_papers():
    settings = EvaluationSettings.from_config(load_config(CONFIG))
    assert settings.aus == PAPER_EVAL_AUS
    assert settings.num_videos == 9 and settings.frame_stride == 1 and settings.label_threshold == 2
    assert settings.methods == ("augane", "deca", "emoca")
    assert settings.zero_division == 0.0 and settings.subjects is None
    assert settings.synthetic  # the default detector is the demo world's stand-in


def test_overrides_reach_the_settings():
    config = load_config(
        CONFIG,
        overrides=[
            "evaluate.disfa.zero_division=nan",
            "evaluate.disfa.subjects=[SN003, '06']",
            "resources.au_detector.checkpoint=resources/opengraphau.pth",
            "evaluate.disfa.qualitative_strategy=even",
        ],
    )
    settings = EvaluationSettings.from_config(config)
    assert math.isnan(settings.zero_division)
    assert settings.subjects == ("SN003", "06")
    assert not settings.synthetic and not is_demo_world(config)
    assert settings.qualitative_strategy == "even"


def test_unknown_au_in_config_is_a_config_error():
    config = load_config(CONFIG, overrides=["evaluate.disfa.aus=[1, 3]"])
    with pytest.raises(ConfigError, match="AU3 is not a FACS action unit"):
        EvaluationSettings.from_config(config)


def test_schema_rejects_bad_values():
    with pytest.raises(ConfigError, match="zero_division"):
        load_config(CONFIG, overrides=["evaluate.disfa.zero_division=0.5"])
    with pytest.raises(ConfigError, match="aus"):
        load_config(CONFIG, overrides=["evaluate.disfa.aus=[1, 1]"])
