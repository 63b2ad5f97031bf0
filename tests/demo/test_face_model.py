"""The demo face model: files readable by the FLAME loaders, AU components that move what they should,
renders that MediaPipe reads, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from augane.cli.main import main
from augane.demo.face_model import (
    DEMO_AUS,
    DEMO_EXPRESSION_AUS,
    FACE_MODEL_FILES,
    JAW_DROP_RADIANS_PER_INTENSITY,
    au_parameters,
    build_demo_face_model,
)
from augane.demo.face_model_fields import NAMED_SHAPE_COMPONENTS, NUM_RANDOM_SHAPE_COMPONENTS
from augane.flame.camera import project
from augane.flame.io import FLAME_PARENTS, load_flame_model, load_landmark_embedding, load_mediapipe_embedding
from augane.flame.layer import FlameLayer
from augane.flame.texture import FLAME_TEXTURE_LAYOUT, load_albedo_space, load_head_template
from augane.landmarks import AU_REGIONS, MEDIAPIPE_105, MEDIAPIPE_IBUG68

MM = 1e-3


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The demo face model written by `augane face-model build` (the command the workflow runs)."""
    folder = tmp_path_factory.mktemp("face_model")
    config = folder / "config.yaml"
    config.write_text("seed: 0\n")
    assert main(["face-model", "build", "--config", str(config), "--out-dir", str(folder)]) == 0
    return {role: folder / name for role, name in FACE_MODEL_FILES.items()}


@pytest.fixture(scope="module")
def model(files):
    return load_flame_model(files["face_model"])


@pytest.fixture(scope="module")
def layer(files):
    return FlameLayer.from_files(files["face_model"], files["landmark_embedding"], files["mediapipe_embedding"],
                                 dtype=torch.float64)


@pytest.fixture(scope="module")
def card(files):
    return json.loads(files["card_json"].read_text())


def _decode(layer, intensities=None, global_pose=(0.0, 0.0, 0.0), neck=None, eyes=None):
    expression, jaw = au_parameters(intensities or {}, n_exp=layer.n_exp)
    pose = torch.zeros(1, 6, dtype=torch.float64)
    pose[0, :3] = torch.tensor(global_pose)
    pose[0, 3:] = torch.tensor(jaw)
    return layer(torch.zeros(1, layer.n_shape, dtype=torch.float64), torch.tensor(expression[None]), pose,
                 neck_pose=None if neck is None else torch.tensor([neck], dtype=torch.float64),
                 eye_pose=None if eyes is None else torch.tensor([eyes], dtype=torch.float64))


@pytest.fixture(scope="module")
def photo():
    """MediaPipe on the demo photo and its alignment to the model frame (mirror partners, map to the photo)."""
    import skimage.data

    from augane.demo.face_model_capture import align_to_model_frame, capture_photo_landmarks

    capture = capture_photo_landmarks(skimage.data.astronaut())
    return capture, align_to_model_frame(capture)


def test_files_load_through_the_flame_loaders(files, model, card):
    assert model.num_shape_components == 300 and model.num_expression_components == 100
    assert model.parents == FLAME_PARENTS
    assert card["mesh"]["vertices"] == model.num_vertices and card["mesh"]["triangles"] == model.num_faces
    np.testing.assert_allclose(model.weights.sum(axis=1), 1.0, atol=1e-12)
    assert model.weights.min() >= 0.0
    np.testing.assert_allclose(model.j_regressor.sum(axis=1), 1.0, atol=1e-9)
    assert not model.posedirs.any()
    load_landmark_embedding(files["landmark_embedding"], num_faces=model.num_faces)
    load_mediapipe_embedding(files["mediapipe_embedding"], num_faces=model.num_faces)
    template = load_head_template(files["head_template"], model.num_vertices, model.num_faces)
    np.testing.assert_allclose(template.vertices, model.v_template, atol=1e-8)
    np.testing.assert_array_equal(template.faces, model.faces)
    assert template.uvs.min() >= 0.0 and template.uvs.max() <= 1.0
    albedo = load_albedo_space(files["albedo_model"])
    assert albedo.layout == FLAME_TEXTURE_LAYOUT and albedo.num_components == len(card["albedo_components"])
    assert 0.0 <= albedo.mean.min() and albedo.mean.max() <= 1.0
    expected_shape = len(NAMED_SHAPE_COMPONENTS) + NUM_RANDOM_SHAPE_COMPONENTS
    assert np.abs(model.shapedirs[:, :, :expected_shape]).max(axis=(0, 1)).min() > 1e-4
    assert not model.shapedirs[:, :, expected_shape:300].any()
    assert np.abs(model.shapedirs[:, :, 300:300 + len(DEMO_EXPRESSION_AUS)]).max(axis=(0, 1)).min() > 1e-3
    assert not model.shapedirs[:, :, 300 + len(DEMO_EXPRESSION_AUS):].any()


