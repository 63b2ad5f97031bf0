"""Checkpoint files are read without running their code and loaded strictly, with errors that name keys and files."""

from __future__ import annotations

import hashlib
import logging

import pytest
import torch
from torch import nn

from augane.errors import CheckpointError
from augane.nets import checkpoint
from augane.nets.checkpoint import (
    ForeignObject,
    KnownRelease,
    check_release,
    find_state_dict,
    load_state_dict_strict,
    read_checkpoint,
    sha256_file,
)


class _OpensFileWhenUnpickled:
    """Unpickling this calls ``open(marker, "w")``: a stand-in for code a malicious file would run."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _LightningCallback:
    """A class the file names as a dict key, as PyTorch Lightning's callback state does."""


def _small_network() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_weights_only_file_reads_directly(tmp_path):
    state = _small_network().state_dict()
    torch.save({"epoch": 3, "state_dict": state}, tmp_path / "a.pth")
    content = read_checkpoint(tmp_path / "a.pth")
    assert content["epoch"] == 3
    torch.testing.assert_close(content["state_dict"]["0.weight"], state["0.weight"])


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_foreign_objects_become_inert_records_and_never_run(tmp_path, zip_format):
    marker = tmp_path / "code-was-run"
    state = _small_network().state_dict()
    content = {
        "state_dict": state,
        "callbacks": {_LightningCallback: {"best_model_score": torch.tensor(0.25)}},
        "trap": _OpensFileWhenUnpickled(str(marker)),
    }
    torch.save(content, tmp_path / "lightning.ckpt", _use_new_zipfile_serialization=zip_format)
    loaded = read_checkpoint(tmp_path / "lightning.ckpt")
    assert not marker.exists()
    assert isinstance(loaded["trap"], ForeignObject)
    (callback_type,) = loaded["callbacks"]
    assert issubclass(callback_type, ForeignObject) and callback_type.type_name.endswith("_LightningCallback")
    torch.testing.assert_close(loaded["state_dict"]["2.bias"], state["2.bias"])


def test_unreadable_files_raise_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "absent.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"text\.pth is not a readable torch checkpoint"):
        read_checkpoint(tmp_path / "text.pth")


def test_find_state_dict_accepts_bare_and_nested_and_names_entries():
    state = _small_network().state_dict()
    assert find_state_dict(state, "f").keys() == state.keys()
    assert find_state_dict({"epoch": 1, "state_dict": state}, "f").keys() == state.keys()
    with pytest.raises(CheckpointError, match=r"f.pth holds no state dict.*\['epoch', 'weights'\]"):
        find_state_dict({"epoch": 1, "weights": [1, 2]}, "f.pth")


def test_strict_load_strips_module_prefix_and_tolerates_missing_batch_counters():
    source = _small_network()
    state = {f"module.{key}": value for key, value in source.state_dict().items() if "num_batches_tracked" not in key}
    target = _small_network()
    report = load_state_dict_strict(target, state, "model.pth")
    assert report.defaulted == ["1.num_batches_tracked"]
    for key, value in source.state_dict().items():
        if "num_batches_tracked" not in key:
            torch.testing.assert_close(target.state_dict()[key], value)


def test_mismatches_are_listed_by_kind_with_the_file():
    state = dict(_small_network().state_dict())
    state["0.extra"] = torch.zeros(1)
    state["2.weight"] = torch.zeros(3, 4)
    del state["1.running_mean"]
    with pytest.raises(CheckpointError) as error:
        load_state_dict_strict(_small_network(), state, "release.pth", network="toy")
    message = str(error.value)
    assert "release.pth does not fit toy" in message
    assert "1 missing: 1.running_mean" in message
    assert "1 unexpected: 0.extra" in message
    assert "1 mis-shaped: 2.weight (file (3, 4), network (2, 4))" in message


def test_ignored_and_kept_prefixes_are_reported():
    inner = _small_network()
    state = {f"deca.E_flame.{key}": value for key, value in inner.state_dict().items()}
    state["deca.E_detail.x"] = torch.zeros(2)
    state["deca.flame.v_template"] = torch.zeros(5, 3)
    report = load_state_dict_strict(
        _small_network(), state, "x.ckpt", rename=lambda key: key.removeprefix("deca.E_flame."),
        keep_prefixes=("deca.E_flame.",),
    )
    assert sorted(report.ignored) == ["deca.E_detail.x", "deca.flame.v_template"]


def test_sha256_and_release_check(tmp_path, monkeypatch, caplog):
    path = tmp_path / "deca_model.tar"
    path.write_bytes(b"some bytes")
    expected = hashlib.sha256(b"some bytes").hexdigest()
    assert sha256_file(path) == expected
    monkeypatch.setitem(checkpoint.KNOWN_RELEASES, "deca_model.tar", KnownRelease("DECA", "0" * 64))
    with caplog.at_level(logging.WARNING, logger="augane.nets.checkpoint"):
        assert check_release(path) == expected
    assert "this is not the released file" in caplog.text
    caplog.clear()
    monkeypatch.setitem(checkpoint.KNOWN_RELEASES, "deca_model.tar", KnownRelease("DECA", expected))
    with caplog.at_level(logging.WARNING, logger="augane.nets.checkpoint"):
        check_release(path)
    assert caplog.text == ""
