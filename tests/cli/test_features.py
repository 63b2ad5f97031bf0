"""`augane dev-weights`, `augane features` and `augane gather-features` from the command line."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import yaml

from augane.cli.main import main
from augane.io.manifest import write_manifest
from augane.io.shards import open_store
from augane.preprocess.status import Status
from tests.features.tiny_shards import photo_crops, write_preprocess_store


def test_untrained_weights_through_the_stage(tmp_path, astronaut, caplog, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = {
        "device": "cpu",
        "seed": 1,
        "datasets": {"tiny": {"type": "images", "path": "."}},
        "resources": {
            "deca": {"backbone": "resnet18", "input_size": 64, "checkpoint": "dev/untrained_deca_model.tar"},
            "au_detector": {"backbone": "resnet18", "variant": "megraphau_disfa", "head": "mefl", "resize": 72,
                            "input_size": 64, "checkpoint": "dev/untrained_au_detector.pth"},
            "emoca": {"backbone": "resnet18"},
        },
        "features": {"batch_size": 4},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    with caplog.at_level(logging.WARNING):
        assert main(["dev-weights", "--untrained", "--config", "config.yaml", "--out-dir", "dev"]) == 0
    assert "NOT pretrained" in caplog.text
    assert sorted(path.name for path in (tmp_path / "dev").iterdir()) == [
        "untrained_au_detector.pth", "untrained_deca_model.tar", "untrained_emoca.ckpt"
    ]

    cache = tmp_path / "results" / "cache" / "tiny"
    manifest = pd.DataFrame({"sample_id": ["x", "y"], "source": ["x.png", "y.png"], "frame": [-1, -1],
                             "subject": ["", ""], "shard": np.zeros(2, np.int32), "row": np.arange(2, dtype=np.int32)})
    write_manifest(cache / "manifest.parquet", manifest, "tiny", shard_size=2)
    write_preprocess_store(cache / "shard-0000" / "preprocess.zarr", photo_crops(astronaut, 2),
                           [Status.OK, Status.TOO_SMALL], ["x", "y"])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main(["features", "--config", "config.yaml", "--dataset", "tiny", "--shard", "0"]) == 0
    assert "UNTRAINED development weights" in caplog.text
    store = open_store(cache / "shard-0000" / "features.zarr")
    assert store.attrs["untrained_weights"] is True and store["au_prob"].shape == (2, 8)
    assert store.attrs["networks"]["au_detector"]["checkpoint"] == "untrained_au_detector.pth"

    assert main(["gather-features", "--manifest", str(cache / "manifest.parquet"), "--out", str(cache / "features.parquet")]) == 0
    table = pd.read_parquet(cache / "features.parquet")
    assert table["valid"].tolist() == [True, False]
    assert [column for column in table.columns if column.startswith("prob_")] == [
        "prob_AU1", "prob_AU2", "prob_AU4", "prob_AU6", "prob_AU9", "prob_AU12", "prob_AU25", "prob_AU26"
    ]


def test_dev_weights_requires_the_untrained_flag(capsys):
    try:
        main(["dev-weights"])
    except SystemExit as exit_:
        assert exit_.code == 2
    assert "--untrained" in capsys.readouterr().err


def test_a_wrong_checkpoint_is_a_clean_error(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({
        "device": "cpu", "datasets": {"tiny": {"type": "images", "path": "."}},
        "resources": {"deca": {"checkpoint": "missing.tar"}, "au_detector": {"checkpoint": "missing.pth"}},
    }))
    write_preprocess_store(tmp_path / "p.zarr", np.zeros((1, 8, 8, 3), np.uint8), [Status.OK], ["a"])
    with caplog.at_level(logging.ERROR):
        code = main(["features", "--config", "config.yaml", "--dataset", "tiny", "--shard", "0",
                     "--preprocess", "p.zarr", "--out", "f.zarr"])
    assert code == 1 and "checkpoint missing.pth does not exist" in caplog.text
