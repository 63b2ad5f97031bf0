"""A tiny face world for the training tests, made here: face model files, an AU detector, cached shards.

* Face model (FLAME format): a dome-shaped grid (14 x 14 vertices) whose
  105 MediaPipe landmarks sit where MediaPipe finds them on skimage's
  astronaut, with smooth expression blend shapes (bumps around the brows,
  eyes, nose and mouth), a jaw joint that opens the lower face, a UV layout
  and a small UV albedo space.
* AU detector: a random ResNet-18 MEFARG (27 AFG nodes of 32 channels) in
  the OpenGraphAU release format, marked untrained.
* Cached dataset ``tiny``: each sample has a true expression, jaw, camera,
  identity, albedo and light; its crop is the render of that face over a
  grey background, its landmarks the projected model landmarks, and the
  cached "DECA" estimate under-estimates the expression (half of it) and
  misses the jaw, as a coarse regressor does. AU scores and AFG features
  are the detector's on the crop, as the features stage computes them.
  Ground truth is stored as ``gt_exp_<i>``, ``gt_pose_<i>``, ``gt_cam_<i>`` manifest labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from augane.config import validate_config
from augane.flame.embedding import MediapipeEmbedding
from augane.flame.io import FLAME_PARENTS, FlameModelData, write_flame_model, write_mediapipe_embedding
from augane.flame.texture import HeadTemplate, write_albedo_space, write_head_template
from augane.io.shards import ArraySpec, write_store
from augane.landmarks import MEDIAPIPE_105
from augane.nets.au_preprocess import FrozenAuDetector
from augane.nets.deca import DECA_PARAM_LAYOUT
from augane.nets.mefarg import MEFARG
from augane.nets.release_format import save_au_detector_checkpoint
from augane.preprocess.status import Status, status_codes
from augane.render.shading import default_light
from tests.losses.faces import astronaut_landmarks_105

SIZE = 32
GRID = 14
GLOBAL_DIM = 16
EXPRESSIONS = 12  # blend shapes that move the face; the rest of the 100 are zero
DATASET = "tiny"
HELDOUT = "tiny_heldout"  # a second dataset, for validation on whole datasets


def _grid_faces(count: int) -> np.ndarray:
    faces = []
    for row in range(count - 1):
        for column in range(count - 1):
            a, b = row * count + column, row * count + column + 1
            c, d = a + count, b + count
            faces += [(a, b, c), (b, d, c)]
    return np.asarray(faces, dtype=np.int64)


def face_model_files(folder: Path) -> dict[str, str]:
    """Write the tiny face model, its 105-point embedding, head template and albedo space; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    image = astronaut_landmarks_105()
    centre = (image.min(0) + image.max(0)) / 2
    scale = 0.075 / float((image.max(0) - image.min(0)).max() / 2)
    landmarks = np.stack([(image[:, 0] - centre[0]) * scale, -(image[:, 1] - centre[1]) * scale], axis=1)
    low, high = landmarks.min(0) - 0.045, landmarks.max(0) + 0.045
    xs, ys = np.linspace(low[0], high[0], GRID), np.linspace(low[1], high[1], GRID)
    gx, gy = np.meshgrid(xs, ys)
    radius = ((gx / np.abs(xs).max()) ** 2 + (gy / np.abs(ys).max()) ** 2) / 2
    vertices = np.stack([gx, gy, 0.03 * (1.0 - radius)], axis=-1).reshape(-1, 3)
    faces = _grid_faces(GRID)
    # Landmarks: the grid triangle holding each point, barycentrics in x/y.
    cell = np.stack([(landmarks[:, 0] - low[0]) / (xs[1] - xs[0]), (landmarks[:, 1] - low[1]) / (ys[1] - ys[0])], 1)
    column, row = np.floor(cell).astype(int).T
    u, v = (cell - np.floor(cell)).T
    upper = u + v > 1.0  # the cell's second triangle (b, d, c); the first is (a, b, c)
    face_index = 2 * (row * (GRID - 1) + column) + upper
    bary = np.where(upper[:, None], np.stack([1 - v, u + v - 1, 1 - u], 1), np.stack([1 - u - v, u, v], 1))
    embedding = MediapipeEmbedding(faces=face_index.astype(np.int64), bary=bary,
                                   landmark_indices=np.asarray(MEDIAPIPE_105, dtype=np.int64))
    # Blend shapes: identity as smooth random fields, expression as bumps around landmarks.
    rng = np.random.default_rng(0)
    num_vertices = len(vertices)
    shapedirs = np.zeros((num_vertices, 3, 200))
    basis = np.stack([vertices[:, 0] / 0.08, vertices[:, 1] / 0.1, (vertices[:, 0] / 0.08) * (vertices[:, 1] / 0.1)], 1)
    for column_index in range(10):
        shapedirs[:, :, column_index] = basis @ rng.normal(0, 1e-3, (3, 3))
    centres = landmarks[rng.choice(len(landmarks), EXPRESSIONS, replace=False)]
    for index, point in enumerate(centres):
        weight = np.exp(-((vertices[:, :2] - point) ** 2).sum(1) / (2 * 0.02**2))
        direction = rng.normal(0, 1, 3) * np.array([1.0, 1.5, 0.3])
        shapedirs[:, :, 100 + index] = weight[:, None] * direction / np.linalg.norm(direction) * 1e-2
    mouth_y = landmarks[MEDIAPIPE_105.index(0), 1]
    jaw_weight = 1.0 / (1.0 + np.exp((vertices[:, 1] - mouth_y) / 0.006))
    weights = np.zeros((num_vertices, 5))
    weights[:, 0], weights[:, 2] = 1.0 - jaw_weight, jaw_weight
    joint_points = np.array([[0, 0, 0], [0, low[1], 0], [0, mouth_y, -0.02], [0.03, 0.02, 0], [-0.03, 0.02, 0]])
    j_regressor = np.zeros((5, num_vertices))
    for joint, point in enumerate(joint_points):
        j_regressor[joint, np.argmin(((vertices - point) ** 2).sum(1))] = 1.0
    model = FlameModelData(v_template=vertices, faces=faces, shapedirs=shapedirs,
                           posedirs=np.zeros((num_vertices, 3, 36)), j_regressor=j_regressor,
                           parents=FLAME_PARENTS, weights=weights, source="tiny")
    paths = {
        "face_model": folder / "face_model.pkl",
        "mediapipe_embedding": folder / "mediapipe_landmark_embedding.npz",
        "head_template": folder / "head_template.obj",
        "albedo_model": folder / "albedo_model.npz",
    }
    write_flame_model(paths["face_model"], model)
    write_mediapipe_embedding(paths["mediapipe_embedding"], embedding)
    uvs = np.stack([(vertices[:, 0] - low[0]) / (high - low)[0], (vertices[:, 1] - low[1]) / (high - low)[1]], 1)
    write_head_template(paths["head_template"], HeadTemplate(vertices, faces, uvs, faces.copy()))
    texels = np.linspace(0, 1, 16)
    mean = np.stack(np.broadcast_arrays(0.8 - 0.1 * texels[:, None], 0.6 + 0 * texels[None], 0.5 + 0.1 * texels[None]), -1)
    waves = [np.cos(np.pi * k * texels) for k in (1, 2)]
    albedo_basis = np.stack([0.06 * np.multiply.outer(a, b)[:, :, None] * rng.normal(0, 1, 3)
                             for a in waves for b in waves] + [0.05 * np.ones((16, 16, 3))], -1)
    write_albedo_space(paths["albedo_model"], mean, albedo_basis)
    return {key: str(path) for key, path in paths.items()}


