"""weighted_total: named terms times same-named config weights, strict about names."""

from __future__ import annotations

import pytest
import torch

from augane.config import validate_config
from augane.errors import ConfigError
from augane.losses import weighted_total


def test_paper_weights_from_the_schema():
    weights = validate_config({})["losses"]["weights"]
    terms = {name: torch.tensor(1.0) for name in weights}
    expected = 0.75 + 0.25 + 0.75 + 1e-5 + 0.1 + weights["reg_camera"]
    assert weighted_total(terms, weights).item() == pytest.approx(expected)


def test_weighted_sum_and_zero_weights_left_out():
    terms = {"a": torch.tensor(2.0, requires_grad=True), "b": torch.tensor(float("nan"))}
    total = weighted_total(terms, {"a": 0.5, "b": 0.0})
    assert total.item() == 1.0
    total.backward()
    assert terms["a"].grad.item() == 0.5


def test_names_are_checked():
    with pytest.raises(ConfigError, match=r"\['c'\] have no weight"):
        weighted_total({"a": torch.tensor(1.0), "c": torch.tensor(1.0)}, {"a": 1.0})
    with pytest.raises(ConfigError, match=r"non-zero weights to \['au_feature'\]"):
        weighted_total({"a": torch.tensor(1.0)}, {"a": 1.0, "au_feature": 0.75})
    assert weighted_total({"a": torch.tensor(1.0)}, {"a": 1.0, "au_feature": 0.0}).item() == 1.0
    with pytest.raises(ConfigError, match="nothing to train"):
        weighted_total({"a": torch.tensor(1.0)}, {"a": 0.0})
