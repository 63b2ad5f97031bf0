"""The config loader fills defaults, applies overrides and names bad keys."""

from __future__ import annotations

import pytest

from augane.config import digest, load_config, validate_config
from augane.errors import ConfigError


def test_defaults_are_filled(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("run_name: x\n")
    config = load_config(path)
    assert config["losses"]["weights"]["au_landmark"] == 0.75
    assert config["losses"]["weights"]["au_relative"] == 0.25
    assert config["losses"]["weights"]["au_feature"] == 0.75
    assert config["preprocess"]["crop"]["size"] == 224


def test_override_sets_nested_value(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("run_name: x\n")
    config = load_config(path, overrides=["train.epochs=2", "preprocess.crop.size=128"])
    assert config["train"]["epochs"] == 2
    assert config["preprocess"]["crop"]["size"] == 128


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match="epochz"):
        load_config(path)


def test_wrong_type_names_key_path():
    with pytest.raises(ConfigError, match=r"preprocess\.shard_size"):
        validate_config({"preprocess": {"shard_size": "many"}})


def test_dataset_requires_type_and_path():
    with pytest.raises(ConfigError, match="datasets.faces"):
        validate_config({"datasets": {"faces": {"type": "images"}}})


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_digest_is_order_independent():
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})
