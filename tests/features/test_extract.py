"""The batch extractor: fixed-size padding for compiled networks, and the CUDA path against the CPU one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augane.features.extract import FeatureExtractor
from augane.features.networks import load_feature_networks
from augane.features.runtime import InferenceSettings
from tests.features.tiny_shards import photo_crops, tiny_config


@pytest.fixture(scope="module")
def networks_config(tmp_path_factory):
    return tiny_config(tmp_path_factory.mktemp("networks"), emoca=True)


def test_padding_to_a_fixed_batch_keeps_outputs_and_count(networks_config, astronaut, monkeypatch):
    crops = photo_crops(astronaut, 3)
    plain = FeatureExtractor(load_feature_networks(networks_config), InferenceSettings(torch.device("cpu"), batch_size=8))
    compiled_shapes = []

    def fake_compile(module, **kwargs):
        def run(images):
            compiled_shapes.append(images.shape[0])
            return module(images)
        return run

    monkeypatch.setattr(torch, "compile", fake_compile)
    padded = FeatureExtractor(load_feature_networks(networks_config),
                              InferenceSettings(torch.device("cpu"), batch_size=8, compile=True))
    expected, got = plain(crops), padded(crops)
    assert set(compiled_shapes) == {8}
    assert got.au_prob.shape == (3, 41) and got.emoca_exp.shape == (3, 50)
    np.testing.assert_allclose(got.au_prob, expected.au_prob, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got.deca_params, expected.deca_params, rtol=1e-4, atol=1e-5)


@pytest.mark.cuda
def test_cuda_bf16_channels_last_matches_cpu(networks_config, astronaut):
    crops = photo_crops(astronaut, 4)
    cpu = FeatureExtractor(load_feature_networks(networks_config),
                           InferenceSettings(torch.device("cpu"), bf16=False, channels_last=False, batch_size=4))(crops)
    cuda = FeatureExtractor(load_feature_networks(networks_config),
                            InferenceSettings(torch.device("cuda"), bf16=True, channels_last=True, batch_size=4))(crops)
    assert cuda.afg.dtype == np.float16 and cuda.au_prob.dtype == np.float32
    np.testing.assert_allclose(cuda.au_prob, cpu.au_prob, atol=0.03)
    np.testing.assert_allclose(cuda.deca_params, cpu.deca_params, rtol=0.05, atol=0.05)