def test_landmarks_are_the_mediapipe_vertices(layer, model):
    out = _decode(layer)
    np.testing.assert_allclose(out.landmarks105[0].numpy(), model.v_template[list(MEDIAPIPE_105)], atol=1e-12)
    cam = torch.tensor([[8.0, 0.01, -0.02]], dtype=torch.float64)
    projected = project(out.landmarks105, cam)
    expected = project(torch.tensor(model.v_template[None, list(MEDIAPIPE_105)]), cam)
    torch.testing.assert_close(projected, expected)
    frontal = layer.frontal_landmarks68(out.vertices)[0].numpy()
    np.testing.assert_allclose(frontal[17:], model.v_template[list(MEDIAPIPE_IBUG68[17:])], atol=1e-12)
    np.testing.assert_allclose(out.landmarks68[0].numpy(), frontal, atol=1e-12)  # zero yaw: bin 0


def test_model_matches_mediapipe_on_its_photo(model, photo):
    """The neutral model, mapped back into the photo, lies on MediaPipe's landmarks (mouth closed, so not the lips)."""
    capture, aligned = photo
    positions = [i for i in range(65)]  # brows, eyes, nose of the 105
    indices = [MEDIAPIPE_105[i] for i in positions]
    in_photo = aligned.to_photo(model.v_template[indices])
    error = np.linalg.norm(in_photo - capture.points[indices, :2], axis=1)
    face_width = np.ptp(capture.points[:468, 0])
    assert error.max() < 0.02 * face_width


def _positions(layer, intensities):
    return _decode(layer, intensities).landmarks105[0].numpy()


def _regional_motion(neutral, moved, region):
    motion = np.linalg.norm(moved - neutral, axis=1)
    inside = np.zeros(len(neutral), dtype=bool)
    inside[list(region)] = True
    return motion[inside].mean(), motion[~inside].mean()


@pytest.mark.parametrize("au", [au for au in DEMO_EXPRESSION_AUS if au in AU_REGIONS])
def test_each_au_moves_its_table1_region_most(layer, au):
    neutral = _positions(layer, {})
    inside, outside = _regional_motion(neutral, _positions(layer, {au: 5.0}), AU_REGIONS[au])
    assert inside > 1.0 * MM
    assert inside > 2.0 * outside


def _landmark(points, mediapipe_index):
    return points[MEDIAPIPE_105.index(mediapipe_index)]


def _y(points, *indices):
    return np.mean([_landmark(points, i)[1] for i in indices])


def _width(points, left, right):
    return _landmark(points, left)[0] - _landmark(points, right)[0]


