"""``augane reconstruct`` from the command line: options, outputs, exit status and messages."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from augane.cli.main import main
from augane.io.images import write_image
from tests.evaluate.worlds import media_world  # noqa: F401 - fixture


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(media_world, tmp_path, **reconstruct) -> str:
    config = media_world.fresh_config()
    config["reconstruct"].update(reconstruct)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_reconstruct_a_photo_with_config_defaults_and_options(media_world, tmp_path):
    import skimage.data

    write_image(tmp_path / "photo.jpg", skimage.data.astronaut())
    config = _config(media_world, tmp_path, checkpoint=str(media_world.checkpoint), mesh="ply")
    assert main(["reconstruct", str(tmp_path / "photo.jpg"), "--out-dir", str(tmp_path / "out"), "--config", config,
                 "--threads", "1"]) == 0
    assert (tmp_path / "out" / "photo" / "000000.ply").is_file()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["method"] == "augane" and summary["settings"]["mesh"] == "ply"
    assert main(["reconstruct", str(tmp_path / "photo.jpg"), "--out-dir", str(tmp_path / "deca"), "--config", config,
                 "--method", "deca", "--mesh", "none"]) == 0
    assert not list((tmp_path / "deca" / "photo").glob("*.ply"))


def test_nothing_reconstructed_exits_1_saying_why(media_world, tmp_path, caplog):
    (tmp_path / "clip.mov").write_bytes(b"garbage" * 100)
    status = main(["reconstruct", str(tmp_path / "clip.mov"), "--out-dir", str(tmp_path / "out"), "--method", "deca",
                   "--config", _config(media_world, tmp_path)])
    assert status == 1
    assert "nothing was reconstructed" in caplog.text and "cannot be opened" in caplog.text
    assert (tmp_path / "out" / "frames.csv").is_file()


def test_augane_without_a_trained_checkpoint_says_how_to_get_one(media_world, tmp_path, caplog, monkeypatch):
    import skimage.data

    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "photo.png", skimage.data.astronaut())
    status = main(["reconstruct", "photo.png", "--out-dir", "out", "--config", _config(media_world, tmp_path)])
    assert status == 1
    assert "no GANE checkpoint at results/train/media/checkpoints/best.pt" in caplog.text
