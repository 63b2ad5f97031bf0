"""GANE checkpoints: round trip through weights-only loading, metadata, layout checks, refusals, random states."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
import torch

from augane.config import validate_config
from augane.errors import CheckpointError
from augane.model import GANE
from augane.train.checkpoint import (
    capture_rng_state,
    load_gane_checkpoint,
    read_gane_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from augane.train.dataset import CacheLayout

LAYOUT = CacheLayout(
    detector_aus=(1, 2, 4, "L1"),
    afg_aus=(1, 2, 4),
    node_dim=8,
    global_dim=12,
    param_layout=(("shape", 4), ("tex", 2), ("exp", 5), ("pose", 6), ("cam", 3), ("light", 27)),
    image_size=16,
)


def small_model() -> tuple[GANE, dict]:
    config = validate_config({"model": {"transformer": {"layers": 1, "heads": 2, "feedforward": 16}}})
    torch.manual_seed(0)
    section = config["model"]
    return GANE.from_config(section, 3, 8, 12, expression_dim=5), config


def inputs(batch: int = 2):
    generator = torch.Generator().manual_seed(1)
    deca = {"exp": torch.randn(batch, 5, generator=generator), "pose": torch.zeros(batch, 6),
            "cam": torch.tensor([[7.0, 0.0, 0.0]]).repeat(batch, 1)}
    return torch.randn(batch, 3, 8, generator=generator), torch.randn(batch, 12, generator=generator), deca


def test_round_trip_restores_the_model_and_metadata(tmp_path):
    gane, config = small_model()
    with torch.no_grad():
        for parameter in gane.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))  # away from the zero-initialised heads
    optimizer = torch.optim.Adam(gane.parameters(), lr=1e-3)
    path = save_checkpoint(
        tmp_path / "ckpt" / "best.pt", gane, model_section=config["model"], layout=LAYOUT, config=config,
        training={"epoch": 2, "step": 7, "batch_in_epoch": 0}, optimizer=optimizer,
        rng_states=[capture_rng_state()], metrics={"gane": {"landmark_nme": 0.1}},
        cache_networks={"au_detector": {"sha256": "ab"}},
    )
    assert not list(path.parent.glob(".*tmp*"))  # written through a renamed temporary
    torch.load(path, weights_only=True)  # plain content only
    loaded, metadata = load_gane_checkpoint(path, layout=LAYOUT)
    assert not loaded.training
    gane.eval()
    afg, feature, deca = inputs()
    expected, got = gane(afg, feature, deca), loaded(afg, feature, deca)
    for name in ("exp", "pose", "cam"):
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0)
    assert metadata.layout == LAYOUT and metadata.expression_dim == 5
    assert metadata.training["step"] == 7 and metadata.metrics["gane"]["landmark_nme"] == 0.1
    assert metadata.code["augane_version"] and metadata.code["torch_version"] == torch.__version__
    assert metadata.cache_networks["au_detector"]["sha256"] == "ab"
    assert metadata.config["model"] == config["model"]
    assert read_gane_checkpoint(path)["optimizer"]["param_groups"][0]["lr"] == 1e-3


def test_distributed_prefix_is_stripped(tmp_path):
    gane, config = small_model()
    path = save_checkpoint(tmp_path / "a.pt", gane, model_section=config["model"], layout=LAYOUT, config=config,
                           training={})
    content = torch.load(path, weights_only=True)
    content["state_dict"] = {f"module.{key}": value for key, value in content["state_dict"].items()}
    torch.save(content, path)
    loaded, _ = load_gane_checkpoint(path)
    for key, value in gane.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_refuses_files_that_are_not_gane_checkpoints(tmp_path):
    gane, config = small_model()
    with pytest.raises(CheckpointError, match=r"missing\.pt does not exist"):
        load_gane_checkpoint(tmp_path / "missing.pt")
    bare = tmp_path / "bare.pt"
    torch.save(gane.state_dict(), bare)
    with pytest.raises(CheckpointError, match=r"bare\.pt is not a GANE checkpoint"):
        load_gane_checkpoint(bare)
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"text\.pt is not a readable GANE checkpoint"):
        load_gane_checkpoint(text)
    path = save_checkpoint(tmp_path / "v.pt", gane, model_section=config["model"], layout=LAYOUT, config=config,
                           training={})
    content = torch.load(path, weights_only=True)
    torch.save({**content, "format_version": 99}, path)
    with pytest.raises(CheckpointError, match=r"v\.pt: GANE checkpoint format version 99"):
        load_gane_checkpoint(path)
    content["state_dict"].pop("query_token")
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=r"v\.pt: weights do not fit.*query_token"):
        load_gane_checkpoint(path)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "augane-gane", "payload": random.Random(0)}, path)
    with pytest.raises(CheckpointError, match="weights-only"):
        read_gane_checkpoint(path)


def test_layout_mismatch_names_the_file_and_the_difference(tmp_path):
    gane, config = small_model()
    path = save_checkpoint(tmp_path / "best.pt", gane, model_section=config["model"], layout=LAYOUT, config=config,
                           training={})
    other = replace(LAYOUT, afg_aus=(1, 2, 5), node_dim=16)
    with pytest.raises(CheckpointError, match=r"best\.pt was trained on cached features of another layout.*"
                                              r"AFG node AUs \[1, 2, 5\].*d = 16 instead of 8"):
        load_gane_checkpoint(path, layout=other)
    # The detector's other outputs and the crop size do not matter to GANE itself.
    load_gane_checkpoint(path, layout=replace(LAYOUT, detector_aus=(1, 2, 4), image_size=224))


def test_random_states_round_trip():
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    state = capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9)
    np.random.seed(9)
    random.seed(9)
    restore_rng_state(state)
    got = (torch.rand(3), np.random.rand(3), random.random())
    torch.testing.assert_close(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[2] == expected[2]
