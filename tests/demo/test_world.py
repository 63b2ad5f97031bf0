"""The demo world: deterministic output, labels consistent with the rendered faces, a DISFA tree read as DISFA."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from augane.aus import DISFA_AUS, au_label
from augane.config import validate_config
from augane.demo.face_model import DEMO_AUS, au_parameters
from augane.demo.world import demo_face_model_files, write_world_part
from augane.demo.world_disfa import GROUND_TRUTH_FOLDER
from augane.demo.world_params import FaceParameters, landmark_columns_to_points
from augane.demo.world_render import WorldRenderer
from augane.errors import AssetError
from augane.flame.camera import normalised_to_pixels, project
from augane.io.disfa import disfa_subjects, load_disfa_subject, read_label_file
from augane.io.images import read_image
from augane.io.manifest import build_manifest
from augane.io.videos import probe_video, read_frames
from tests.demo.conftest import TINY_WORLD, tiny_config

#: Documented movement of each AU (face model card) at one MediaPipe point, in model space
#: (y up; "lateral" = away from the midline, "medial" = towards it).
DOCUMENTED_DIRECTIONS: dict[int, tuple[tuple[int, str], ...]] = {
    1: ((107, "up"),),
    2: ((63, "up"),),
    4: ((55, "down"), (55, "medial")),
    5: ((159, "up"),),
    6: ((145, "up"),),
    7: ((145, "up"), (159, "down")),
    9: ((129, "up"),),
    10: ((0, "up"),),
    12: ((61, "up"), (61, "lateral")),
    15: ((61, "down"),),
    17: ((17, "up"),),
    18: ((61, "medial"),),
    20: ((61, "lateral"),),
    23: ((0, "down"), (17, "up")),
    25: ((14, "down"),),
    26: ((17, "down"),),
}


@pytest.fixture(scope="module")
def labels(tiny_world):
    return pd.read_csv(tiny_world / "train" / "labels.csv")


@pytest.fixture(scope="module")
def renderer(face_model_dir):
    return WorldRenderer(demo_face_model_files(face_model_dir), image_size=TINY_WORLD["image_size"])


def test_image_split_layout_and_summary(tiny_world, labels):
    split = TINY_WORLD["train"]
    assert len(labels) == split["identities"] * split["images_per_identity"]
    assert labels["subject"].nunique() == split["identities"] and labels["subject"].str.startswith("train").all()
    for path in labels["path"]:
        assert read_image(tiny_world / "train" / "images" / path).shape == (128, 128, 3)
    assert [c for c in labels.columns if c.startswith("AU")] == [au_label(au) for au in DEMO_AUS]
    for name, size in {"shape": 100, "tex": 50, "exp": 50, "pose": 6, "cam": 3, "light": 27, "landmarks": 210}.items():
        assert [c for c in labels.columns if c.startswith(f"gt_{name}_")] == [f"gt_{name}_{i}" for i in range(size)]
    summary = json.loads((tiny_world / "train" / "summary.json").read_text())
    assert summary["images"] == len(labels) and summary["identities"] == split["identities"]
    heldout = pd.read_csv(tiny_world / "heldout" / "labels.csv")
    assert not set(heldout["subject"]) & set(labels["subject"])
    shapes = FaceParameters.from_columns(labels).shape
    assert not np.isin(FaceParameters.from_columns(heldout).shape[:, 0], shapes[:, 0]).any()  # other identities


def test_generation_is_deterministic(tiny_world, face_model_dir, tmp_path):
    config = tiny_config(render_batch=5)  # a different batching must not change anything but rounding
    write_world_part(config, "train", tmp_path / "train", face_model_dir=face_model_dir)
    again = pd.read_csv(tmp_path / "train" / "labels.csv")
    pd.testing.assert_frame_equal(again, pd.read_csv(tiny_world / "train" / "labels.csv"))
    for path in again["path"][:4]:
        first = read_image(tiny_world / "train" / "images" / path).astype(int)
        second = read_image(tmp_path / "train" / "images" / path).astype(int)
        assert np.abs(first - second).mean() < 0.5
    write_world_part(tiny_config(render_batch=5), "train", tmp_path / "repeat", face_model_dir=face_model_dir)
    for path in again["path"]:
        assert (tmp_path / "repeat" / "images" / path).read_bytes() == (tmp_path / "train" / "images" / path).read_bytes()
    other = tiny_config(seed=4)
    write_world_part(other, "heldout", tmp_path / "other", face_model_dir=face_model_dir)
    assert not pd.read_csv(tmp_path / "other" / "labels.csv").equals(pd.read_csv(tiny_world / "heldout" / "labels.csv"))


def test_expression_and_landmarks_follow_the_labels(labels, renderer):
    truth = FaceParameters.from_columns(labels)
    intensities = labels[[au_label(au) for au in DEMO_AUS]].to_numpy(dtype=float)
    expression, jaw = au_parameters(intensities, n_exp=50)
    np.testing.assert_allclose(truth.exp, expression, atol=1e-6)
    np.testing.assert_allclose(truth.pose[:, 3:], jaw, atol=1e-6)
    output = renderer.decode(truth)
    projected = project(output.landmarks105, torch.tensor(truth.cam, dtype=torch.float32))[..., :2]
    pixels = normalised_to_pixels(projected, TINY_WORLD["image_size"]).numpy()
    np.testing.assert_allclose(pixels, landmark_columns_to_points(labels), atol=0.02)


def _moves(delta_xyz: np.ndarray, x: float, direction: str) -> float:
    """Signed movement (m) along a documented direction."""
    if direction in ("up", "down"):
        return delta_xyz[1] * (1.0 if direction == "up" else -1.0)
    outward = np.sign(x) if x != 0 else 1.0
    return delta_xyz[0] * outward * (1.0 if direction == "lateral" else -1.0)


def test_active_aus_move_their_landmarks_in_the_documented_direction(labels, renderer):
    """For every image and every AU labelled >= 2, removing that AU from the ground truth moves its
    landmarks back against the documented direction (decoded without head rotation)."""
    truth = FaceParameters.from_columns(labels)
    truth.pose[:, :3] = 0.0
    indices = {index: position for position, index in enumerate(renderer_landmark_indices())}
    checked = set()
    for row, values in enumerate(labels[[au_label(au) for au in DEMO_AUS]].to_numpy()):
        for au, intensity in zip(DEMO_AUS, values):
            if intensity < 2:
                continue
            reduced = dict(zip(DEMO_AUS, values.astype(float)))
            reduced[au] = 0.0
            expression, jaw = au_parameters(reduced, n_exp=50)
            without = truth.select(slice(row, row + 1))
            without.exp, without.pose = expression[None], np.concatenate([[0.0, 0.0, 0.0], jaw])[None]
            full = renderer.decode(truth.select(slice(row, row + 1))).landmarks105[0].numpy()
            base = renderer.decode(without).landmarks105[0].numpy()
            for point, direction in DOCUMENTED_DIRECTIONS[au]:
                position = indices[point]
                assert _moves(full[position] - base[position], base[position, 0], direction) > 2e-4, (au, point)
            checked.add(au)
    assert len(checked) >= 6


def renderer_landmark_indices():
    from augane.landmarks import MEDIAPIPE_105

    return MEDIAPIPE_105


def test_strong_aus_move_mediapipe_landmarks_on_the_render(face_model_dir, tiny_world):
    """Rendered with a strong AU and without, MediaPipe sees the movement the AU documents.

    MediaPipe follows the mouth AUs and the brow lowerer on the demo renders; it
    does not follow brow raises (AU1, AU2) or the upper-lid raiser (AU5), whose
    ground truth is checked in model space above."""
    from augane.preprocess.landmarkers import build_landmarker

    renderer = WorldRenderer(demo_face_model_files(face_model_dir), image_size=256)
    base = FaceParameters.from_columns(pd.read_csv(tiny_world / "train" / "labels.csv").iloc[:1])
    base.pose[:] = 0.0
    base.cam[:] = [[8.0, 0.0, 0.0]]
    panels = {"neutral": {}, "AU12": {12: 5.0}, "AU15": {15: 5.0}, "AU26": {25: 4.0, 26: 5.0}, "AU4": {4: 5.0},
              "AU10": {10: 5.0}}
    params = FaceParameters.concatenate([base] * len(panels))
    for row, intensities in enumerate(panels.values()):
        expression, jaw = au_parameters(intensities, n_exp=50)
        params.exp[row], params.pose[row, 3:] = expression, jaw
    gray = np.full((len(panels), 256, 256, 3), 0.5, np.float32)
    images = (renderer.render(params, gray).images * 255).round().astype(np.uint8)
    landmarker = build_landmarker({}, None, video=False)
    try:
        meshes = {name: landmarker.detect(image).faces[0].mesh for name, image in zip(panels, images)}
    finally:
        landmarker.close()
    neutral = meshes["neutral"]
    corners, brows = [61, 291], [55, 285, 105, 334]
    assert (neutral[corners, 1] - meshes["AU12"][corners, 1]).mean() > 3.0  # lip corners up
    assert np.ptp(meshes["AU12"][corners, 0]) > np.ptp(neutral[corners, 0]) + 1.0  # and apart
    assert (meshes["AU15"][corners, 1] - neutral[corners, 1]).mean() > 3.0  # lip corners down
    assert meshes["AU26"][152, 1] - neutral[152, 1] > 5.0  # chin down
    assert meshes["AU26"][14, 1] - meshes["AU26"][13, 1] > neutral[14, 1] - neutral[13, 1] + 3.0  # lips apart
    assert (meshes["AU4"][brows, 1] - neutral[brows, 1]).mean() > 2.0  # brows down
    assert neutral[0, 1] - meshes["AU10"][0, 1] > 1.5  # upper lip up


def test_images_dataset_manifest_carries_every_label(tiny_world):
    dataset = {"type": "images", "path": str(tiny_world / "train" / "images"),
               "labels": str(tiny_world / "train" / "labels.csv")}
    manifest, problems = build_manifest("demo_train", validate_config({"datasets": {"d": dataset}})["datasets"]["d"], 8)
    labels = pd.read_csv(tiny_world / "train" / "labels.csv").set_index("path")
    assert not problems and len(manifest) == len(labels)
    assert (manifest["subject"].to_numpy() == labels.loc[manifest["sample_id"], "subject"].to_numpy()).all()
    assert manifest["AU12"].dtype == np.int8
    np.testing.assert_allclose(manifest.filter(like="gt_").to_numpy(),
                               labels.loc[manifest["sample_id"]].filter(like="gt_").to_numpy())


def test_disfa_tree_reads_as_disfa(tiny_world):
    root = tiny_world / "disfa"
    frames = TINY_WORLD["disfa"]["frames"]
    assert disfa_subjects(root) == ["SN001", "SN002"]
    for subject in ("SN001", "SN002"):
        record = load_disfa_subject(root, subject)
        assert record.problems == [] and record.video_frames == frames
        assert record.labels["frame"].tolist() == list(range(frames))
        assert list(record.labels.columns[1:]) == [au_label(au) for au in DISFA_AUS]
        label_frames, values = read_label_file(root / "ActionUnit_Labels" / subject / f"{subject}_au12.txt")
        assert label_frames[0] == 0 and (root / "ActionUnit_Labels" / subject / f"{subject}_au12.txt").read_text().startswith("1,")
        truth = pd.read_parquet(root / GROUND_TRUTH_FOLDER / f"{subject}.parquet")
        assert truth["frame"].tolist() == list(range(frames))
        for au in DISFA_AUS:
            expected = np.clip(np.floor(truth[f"intensity_AU{au}"] + 0.5), 0, 5).astype(int)
            np.testing.assert_array_equal(record.labels[au_label(au)].to_numpy(), expected)
        assert record.labels.drop(columns="frame").to_numpy().max() > 0  # episodes happen
        info = probe_video(record.video)
        assert info.size == (128, 128) and info.fps == pytest.approx(TINY_WORLD["disfa"]["fps"])
        assert read_frames(record.video, [frames - 1])[0].shape == (128, 128, 3)
    manifest, problems = build_manifest("demo_disfa", {"type": "disfa", "path": str(root), "frame_stride": 3}, 7)
    assert not problems and len(manifest) == 2 * len(range(0, frames, 3))
    assert manifest["sample_id"].iloc[1] == "SN001#000003"
    truth = pd.concat(pd.read_parquet(root / GROUND_TRUTH_FOLDER / f"SN00{k}.parquet") for k in (1, 2))
    assert set(manifest["sample_id"]) <= set(truth["sample_id"])
    assert (root / GROUND_TRUTH_FOLDER / "README.md").is_file()


def test_disfa_ground_truth_matches_the_frames(tiny_world, renderer):
    truth = pd.read_parquet(tiny_world / "disfa" / GROUND_TRUTH_FOLDER / "SN001.parquet")
    params = FaceParameters.from_columns(truth)
    assert np.ptp(params.shape, axis=0).max() == 0 and np.ptp(params.pose[:, :3], axis=0).max() > 0  # one identity, moving
    projected = project(renderer.decode(params).landmarks105, torch.tensor(params.cam, dtype=torch.float32))[..., :2]
    np.testing.assert_allclose(normalised_to_pixels(projected, 128).numpy(), landmark_columns_to_points(truth), atol=1e-3)
    frame = read_frames(tiny_world / "disfa" / "Videos_LeftCamera" / "LeftVideoSN001_comp.avi", [0])[0]
    expected = renderer.render(params.select(slice(0, 1)), np.zeros((1, 128, 128, 3), np.float32))
    face = expected.coverage[0] > 0.99
    assert np.abs(frame[face].astype(float) - expected.images[0][face] * 255).mean() < 8.0  # MJPG, noise


def test_a_missing_face_model_is_named(tmp_path):
    with pytest.raises(AssetError, match="augane face-model build"):
        write_world_part(tiny_config(), "train", tmp_path / "x", face_model_dir=tmp_path)
