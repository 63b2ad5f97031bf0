"""Networks written in the released formats read back through the release loaders; untrained files say so."""

from __future__ import annotations

import logging

import torch

from augane.nets.checkpoint import UNTRAINED_MARKER, read_checkpoint
from augane.nets.deca import DecaCoarseEncoder, load_deca
from augane.nets.emoca import EmocaCoarse, load_emoca
from augane.nets.mefarg import MEFARG, load_au_detector
from augane.nets.release_format import save_au_detector_checkpoint, save_deca_checkpoint, save_emoca_checkpoint


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (key, left), right in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(left, right, msg=key)


def test_round_trips(tmp_path):
    torch.manual_seed(0)
    deca = DecaCoarseEncoder("resnet18", hidden=256)
    save_deca_checkpoint(deca, tmp_path / "deca_model.tar")
    assert set(read_checkpoint(tmp_path / "deca_model.tar")) == {"E_flame"}
    _same_weights(deca, load_deca(tmp_path / "deca_model.tar"))

    for parallel in (False, True):
        emoca = EmocaCoarse("resnet18", hidden=256, expression_outputs=56, parallel=parallel)
        save_emoca_checkpoint(emoca, tmp_path / "emoca.ckpt")
        loaded = load_emoca(tmp_path / "emoca.ckpt")
        assert loaded.parallel == parallel and loaded.pose_outputs == 6
        _same_weights(emoca, loaded)

    detector = MEFARG("megraphau_bp4d", "mefl", "resnet18", channels=64)
    save_au_detector_checkpoint(detector, tmp_path / "au.pth", epoch=3)
    content = read_checkpoint(tmp_path / "au.pth")
    assert content["epoch"] == 3 and "head.edge_fc.weight" in content["state_dict"]
    loaded = load_au_detector(tmp_path / "au.pth", "megraphau_bp4d", head="mefl")
    assert loaded.channels == 64
    _same_weights(detector, loaded)


def test_untrained_files_are_marked_and_loaders_warn(tmp_path, caplog):
    save_deca_checkpoint(DecaCoarseEncoder("resnet18"), tmp_path / "untrained_deca_model.tar", untrained=True)
    assert "NOT pretrained" in read_checkpoint(tmp_path / "untrained_deca_model.tar")[UNTRAINED_MARKER]
    with caplog.at_level(logging.WARNING):
        encoder = load_deca(tmp_path / "untrained_deca_model.tar")
    assert "UNTRAINED random weights" in caplog.text
    assert encoder.checkpoint_info.untrained and encoder.checkpoint_info.ignored_entries == []
    assert encoder.checkpoint_info.provenance()["untrained"] is True