def test_au_directions_follow_facs(layer, model):
    """Each component moves the face the way FACS describes the AU (intensity 5)."""
    n = _positions(layer, {})

    def at(au):
        return _positions(layer, {au: 5.0})

    inner, outer = (55, 285, 107, 336), (70, 300, 46, 276)
    p = at(1)
    assert _y(p, *inner) - _y(n, *inner) > 3 * MM and _y(p, *inner) - _y(n, *inner) > _y(p, *outer) - _y(n, *outer)
    p = at(2)
    assert _y(p, *outer) - _y(n, *outer) > 3 * MM and _y(p, *outer) - _y(n, *outer) > _y(p, *inner) - _y(n, *inner)
    p = at(4)
    assert _y(p, *inner, *outer) - _y(n, *inner, *outer) < -2 * MM
    assert _width(p, 285, 55) < _width(n, 285, 55) - 2 * MM  # brows drawn together
    aperture = lambda q: _y(q, 159, 386) - _y(q, 145, 374)  # noqa: E731
    p = at(5)
    assert _y(p, 159, 386) - _y(n, 159, 386) > 2 * MM and aperture(p) > aperture(n) + 2 * MM
    p = at(6)
    assert _y(p, 145, 374) - _y(n, 145, 374) > 1 * MM
    cheek = model.v_template[[118, 347], 1].mean()
    assert _decode(layer, {6: 5.0}).vertices[0, [118, 347], 1].mean().item() - cheek > 2 * MM
    assert aperture(at(7)) < aperture(n) - 2 * MM
    p = at(9)
    assert _y(p, 129, 358, 98, 327) - _y(n, 129, 358, 98, 327) > 1.5 * MM
    p = at(10)
    assert _y(p, 0, 37, 267) - _y(n, 0, 37, 267) > 3 * MM
    p = at(12)
    assert _width(p, 291, 61) > _width(n, 291, 61) + 4 * MM and _y(p, 61, 291) - _y(n, 61, 291) > 3 * MM
    p = at(15)
    assert _y(p, 61, 291) - _y(n, 61, 291) < -3 * MM
    chin = model.v_template[199, 1]
    assert _decode(layer, {17: 5.0}).vertices[0, 199, 1].item() - chin > 2 * MM
    p = at(18)
    assert _width(p, 291, 61) < _width(n, 291, 61) - 5 * MM
    assert _landmark(p, 0)[2] - _landmark(n, 0)[2] > 3 * MM
    p = at(20)
    assert _width(p, 291, 61) > _width(n, 291, 61) + 4 * MM and _y(p, 61, 291) - _y(n, 61, 291) < 0.5 * MM
    vermilion = lambda q: (_y(q, 0) - _y(q, 13)) + (_y(q, 14) - _y(q, 17))  # noqa: E731
    assert vermilion(at(23)) < vermilion(n) - 2 * MM
    lips = lambda q: _y(q, 13) - _y(q, 14)  # noqa: E731
    assert lips(at(25)) > lips(n) + 3 * MM
    p = at(26)
    assert lips(p) > lips(n) + 10 * MM
    upper_face = [MEDIAPIPE_105.index(i) for i in (55, 285, 159, 386, 4)]
    np.testing.assert_allclose(p[upper_face], n[upper_face], atol=1e-12)


def test_components_are_mirror_symmetric(model, photo):
    mirror = photo[1].mirror
    flip = np.array([-1.0, 1.0, 1.0])[:, None]
    np.testing.assert_allclose(model.v_template[mirror], model.v_template[:468] * flip[:, 0], atol=1e-12)
    directions = model.shapedirs[:468]
    # harmonic masks on MediaPipe's (not quite symmetric) triangulation: symmetric to a few micrometres
    np.testing.assert_allclose(directions[mirror], directions * flip, atol=0.02 * MM)


