"""The shared reconstruction path: each method's parameters through the training objective, render and detector."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from augane.errors import CheckpointError, ConfigError, DataError
from augane.evaluate.cached_frames import CachedFrames
from augane.evaluate.inputs import input_table
from augane.evaluate.reconstruction import (
    Reconstructor,
    check_method,
    default_checkpoint,
    describe_networks_mismatch,
)
from augane.train.objective import deca_estimate
from tests.evaluate.tiny_disfa import NO_FACE
from tests.evaluate.worlds import tiny_disfa  # noqa: F401 - fixture


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _first_batch(world):
    index = pd.read_parquet(world.cache_dir / "index.parquet")
    features = pd.read_parquet(world.cache_dir / "features.parquet")
    frames = input_table(index, features)
    cached = CachedFrames(world.cache_dir, frames)
    return cached, next(cached.batches(16))


def test_deca_reconstruction_is_decas_cached_estimate_rendered_over_the_crop(tiny_disfa):
    cached, part = _first_batch(tiny_disfa)
    reconstructor = Reconstructor.from_config(tiny_disfa.config, "deca", cached.layout, torch.device("cpu"))
    result = reconstructor(part.batch)
    for name, value in deca_estimate(part.batch).items():
        torch.testing.assert_close(result.params[name], value)
    image, mask = result.render.image, result.render.mask
    assert image.shape == part.batch["image"].shape
    outside = (mask == 0).expand_as(image)
    # compositing over the crop, as in training: the crop shows wherever the face is not drawn
    torch.testing.assert_close(image[outside], part.batch["image"][outside])
    assert mask.mean() > 0.05
    assert result.rendered_prob.shape == part.batch["au_prob"].shape


def test_emoca_with_the_true_face_reproduces_the_input_crop_and_its_detector_scores(tiny_disfa):
    cached, part = _first_batch(tiny_disfa)
    reconstructor = Reconstructor.from_config(tiny_disfa.config, "emoca", cached.layout, torch.device("cpu"))
    result = reconstructor(part.batch)
    # the tiny world's EMOCA cache holds the true expression and pose, and DECA's camera is the true one x 1.0
    assert result.params["exp"].equal(part.batch["emoca_exp"])
    assert result.params["pose"].equal(part.batch["emoca_pose"])
    assert (result.render.image - part.batch["image"]).abs().max() < 0.5
    torch.testing.assert_close(result.rendered_prob, part.batch["au_prob"], atol=0.02, rtol=0)


def test_augane_runs_gane_from_the_checkpoint(tiny_disfa):
    cached, part = _first_batch(tiny_disfa)
    augane = Reconstructor.from_config(tiny_disfa.config, "augane", cached.layout, torch.device("cpu"),
                                       checkpoint=tiny_disfa.checkpoint)
    result = augane(part.batch)
    deca = deca_estimate(part.batch)
    assert not torch.allclose(result.params["exp"], deca["exp"])
    expected = augane.step.gane(part.batch["afg"], part.batch["deca_feature"], deca)
    torch.testing.assert_close(result.params["exp"], expected["exp"])
    assert augane.checkpoint.path == tiny_disfa.checkpoint


def test_missing_checkpoint_says_how_to_get_one(tiny_disfa, tmp_path):
    cached, _ = _first_batch(tiny_disfa)
    with pytest.raises(CheckpointError, match=r"no GANE checkpoint at .*snakemake train.*--method deca"):
        Reconstructor.from_config(tiny_disfa.config, "augane", cached.layout, torch.device("cpu"),
                                  checkpoint=tmp_path / "best.pt")
    assert default_checkpoint(tiny_disfa.config).as_posix() == "results/train/tiny/checkpoints/best.pt"


def test_checkpoint_for_another_feature_layout_is_refused(tiny_disfa):
    from dataclasses import replace

    cached, _ = _first_batch(tiny_disfa)
    other = replace(cached.layout, global_dim=cached.layout.global_dim * 2)
    with pytest.raises(CheckpointError, match="another layout"):
        Reconstructor.from_config(tiny_disfa.config, "augane", other, torch.device("cpu"),
                                  checkpoint=tiny_disfa.checkpoint)


def test_emoca_without_cached_emoca_is_a_clear_error(tiny_disfa):
    cached, part = _first_batch(tiny_disfa)
    reconstructor = Reconstructor.from_config(tiny_disfa.config, "emoca", cached.layout, torch.device("cpu"))
    batch = {key: value for key, value in part.batch.items() if not key.startswith("emoca")}
    with pytest.raises(DataError, match="resources.emoca.checkpoint"):
        reconstructor(batch)


def test_unknown_method_and_network_mismatch():
    with pytest.raises(ConfigError, match="unknown reconstruction method 'smirk'"):
        check_method("smirk")
    trained = {"demo": {"networks": {"deca": {"sha256": "a" * 64}, "au_detector": {"sha256": "b" * 64}}}}
    assert describe_networks_mismatch(trained, {"deca": {"sha256": "a" * 64}, "au_detector": {"sha256": "b" * 64}}) == []
    problems = describe_networks_mismatch(trained, {"deca": {"sha256": "c" * 64}})
    assert len(problems) == 1 and problems[0].startswith("deca: GANE was trained on features of 'demo'")


def test_cached_frames_lists_frames_without_a_face(tiny_disfa):
    index = pd.read_parquet(tiny_disfa.cache_dir / "index.parquet")
    frames = input_table(index, pd.read_parquet(tiny_disfa.cache_dir / "features.parquet"))
    cached = CachedFrames(tiny_disfa.cache_dir, frames)
    parts = list(cached.batches(3))
    assert all(len(part) <= 3 for part in parts)
    read = pd.concat([part.keys for part in parts])
    assert len(read) == len(frames) - 1
    assert cached.unusable[["subject", "frame"]].values.tolist() == [list(NO_FACE)]
    assert cached.unusable["reason"].iloc[0] == "preprocess status no_face"
    assert cached.has_emoca
    assert parts[0].batch["deca_params"]["light"].shape[1:] == (9, 3)
    np.testing.assert_array_equal(parts[0].crops[0], (parts[0].batch["image"][0].permute(1, 2, 0) * 255).round().byte())


def test_stale_frames_table_is_refused(tiny_disfa):
    index = pd.read_parquet(tiny_disfa.cache_dir / "index.parquet")
    frames = input_table(index, pd.read_parquet(tiny_disfa.cache_dir / "features.parquet"))
    frames.loc[0, "sample_id"] = "SN009#000000"
    with pytest.raises(DataError, match="frames table is stale"):
        list(CachedFrames(tiny_disfa.cache_dir, frames).batches(4))