def detector_file(folder: Path, seed: int = 0) -> str:
    """A random OpenGraphAU-layout ResNet-18 detector (27 AFG nodes of 32 channels), saved as a release."""
    torch.manual_seed(seed)
    detector = MEFARG("opengraphau", "anfl", "resnet18", channels=32).eval()
    return str(save_au_detector_checkpoint(detector, folder / "au_detector.pth", untrained=True))


def tiny_config(folder: Path, **train: Any) -> dict[str, Any]:
    """A validated config on the tiny world's files (the cache under ``folder/cache``)."""
    resources = face_model_files(folder / "face")
    resources["landmark_embedding"] = None
    resources["au_detector"] = {"checkpoint": detector_file(folder), "backbone": "resnet18", "resize": 36,
                                "input_size": SIZE}
    settings = {"datasets": [DATASET], "epochs": 2, "batch_size": 4, "lr": 1e-3, "val_fraction": 0.25,
                "num_workers": 0, "log_every": 1, "checkpoint_every": 0, "tensorboard": False}
    settings.update(train)
    return validate_config({
        "run_name": "tiny",
        "device": "cpu",
        "resources": resources,
        "datasets": {DATASET: {"type": "images", "path": str(folder / "images")},
                     HELDOUT: {"type": "images", "path": str(folder / "heldout")}},
        "model": {"gat": {"layers": 1, "heads": 2}, "transformer": {"layers": 1, "heads": 2, "feedforward": 32,
                                                                     "dropout": 0.0}},
        "train": settings,
    })


