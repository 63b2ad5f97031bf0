"""``augane train`` end to end on the tiny world: outputs, checkpoints, resume after an interruption, refusals."""

from __future__ import annotations

import json
import os
import signal

import pandas as pd
import pytest
import torch

from augane.cli.main import main
from augane.errors import CheckpointError, ConfigError
from augane.train.checkpoint import load_gane_checkpoint, read_gane_checkpoint
from augane.train.records import STEP_COLUMNS
from augane.train.trainer import Trainer, TrainingInterrupted, train_gane


def write_config(config, path):
    path.write_text(json.dumps(config))
    return path


def test_two_step_cli_run_writes_checkpoints_tables_curves_and_summary(world, tmp_path):
    config, cache = world
    run = tmp_path / "run"
    status = main(["train", "--config", str(write_config(config, tmp_path / "config.json")), "--out-dir", str(run),
                   "--cache-root", str(cache), "--set", "train.max_steps=2", "--set", "train.tensorboard=true"])
    assert status == 0
    for name in ("checkpoints/best.pt", "checkpoints/last.pt", "config.json", "summary.json", "train_steps.csv",
                 "validation.csv", "loss_curves.png"):
        assert (run / name).is_file(), name
    assert (run / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    steps = pd.read_csv(run / "train_steps.csv")
    assert list(steps.columns) == list(STEP_COLUMNS) and steps["step"].tolist() == [1, 2]
    assert steps[["loss", "au_landmark", "au_relative", "au_feature", "reg_pose"]].notna().all().all()
    assert (steps["samples"] == 4).all()
    validation = pd.read_csv(run / "validation.csv")
    assert set(validation["method"]) == {"gane", "deca"}
    assert {"landmark_nme", "au_feature", "expression_error", "vertex_error_mm", "loss"} <= set(validation["metric"])

    gane, metadata = load_gane_checkpoint(run / "checkpoints" / "best.pt")
    assert metadata.training["step"] == 2 and metadata.config["train"]["max_steps"] == 2
    assert metadata.layout.node_dim == 32 and metadata.layout.num_aus == 27 and metadata.layout.image_size == 32
    assert metadata.code["augane_version"]
    assert metadata.cache_networks["tiny"]["untrained_weights"] is True
    last = read_gane_checkpoint(run / "checkpoints" / "last.pt")
    assert last["optimizer"]["state"] and len(last["rng"]) == 1 and "best_state_dict" in last

    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["finished"] and summary["untrained_networks"]
    final = summary["final_validation"]
    for method in ("gane", "deca"):
        assert {"landmark_nme", "expression_error", "vertex_error_mm", "au_agreement"} <= set(final[method])
    assert final["gane_minus_deca"]["loss"] == pytest.approx(final["gane"]["loss"] - final["deca"]["loss"])
    assert json.loads((run / "config.json").read_text())["train"]["max_steps"] == 2


def _weights(path):
    content = read_gane_checkpoint(path)
    return content["state_dict"], content["optimizer"]


def test_interrupted_run_resumes_to_the_same_weights_as_an_uninterrupted_one(world, tmp_path, monkeypatch):
    config, cache = world
    config["train"]["max_steps"] = 5  # epochs of 3 global batches (4, 4, 1): crosses an epoch and a validation
    straight = train_gane(config, out_dir=tmp_path / "straight", cache_root=cache)

    original = Trainer._train_step

    def interrupt_after_second(self, batch, part):
        result = original(self, batch, part)
        if self.progress.step == 1:  # the step being taken is the second
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    monkeypatch.setattr(Trainer, "_train_step", interrupt_after_second)
    with pytest.raises(TrainingInterrupted, match="step 2.*last.pt was written"):
        train_gane(config, out_dir=tmp_path / "resumed", cache_root=cache)
    monkeypatch.setattr(Trainer, "_train_step", original)
    assert read_gane_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")["training"]["step"] == 2
    resumed = train_gane(config, out_dir=tmp_path / "resumed", cache_root=cache)

    assert resumed["steps"] == straight["steps"] == 5
    weights, optimizer = _weights(tmp_path / "straight" / "checkpoints" / "last.pt")
    weights_again, optimizer_again = _weights(tmp_path / "resumed" / "checkpoints" / "last.pt")
    for name, value in weights.items():
        torch.testing.assert_close(weights_again[name], value, rtol=0, atol=1e-7, msg=name)
    for index, state in optimizer["state"].items():
        torch.testing.assert_close(optimizer_again["state"][index]["exp_avg_sq"], state["exp_avg_sq"], rtol=0, atol=1e-9)
    columns = [column for column in STEP_COLUMNS if column != "seconds"]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "resumed" / "train_steps.csv")[columns],
                                  pd.read_csv(tmp_path / "straight" / "train_steps.csv")[columns])
    assert resumed["final_validation"]["gane"]["loss"] == pytest.approx(straight["final_validation"]["gane"]["loss"])

    # Changed training settings: --resume refuses, the automatic mode starts again.
    config["train"]["lr"] = 5e-4
    with pytest.raises(CheckpointError, match=r"--resume: cannot resume from .*last\.pt.*other training settings"):
        train_gane(config, out_dir=tmp_path / "resumed", cache_root=cache, resume="always")
    config["train"]["max_steps"] = 1
    fresh = train_gane(config, out_dir=tmp_path / "resumed", cache_root=cache)
    assert fresh["steps"] == 1
    assert pd.read_csv(tmp_path / "resumed" / "train_steps.csv")["step"].tolist() == [1]


def test_resume_without_a_checkpoint_and_without_validation(world, tmp_path):
    config, cache = world
    with pytest.raises(CheckpointError, match=r"--resume: .*last\.pt does not exist"):
        train_gane(config, out_dir=tmp_path / "run", cache_root=cache, resume="always")
    config["train"].update(val_fraction=0.0, max_steps=1)
    summary = train_gane(config, out_dir=tmp_path / "run", cache_root=cache)
    assert summary["validation_samples"] == 0 and summary["train_samples"] == 12
    best = read_gane_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    last = read_gane_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    for name, value in last["state_dict"].items():
        assert torch.equal(best["state_dict"][name], value)


def test_validation_on_whole_held_out_datasets(world, tmp_path):
    config, cache = world
    config["train"].update(val_datasets=["tiny_heldout"], max_steps=1)
    summary = train_gane(config, out_dir=tmp_path / "run", cache_root=cache)
    assert summary["train_samples"] == 12 and summary["validation_samples"] == 5
    config["train"]["val_datasets"] = ["tiny"]
    with pytest.raises(ConfigError, match=r"val_datasets \['tiny'\] are also in train.datasets"):
        train_gane(config, out_dir=tmp_path / "run", cache_root=cache)
    config["train"]["val_datasets"] = ["nowhere"]
    with pytest.raises(ConfigError, match=r"train.val_datasets names \['nowhere'\], which are not declared"):
        train_gane(config, out_dir=tmp_path / "run", cache_root=cache)


@pytest.mark.cuda
def test_two_steps_on_cuda(world, tmp_path):
    config, cache = world
    config["device"] = "cuda"
    config["train"].update(max_steps=2, num_workers=1)
    summary = train_gane(config, out_dir=tmp_path / "run", cache_root=cache)
    assert summary["device"] == "cuda" and summary["precision"] == "bf16" and summary["steps"] == 2
    steps = pd.read_csv(tmp_path / "run" / "train_steps.csv")
    assert steps["loss"].notna().all()
    gane, _ = load_gane_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", map_location="cuda")
    assert next(gane.parameters()).is_cuda