def test_joints_drive_their_parts(layer, model, card):
    neutral = _decode(layer).vertices[0].numpy()
    right_eye = slice(*card["mesh"]["vertex_regions"]["right_eyeball"])
    left_eye = slice(*card["mesh"]["vertex_regions"]["left_eyeball"])
    looked = _decode(layer, eyes=(0.0, 0.3, 0.0, 0.0, 0.3, 0.0)).vertices[0].numpy()
    moved = np.linalg.norm(looked - neutral, axis=1) > 1e-9
    eyes = np.zeros(len(neutral), dtype=bool)
    eyes[right_eye] = eyes[left_eye] = True
    assert moved[eyes].all() and not moved[~eyes].any()
    joints = _decode(layer).joints[0].numpy()
    for region, joint in ((right_eye, 4), (left_eye, 3)):
        np.testing.assert_allclose(np.linalg.norm(looked[region] - joints[joint], axis=1),
                                   np.linalg.norm(neutral[region] - joints[joint], axis=1), atol=1e-12)
    turned = _decode(layer, global_pose=(0.1, 0.4, 0.05), neck=(0.1, -0.2, 0.0)).vertices[0].numpy()
    sample = np.random.default_rng(0).choice(len(neutral), 200, replace=False)
    pairwise = lambda v: np.linalg.norm(v[sample, None] - v[None, sample], axis=2)  # noqa: E731
    np.testing.assert_allclose(pairwise(turned), pairwise(neutral), atol=1e-10)  # rigid head turn
    assert np.isclose(card["jaw_drop"]["radians_per_intensity"], JAW_DROP_RADIANS_PER_INTENSITY)


def test_eyeballs_sit_behind_the_lids(model, card):
    from augane.demo.face_model_mesh import LEFT_EYE_LOOP, RIGHT_EYE_LOOP

    for region, loop in (("right_eyeball", RIGHT_EYE_LOOP), ("left_eyeball", LEFT_EYE_LOOP)):
        start, stop = card["mesh"]["vertex_regions"][region]
        eyeball = model.v_template[start:stop]
        lids = model.v_template[list(loop)]
        # nearest eyeball vertex in the frontal plane lies behind each lid point
        nearest = np.linalg.norm(lids[:, None, :2] - eyeball[None, :, :2], axis=2).argmin(axis=1)
        assert (lids[:, 2] - eyeball[nearest, 2] > 0.5 * MM).all()
        # and the eyeball covers the opening seen from the front
        assert (np.abs(lids[:, 0] - eyeball[:, 0].mean()) < np.ptp(eyeball[:, 0]) / 2).all()


def _section(vertices, faces, height):
    """Points where the triangles cross the horizontal plane y = ``height`` (the skin's profile at that height)."""
    corners = vertices[faces]
    points = []
    for a, b in ((0, 1), (1, 2), (2, 0)):
        ya, yb = corners[:, a, 1], corners[:, b, 1]
        crossing = ((ya - height) * (yb - height) <= 0) & (ya != yb)
        t = (height - ya[crossing]) / (yb[crossing] - ya[crossing])
        points.append(corners[crossing, a] + t[:, None] * (corners[crossing, b] - corners[crossing, a]))
    return np.concatenate(points)


@pytest.mark.parametrize("degrees", [-35.0, -20.0, 20.0, 35.0])
def test_dynamic_contour_follows_the_silhouette(layer, model, card, degrees):
    """With the head turned, contour points on the far side sit on the silhouette of the skin at their height."""
    angle = np.deg2rad(degrees)
    out = _decode(layer, global_pose=(0.0, angle, 0.0))
    contour = out.landmarks68[0, :17].numpy()
    frontal = layer.frontal_landmarks68(out.vertices)[0, :17].numpy()
    skin_faces = model.faces[: card["mesh"]["triangle_regions"]["skin"][1]]
    away = 1.0 if degrees > 0 else -1.0  # a positive yaw turns the face (looking at +z) towards +x
    root_z = out.joints[0, 0, 2].item()  # the head turns about the root joint (x = 0), which stays in place
    for k, vertex in enumerate(MEDIAPIPE_IBUG68[:17]):
        start = model.v_template[vertex]
        side = np.sign(start[0]) if abs(start[0]) > 1e-6 else 0.0
        if side == away:
            profile = _section(model.v_template, skin_faces, start[1])
            profile = profile[profile[:, 0] * side >= 0.4 * abs(start[0]) - 1e-9]
            turned_x = np.cos(angle) * profile[:, 0] + np.sin(angle) * (profile[:, 2] - root_z)
            assert abs((turned_x * side).max() - contour[k, 0] * side) < 1.5 * MM
            assert contour[k, 0] * side >= frontal[k, 0] * side - 1e-9
        elif side == -away:
            np.testing.assert_allclose(contour[k], frontal[k], atol=1e-9)