@torch.no_grad()
def write_tiny_cache(config: dict[str, Any], cache_root: Path, num_samples: int = 12, shard_size: int = 8,
                     seed: int = 1, name: str = DATASET) -> pd.DataFrame:
    """Render the samples and write ``cache_root/<name>`` (shards, index.parquet, features.parquet) per the contract."""
    from augane.features.networks import frozen_au_detector_from_config
    from augane.train.face import FaceDecoder

    rng = np.random.default_rng(seed)
    face = FaceDecoder.from_config(config, SIZE)
    detector = frozen_au_detector_from_config(config["resources"])
    count = num_samples
    true_exp = np.zeros((count, 50), np.float32)
    true_exp[:, :EXPRESSIONS] = rng.normal(0, 1.2, (count, EXPRESSIONS))
    true_pose = np.zeros((count, 6), np.float32)
    true_pose[:, :3] = rng.normal(0, 0.05, (count, 3))
    true_pose[:, 3] = np.abs(rng.normal(0, 0.12, count))
    true_cam = np.stack([rng.uniform(9.0, 11.0, count), rng.normal(0, 0.005, count), rng.normal(0, 0.005, count)], 1)
    params = {
        "shape": rng.normal(0, 1, (count, 100)).astype(np.float32) * (np.arange(100) < 10),
        "tex": rng.normal(0, 1, (count, 50)).astype(np.float32) * (np.arange(50) < 5),
        "exp": 0.5 * true_exp,
        "pose": true_pose * np.array([1, 1, 1, 0, 0, 0], np.float32),
        "cam": (true_cam * np.array([1.05, 1, 1])).astype(np.float32),
        "light": (default_light(count) * torch.from_numpy(rng.uniform(0.8, 1.1, (count, 1, 1))).float()).numpy(),
    }
    tensors = {name: torch.from_numpy(np.asarray(value, np.float32)) for name, value in params.items()}
    truth = face.decode(tensors["shape"], torch.from_numpy(true_exp), torch.from_numpy(true_pose))
    cam = torch.from_numpy(true_cam.astype(np.float32))
    background = torch.full((count, 3, SIZE, SIZE), 0.35)
    images = face.render(truth.vertices, cam, tensors["tex"], tensors["light"], background).image
    landmarks = face.flame(tensors["shape"], torch.from_numpy(true_exp), torch.from_numpy(true_pose)).landmarks105
    from augane.flame.camera import project

    landmarks_ndc = project(landmarks, cam)[..., :2].numpy()
    output = detector(images)
    image_u8 = (images.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
    deca_params = np.concatenate([np.asarray(params[name], np.float32).reshape(count, -1) for name in DECA_PARAM_LAYOUT], 1)
    deca_feature = rng.normal(0, 1, (count, GLOBAL_DIM)).astype(np.float16)

    ids = [f"{name}-{i:03d}" for i in range(count)]
    manifest = pd.DataFrame({"sample_id": ids, "source": [f"{i}.png" for i in ids], "frame": -1, "subject": "",
                             "shard": np.arange(count) // shard_size, "row": np.arange(count) % shard_size})
    for index in range(50):
        manifest[f"gt_exp_{index}"] = true_exp[:, index]
    for index in range(6):
        manifest[f"gt_pose_{index}"] = true_pose[:, index]
    for index in range(3):
        manifest[f"gt_cam_{index}"] = true_cam[:, index]
    folder = cache_root / name
    au_names = list(detector.detector.au_labels)
    for shard, rows in manifest.groupby("shard").indices.items():
        shard_dir = folder / f"shard-{shard:04d}"
        n = len(rows)
        status = np.full(n, int(Status.OK), np.uint8)
        write_store(shard_dir / "preprocess.zarr", {
            "image": ArraySpec(image_u8[rows], ("sample", "y", "x", "channel")),
            "landmarks_ndc": ArraySpec(landmarks_ndc[rows].astype(np.float32), ("sample", "point", "coord")),
            "status": ArraySpec(status, ("sample",)),
        }, {"stage": "preprocess", "status_codes": status_codes(), "sample_ids": [ids[i] for i in rows]})
        write_store(shard_dir / "features.zarr", {
            "valid": ArraySpec(np.ones(n, bool), ("sample",)),
            "au_prob": ArraySpec(output.prob[rows].numpy().astype(np.float32), ("sample", "au")),
            "afg": ArraySpec(output.afg[rows].numpy().astype(np.float16), ("sample", "node", "channel")),
            "deca_feature": ArraySpec(deca_feature[rows], ("sample", "channel")),
            "deca_params": ArraySpec(deca_params[rows], ("sample", "param")),
        }, {"stage": "features", "au_names": au_names, "afg_aus": list(detector.detector.afg_aus),
            "deca_layout": dict(DECA_PARAM_LAYOUT), "untrained_weights": True,
            "networks": {"au_detector": detector.detector.checkpoint_info.provenance()}})
    index = manifest.assign(status=int(Status.OK), confidence=0.9, face_count=1)
    index.to_parquet(folder / "index.parquet")
    features = manifest[["sample_id", "shard", "row"]].assign(valid=True)
    for column, name in enumerate(au_names):
        features[f"prob_{name}"] = output.prob[:, column].numpy()
    features.to_parquet(folder / "features.parquet")
    return manifest
