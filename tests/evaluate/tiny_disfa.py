"""A tiny synthetic DISFA-type cache for the reconstruction tests, made here.

Built on the training tests' tiny face model and untrained ResNet-18 AU
detector (:mod:`tests.train.tiny_world`): two subjects, a few frames each,
spread over two shards. Each frame has a true identity, expression, jaw,
camera, albedo and light; its 32-pixel crop is the render of that face over
a grey background, taken from a 64-pixel "video frame" by a similarity
transform (so landmarks must be mapped back through it). The cache holds
what the preprocess and feature stages would write: the crop, its landmarks,
the transform, status, the detector's AU scores and AFG features on the
crop, a "DECA" estimate (half the expression, no jaw), an "EMOCA" estimate
(the true expression and jaw) and random DECA features. One frame has no
face (status no_face, features invalid). The dataset folder holds a
``GroundTruth/<subject>.parquet`` per subject as the demo world writes it.

The GANE written by :func:`gane_checkpoint` is UNTRAINED: random weights with
heads perturbed away from zero, so that its output differs from DECA's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from augane.config import validate_config
from augane.flame.camera import normalised_to_pixels, project
from augane.io.shards import ArraySpec, write_store
from augane.model import GANE
from augane.nets.deca import DECA_PARAM_LAYOUT
from augane.preprocess.crop import apply_transform, invert_transform
from augane.preprocess.status import Status, status_codes
from augane.render.shading import default_light
from augane.train.checkpoint import save_checkpoint
from augane.train.dataset import CacheLayout, parse_au_name
from tests.train.tiny_world import EXPRESSIONS, GLOBAL_DIM, SIZE, detector_file, face_model_files

DATASET = "tiny_disfa"
SUBJECTS = ("SN001", "SN002")
FRAMES = 5
SHARD_SIZE = 6
SOURCE = 64
#: (subject, frame) without a face.
NO_FACE = ("SN002", 3)
#: Crop transform: source pixels -> crop pixels (half size, shifted).
TRANSFORM = np.array([[0.5, 0.0, 2.0], [0.0, 0.5, -1.0]])


def tiny_disfa_config(folder: Path, **evaluate: Any) -> dict[str, Any]:
    """A validated config: the tiny face model, an untrained detector, and the DISFA-type dataset."""
    resources: dict[str, Any] = face_model_files(folder / "face")
    resources["landmark_embedding"] = None
    resources["au_detector"] = {"checkpoint": detector_file(folder), "backbone": "resnet18", "resize": 36,
                                "input_size": SIZE}
    return validate_config({
        "run_name": "tiny",
        "device": "cpu",
        "resources": resources,
        "datasets": {DATASET: {"type": "disfa", "path": str(folder / "disfa")}},
        "model": {"gat": {"layers": 1, "heads": 2}, "transformer": {"layers": 1, "heads": 2, "feedforward": 32,
                                                                     "dropout": 0.0}},
        "evaluate": {"disfa": {"dataset": DATASET, "num_videos": 2, "qualitative_frames": 2, **evaluate}},
    })


def _truth(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    exp = np.zeros((count, 50), np.float32)
    exp[:, :EXPRESSIONS] = rng.normal(0, 1.2, (count, EXPRESSIONS))
    pose = np.zeros((count, 6), np.float32)
    pose[:, :3] = rng.normal(0, 0.05, (count, 3))
    pose[:, 3] = np.abs(rng.normal(0, 0.12, count))
    cam = np.stack([rng.uniform(9.0, 11.0, count), rng.normal(0, 0.005, count), rng.normal(0, 0.005, count)], 1)
    return {
        "shape": (rng.normal(0, 1, (count, 100)) * (np.arange(100) < 10)).astype(np.float32),
        "tex": (rng.normal(0, 1, (count, 50)) * (np.arange(50) < 5)).astype(np.float32),
        "exp": exp,
        "pose": pose,
        "cam": cam.astype(np.float32),
        "light": (default_light(count) * torch.from_numpy(rng.uniform(0.8, 1.1, (count, 1, 1))).float()).numpy(),
    }


@torch.no_grad()
def write_tiny_disfa(config: dict[str, Any], cache_root: Path, seed: int = 3) -> pd.DataFrame:
    """Write ``cache_root/<DATASET>`` (shards, index.parquet, features.parquet) and the ground truth; returns the index."""
    from augane.features.networks import frozen_au_detector_from_config
    from augane.train.face import FaceDecoder

    rng = np.random.default_rng(seed)
    face = FaceDecoder.from_config(config, SIZE)
    detector = frozen_au_detector_from_config(config["resources"])
    count = len(SUBJECTS) * FRAMES
    truth = _truth(rng, count)
    t = {name: torch.from_numpy(np.asarray(value, np.float32)) for name, value in truth.items()}
    decoded = face.decode(t["shape"], t["exp"], t["pose"])
    images = face.render(decoded.vertices, t["cam"], t["tex"], t["light"], torch.full((count, 3, SIZE, SIZE), 0.35)).image
    landmarks_ndc = project(decoded.landmarks105, t["cam"])[..., :2].numpy()
    output = detector(images)
    crops = (images.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)

    subjects = np.repeat(SUBJECTS, FRAMES)
    frames = np.tile(np.arange(FRAMES), len(SUBJECTS))
    ids = [f"{s}#{f:06d}" for s, f in zip(subjects, frames)]
    ok = np.array([(s, f) != NO_FACE for s, f in zip(subjects, frames)])
    deca = dict(truth, exp=0.5 * truth["exp"], pose=truth["pose"] * np.array([1, 1, 1, 0, 0, 0], np.float32))
    deca_params = np.concatenate([np.asarray(deca[n], np.float32).reshape(count, -1) for n in DECA_PARAM_LAYOUT], 1)
    nan_rows = lambda array: np.where(ok.reshape(-1, *[1] * (array.ndim - 1)), array, np.nan)  # noqa: E731
    index = pd.DataFrame({"sample_id": ids, "source": "video.avi", "frame": frames, "subject": subjects,
                          "shard": np.arange(count) // SHARD_SIZE, "row": np.arange(count) % SHARD_SIZE})
    index["AU1"] = rng.integers(0, 4, count)
    index["AU12"] = rng.integers(0, 4, count)
    folder = cache_root / DATASET
    au_names = list(detector.detector.au_labels)
    for shard, rows in index.groupby("shard").indices.items():
        n = len(rows)
        status = np.where(ok[rows], int(Status.OK), int(Status.NO_FACE)).astype(np.uint8)
        write_store(folder / f"shard-{shard:04d}" / "preprocess.zarr", {
            "image": ArraySpec(np.where(ok[rows, None, None, None], crops[rows], 0).astype(np.uint8),
                               ("sample", "y", "x", "channel")),
            "landmarks_ndc": ArraySpec(nan_rows(landmarks_ndc)[rows].astype(np.float32), ("sample", "point", "coord")),
            "transform": ArraySpec(np.repeat(TRANSFORM[None], n, axis=0), ("sample", "row", "column")),
            "source_size": ArraySpec(np.full((n, 2), SOURCE, np.int32), ("sample", "axis")),
            "status": ArraySpec(status, ("sample",)),
        }, {"stage": "preprocess", "status_codes": status_codes(), "sample_ids": [ids[i] for i in rows]})
        write_store(folder / f"shard-{shard:04d}" / "features.zarr", {
            "valid": ArraySpec(ok[rows], ("sample",)),
            "au_prob": ArraySpec(nan_rows(output.prob.numpy())[rows].astype(np.float32), ("sample", "au")),
            "afg": ArraySpec(nan_rows(output.afg.numpy())[rows].astype(np.float16), ("sample", "node", "channel")),
            "deca_feature": ArraySpec(nan_rows(rng.normal(0, 1, (count, GLOBAL_DIM)))[rows].astype(np.float16),
                                      ("sample", "channel")),
            "deca_params": ArraySpec(nan_rows(deca_params)[rows], ("sample", "param")),
            "emoca_exp": ArraySpec(nan_rows(truth["exp"])[rows].astype(np.float32), ("sample", "param")),
            "emoca_pose": ArraySpec(nan_rows(truth["pose"])[rows].astype(np.float32), ("sample", "param")),
        }, {"stage": "features", "au_names": au_names, "afg_aus": list(detector.detector.afg_aus),
            "deca_layout": dict(DECA_PARAM_LAYOUT), "untrained_weights": True, "sample_ids": [ids[i] for i in rows],
            "networks": {"au_detector": detector.detector.checkpoint_info.provenance()}})
    status = np.where(ok, int(Status.OK), int(Status.NO_FACE))
    index.assign(status=status, status_name=np.where(ok, "ok", "no_face")).to_parquet(folder / "index.parquet")
    features = index[["sample_id", "shard", "row"]].assign(valid=ok)
    for column, name in enumerate(au_names):
        features[f"prob_{name}"] = np.where(ok, output.prob[:, column].numpy(), np.nan)
    features.to_parquet(folder / "features.parquet")
    _write_ground_truth(Path(config["datasets"][DATASET]["path"]), index, truth, landmarks_ndc)
    return index


def _write_ground_truth(root: Path, index: pd.DataFrame, truth: dict[str, np.ndarray], landmarks_ndc: np.ndarray) -> None:
    """GroundTruth/<subject>.parquet with gt_<name>_<i> and gt_landmarks_<i> in source pixels."""
    source = apply_transform(normalised_to_pixels(landmarks_ndc.astype(np.float64), SIZE), invert_transform(TRANSFORM))
    folder = root / "GroundTruth"
    folder.mkdir(parents=True, exist_ok=True)
    for subject, rows in index.groupby("subject").indices.items():
        table = index.iloc[rows][["sample_id", "subject", "frame"]].reset_index(drop=True)
        for name in DECA_PARAM_LAYOUT:
            values = np.asarray(truth[name]).reshape(len(index), -1)[rows]
            table = pd.concat([table, pd.DataFrame(values, columns=[f"gt_{name}_{i}" for i in range(values.shape[1])])],
                              axis=1)
        points = source[rows].reshape(len(rows), -1)
        table = pd.concat([table, pd.DataFrame(points, columns=[f"gt_landmarks_{i}" for i in range(points.shape[1])])],
                          axis=1)
        table.to_parquet(folder / f"{subject}.parquet")


def cache_layout(cache_root: Path) -> CacheLayout:
    """The layout of the tiny cache (what GANE is built for)."""
    import zarr

    store = zarr.open_group(cache_root / DATASET / "shard-0000" / "features.zarr", mode="r")
    return CacheLayout(
        detector_aus=tuple(parse_au_name(n) for n in store.attrs["au_names"]),
        afg_aus=tuple(parse_au_name(n) for n in store.attrs["afg_aus"]),
        node_dim=int(store["afg"].shape[-1]),
        global_dim=int(store["deca_feature"].shape[-1]),
        param_layout=tuple(DECA_PARAM_LAYOUT.items()),
        image_size=SIZE,
    )


def gane_checkpoint(config: dict[str, Any], cache_root: Path, path: Path, seed: int = 0) -> Path:
    """Save an UNTRAINED GANE for the tiny cache (random heads, so that it departs from DECA)."""
    layout = cache_layout(cache_root)
    torch.manual_seed(seed)
    gane = GANE.from_config(config["model"], layout.num_aus, layout.node_dim, layout.global_dim)
    with torch.no_grad():
        for head in gane.heads.values():
            head.weight.normal_(0.0, 0.05)
    return save_checkpoint(path, gane, model_section=config["model"], layout=layout, config=config,
                           training={"epoch": 0, "step": 0, "finished": False, "untrained": True},
                           cache_networks={DATASET: {"networks": None, "untrained_weights": True}})
