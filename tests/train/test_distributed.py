"""Data-parallel training: global batches split across ranks, and 2 gloo processes under torchrun equal to one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from augane.train.checkpoint import read_gane_checkpoint
from augane.train.dataset import CachedShardDataset, ShardBatchSampler
from augane.train.distributed import ProcessGroup, RankBatchSampler
from augane.train.trainer import train_gane
from tests.train.predictions import movement_from_deca, predict_with_checkpoints


@pytest.mark.parametrize("replicas, batch_size", [(1, 5), (2, 4), (3, 5), (4, 3)])
def test_every_sample_once_per_epoch_in_the_global_batches(world, replicas, batch_size):
    config, cache = world
    dataset = CachedShardDataset.from_config(config, "all", cache_root=cache)
    global_batches = list(ShardBatchSampler(dataset, batch_size, seed=3))
    ranks = [RankBatchSampler(ShardBatchSampler(dataset, batch_size, seed=3), replicas, rank) for rank in range(replicas)]
    parts = [sampler.parts() for sampler in ranks]
    assert all(len(p) == len(global_batches) == len(sampler) for p, sampler in zip(parts, ranks))
    trained = []
    for position, batch in enumerate(global_batches):
        pieces = [p[position] for p in parts]
        real = [index for piece in pieces for index in piece.indices[: piece.size]]
        assert real == batch  # the ranks' parts, in rank order, are the global batch
        assert sum(piece.loss_scale(replicas) for piece in pieces) == pytest.approx(replicas)
        for piece in pieces:
            assert piece.global_size == len(batch) and piece.indices  # a stand-in where a part would be empty
        trained.extend(real)
    assert sorted(trained) == list(range(len(dataset)))
    for sampler, rank_parts in zip(ranks, parts):
        sampler.set_start(2)
        assert list(sampler) == [part.indices for part in rank_parts[2:]]
        sampler.set_epoch(1)
        assert sampler.start == 0 and sampler.parts() != rank_parts


def test_single_process_group_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    group = ProcessGroup.from_environment(torch.device("cpu"))
    assert not group.distributed and group.is_main
    assert group.any(True) and not group.any(False)
    assert group.gather_objects({"a": 1}) == [{"a": 1}]
    values = torch.tensor([1.0, 2.0])
    assert torch.equal(group.all_reduce_sum(values), values)


@pytest.mark.slow
def test_two_gloo_processes_under_torchrun_train_like_one(world, tmp_path):
    config, cache = world
    config["train"]["max_steps"] = 4  # the third global batch has one sample: one rank trains on a stand-in of weight 0
    single = train_gane(config, out_dir=tmp_path / "single", cache_root=cache)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "augane.cli.main", "train", "--config", str(config_path), "--out-dir", str(tmp_path / "ddp"),
        "--cache-root", str(cache), "--threads", "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    one = read_gane_checkpoint(tmp_path / "single" / "checkpoints" / "last.pt")
    two = read_gane_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    assert two["training"]["world_size"] == 2 and len(two["rng"]) == 2
    assert two["training"]["step"] == one["training"]["step"] == 4
    # Same steps: per-step losses of the global batches agree to float precision.
    steps_one = pd.read_csv(tmp_path / "single" / "train_steps.csv")
    steps_two = pd.read_csv(tmp_path / "ddp" / "train_steps.csv")
    assert steps_two["samples"].tolist() == steps_one["samples"].tolist() == [4, 4, 1, 4]
    np.testing.assert_allclose(steps_two["loss"], steps_one["loss"], rtol=2e-5)
    # Same model: predictions agree three orders of magnitude below how far training moved them (Adam turns
    # float-rounding differences of the reduced gradients into steps, so bitwise equality is not expected).
    batch, (ours, theirs) = predict_with_checkpoints(
        config, cache, [tmp_path / run / "checkpoints" / "last.pt" for run in ("single", "ddp")])
    for name in ("exp", "pose", "cam"):
        moved = movement_from_deca(batch, ours, name)
        assert moved > 1e-2, name
        torch.testing.assert_close(theirs[name], ours[name], rtol=0, atol=1e-3 * moved, msg=name)
    # Same weights, entry by entry, except where Adam turns float noise into steps: gradients that are zero in
    # exact arithmetic (attention key biases, which softmax ignores) get updates of up to lr from rounding alone.
    lr, close, total = config["train"]["lr"], 0, 0
    for name, value in one["state_dict"].items():
        difference = (two["state_dict"][name] - value).abs()
        assert difference.max() <= 4 * lr, name
        close += int((difference <= 1e-6 + 1e-5 * value.abs()).sum())
        total += difference.numel()
    assert close / total > 0.99
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["processes"] == 2
    assert summary["final_validation"]["gane"]["loss"] == pytest.approx(single["final_validation"]["gane"]["loss"],
                                                                        rel=1e-4)