def test_renders_are_read_by_mediapipe(files):
    """Rendered with the project's renderer, every expression is a face MediaPipe finds where the model says."""
    import mediapipe as mp

    from augane.demo.face_model_preview import DemoFaceRenderer

    renderer = DemoFaceRenderer(files, image_size=224)
    panels = [{}, {1: 4.0, 2: 4.0}, {4: 5.0}, {12: 5.0}, {25: 4.0, 26: 4.0}, {9: 4.0, 10: 4.0}, {18: 5.0}]
    pose = torch.zeros(len(panels), 3)
    pose[-2:, 1] = torch.tensor([0.35, -0.35])
    output = renderer.decode(panels, pose=pose)
    images = renderer.render(output, cam=(8.0, 0.0, 0.0))
    expected = renderer.landmark_pixels(output, cam=(8.0, 0.0, 0.0))
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as face_mesh:
        for image, landmarks in zip(images, expected):
            result = face_mesh.process(image)
            assert result.multi_face_landmarks
            found = np.array([[p.x * 224, p.y * 224] for p in result.multi_face_landmarks[0].landmark])
            assert np.linalg.norm(found[list(MEDIAPIPE_105)] - landmarks, axis=1).mean() < 4.0


def test_build_is_deterministic_and_seeded(model):
    again = build_demo_face_model(seed=0).model
    np.testing.assert_array_equal(again.v_template, model.v_template)
    np.testing.assert_array_equal(again.shapedirs, model.shapedirs)
    np.testing.assert_array_equal(again.j_regressor, model.j_regressor)
    other = build_demo_face_model(seed=1).model
    named = len(NAMED_SHAPE_COMPONENTS)
    np.testing.assert_array_equal(other.shapedirs[:, :, :named], model.shapedirs[:, :, :named])
    np.testing.assert_array_equal(other.shapedirs[:, :, 300:], model.shapedirs[:, :, 300:])
    assert not np.allclose(other.shapedirs[:, :, named:named + NUM_RANDOM_SHAPE_COMPONENTS],
                           model.shapedirs[:, :, named:named + NUM_RANDOM_SHAPE_COMPONENTS])


def test_card_and_preview(files, card):
    from PIL import Image

    assert [entry["au"] for entry in card["expression_components"]] == list(DEMO_EXPRESSION_AUS)
    assert card["shape_components"][0]["name"] == NAMED_SHAPE_COMPONENTS[0]
    assert "| 0 | AU1 | Inner Brow Raiser |" in files["card_markdown"].read_text()
    with Image.open(files["preview"]) as preview:
        assert preview.size[0] >= 6 * 200 and preview.size[1] >= 2 * 200


def test_au_parameters_mapping():
    expression, jaw = au_parameters({1: 5.0, 12: 2.5, 26: 4.0})
    assert expression.shape == (50,) and jaw.shape == (3,)
    assert expression[DEMO_EXPRESSION_AUS.index(1)] == pytest.approx(2.0)
    assert expression[DEMO_EXPRESSION_AUS.index(12)] == pytest.approx(1.0)
    assert np.count_nonzero(expression) == 2
    np.testing.assert_allclose(jaw, [4.0 * JAW_DROP_RADIANS_PER_INTENSITY, 0.0, 0.0])
    batch = np.zeros((4, 2, len(DEMO_AUS)))
    batch[..., DEMO_AUS.index(4)] = 3.0
    expression, jaw = au_parameters(batch, n_exp=100)
    assert expression.shape == (4, 2, 100) and jaw.shape == (4, 2, 3)
    np.testing.assert_allclose(expression[..., DEMO_EXPRESSION_AUS.index(4)], 1.2)
    with pytest.raises(ValueError, match=r"cannot show AU\(s\) \[14\]"):
        au_parameters({14: 1.0})
    with pytest.raises(ValueError, match="must lie in"):
        au_parameters({1: 6.0})
    with pytest.raises(ValueError, match="entries on the last axis"):
        au_parameters(np.zeros(3))
