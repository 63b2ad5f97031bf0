"""Demo face model: putting the steps together (capture, skin, parts, fields, texture, landmarks)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from augane.demo.face_model import (
    AU_INTENSITY_PER_UNIT,
    DEMO_EXPRESSION_AUS,
    FACE_MODEL_FILES,
    JAW_DROP_RADIANS_PER_INTENSITY,
    NUM_EXPRESSION_COLUMNS,
    NUM_SHAPE_COLUMNS,
    DemoFaceModel,
    au_movements,
)
from augane.demo.face_model_capture import (
    LEFT_IRIS_CENTER,
    LEFT_IRIS_CONTOUR,
    NUM_MESH_POINTS,
    RIGHT_IRIS_CENTER,
    RIGHT_IRIS_CONTOUR,
    AlignedFace,
    PhotoCapture,
    align_to_model_frame,
    capture_photo_landmarks,
    symmetrise,
)
from augane.demo.face_model_fields import (
    NAMED_SHAPE_COMPONENTS,
    NUM_RANDOM_SHAPE_COMPONENTS,
    FaceLandmarks,
    RandomShapeField,
    affine_regressor,
    expression_components,
    gaussian_falloff,
    named_shape_field,
    skin_fields,
)
from augane.demo.face_model_landmarks import landmark_embedding68, mediapipe_embedding
from augane.demo.face_model_mesh import FACE_OVAL, LEFT_EYE_LOOP, OUTER_LIP_LOOP, RIGHT_EYE_LOOP, build_skin
from augane.demo.face_model_parts import (
    EyeballShape,
    MouthFrame,
    Part,
    build_eyeball,
    build_mouth_cavity,
    build_teeth,
    fit_eyeball,
    mouth_frame,
    skin_depth,
)
from augane.demo.face_model_texture import (
    ALBEDO_COMPONENT_NAMES,
    EyePhoto,
    lip_texture_points,
    PhotoWindow,
    paint_eyeball,
    paint_mouth_cavity,
    paint_teeth,
    patch_texels,
    patch_to_atlas,
    random_blotches,
    rasterize_uv,
    sample_image,
    texel_uv,
)
from augane.flame.io import FLAME_PARENTS, JOINT_NAMES, NUM_JOINTS, NUM_POSE_FEATURES, FlameModelData
from augane.flame.layer import JAW, LEFT_EYE, NECK, RIGHT_EYE, ROOT
from augane.flame.texture import HeadTemplate

#: Skin points the jaw joint is regressed from (symmetric pairs around the lower face and the ears).
_JAW_ANCHORS = (234, 454, 93, 323, 132, 361, 58, 288, 172, 397)


@dataclass(frozen=True)
class _Assembly:
    """Skin and parts merged: ``regions`` maps a part name to its vertex range [start, stop)."""

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    weights: np.ndarray
    regions: dict[str, tuple[int, int]]
    face_regions: dict[str, tuple[int, int]]


def _merge(skin_vertices: np.ndarray, skin_faces: np.ndarray, skin_uv: np.ndarray, skin_weights: np.ndarray,
           parts: list[Part], size: int) -> _Assembly:
    """Skin first (so skin triangles and MediaPipe vertices keep their indices), then the parts."""
    vertices, faces, uvs, weights = [skin_vertices], [skin_faces], [skin_uv], [skin_weights]
    regions = {"skin": (0, len(skin_vertices))}
    face_regions = {"skin": (0, len(skin_faces))}
    offset, face_offset = len(skin_vertices), len(skin_faces)
    for part in parts:
        patch = "teeth" if part.name.endswith("teeth") else part.name
        vertices.append(part.vertices)
        faces.append(part.faces + offset)
        uvs.append(patch_to_atlas(patch, part.patch_uv, size))
        weights.append(part.weights)
        regions[part.name] = (offset, offset + len(part.vertices))
        face_regions[part.name] = (face_offset, face_offset + len(part.faces))
        offset += len(part.vertices)
        face_offset += len(part.faces)
    return _Assembly(np.concatenate(vertices), np.concatenate(faces), np.concatenate(uvs), np.concatenate(weights),
                     regions, face_regions)


def _joint_positions(skin: np.ndarray, eyes: dict[int, EyeballShape]) -> np.ndarray:
    """(5, 3) rest joints: jaw hinge in front of the ears, neck and root below and behind it, eyeball centres."""
    ears = skin[[234, 454]].mean(axis=0)
    jaw = np.array([0.0, ears[1] - 0.008, ears[2] - 0.010])
    neck = jaw + np.array([0.0, -0.030, -0.020])
    root = neck + np.array([0.0, -0.030, 0.0])
    joints = np.zeros((NUM_JOINTS, 3))
    joints[ROOT], joints[NECK], joints[JAW] = root, neck, jaw
    joints[LEFT_EYE], joints[RIGHT_EYE] = eyes[LEFT_EYE].center, eyes[RIGHT_EYE].center
    return joints


def _shape_block(assembly: _Assembly, marks: FaceLandmarks, eyes: dict[int, EyeballShape],
                 rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """(V, 3, 300) identity directions: named fields, seeded random fields, zeros. Eyeballs move rigidly."""
    skin_stop = assembly.regions["skin"][1]
    skin = assembly.vertices[:skin_stop]
    random_fields = [RandomShapeField.draw(rng, skin) for _ in range(NUM_RANDOM_SHAPE_COMPONENTS)]
    evaluators = [lambda p, n=name: named_shape_field(n, p, marks) for name in NAMED_SHAPE_COMPONENTS]
    evaluators += random_fields
    names = list(NAMED_SHAPE_COMPONENTS) + [f"random_{i + 1}" for i in range(NUM_RANDOM_SHAPE_COMPONENTS)]
    block = np.zeros((len(assembly.vertices), 3, NUM_SHAPE_COLUMNS))
    for column, evaluate in enumerate(evaluators):
        block[:, :, column] = evaluate(assembly.vertices)
        for joint, region in ((RIGHT_EYE, "right_eyeball"), (LEFT_EYE, "left_eyeball")):
            start, stop = assembly.regions[region]
            block[start:stop, :, column] = evaluate(eyes[joint].center[None])[0]
    return block, names


def _eye_photo(capture_points: np.ndarray, aligned_points: np.ndarray, symmetric_iris: np.ndarray,
               loop: tuple[int, ...], center: int, contour: tuple[int, ...]) -> EyePhoto:
    iris_photo = capture_points[center, :2]
    radius = np.linalg.norm(capture_points[list(contour), :2] - iris_photo, axis=1).mean()
    return EyePhoto(lid_polygon=capture_points[list(loop), :2], iris_center=iris_photo, iris_radius_px=float(radius),
                    model_shift=aligned_points[center] - symmetric_iris)


def _region_mask(vertices: np.ndarray, loop: tuple[int, ...]) -> np.ndarray:
    """1 for vertices inside the frontal polygon of ``loop`` (and its mirror image), 0 outside."""
    from matplotlib.path import Path as PolygonPath

    polygon = vertices[list(loop), :2]
    inside = PolygonPath(polygon).contains_points(vertices[:, :2])
    mirrored = PolygonPath(polygon * np.array([-1.0, 1.0])).contains_points(vertices[:, :2])
    return (inside | mirrored).astype(np.float64)


def _albedo(assembly: _Assembly, capture: PhotoCapture, aligned: AlignedFace, eyes: dict[int, EyeballShape],
            eye_photos: dict[int, EyePhoto], frame: MouthFrame, window: PhotoWindow, marks: FaceLandmarks,
            size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The atlas (size, size, 3) and its colour basis (size, size, 3, K)."""
    atlas = sample_image(capture.image.astype(np.float64) / 255.0, *window.to_photo(*texel_uv(size)))
    iris_atlas = np.zeros((size, size))
    for joint, name in ((RIGHT_EYE, "right_eyeball"), (LEFT_EYE, "left_eyeball")):
        rows, cols, pu, pv = patch_texels(name, size)
        atlas[rows, cols], iris_atlas[rows, cols] = paint_eyeball(capture.image, aligned, eye_photos[joint],
                                                                  eyes[joint], pu, pv)
    rows, cols, pu, pv = patch_texels("mouth_cavity", size)
    atlas[rows, cols] = paint_mouth_cavity(pu, pv)
    rows, cols, pu, pv = patch_texels("teeth", size)
    atlas[rows, cols] = paint_teeth(pu, pv, 1000.0 * 0.8 * frame.half_width)

    skin_stop = assembly.regions["skin"][1]
    skin_faces = assembly.faces[: assembly.face_regions["skin"][1]]
    skin_vertices = assembly.vertices[:skin_stop]
    lips = _region_mask(skin_vertices, OUTER_LIP_LOOP)
    cheeks = gaussian_falloff(skin_vertices, marks.cheeks, 0.015)
    values = np.stack([lips, cheeks], axis=1)
    masks, covered = rasterize_uv(assembly.uvs[:skin_stop], skin_faces, values, size)
    skin_mask = gaussian_filter(covered.astype(np.float64), 1.0)
    lip_mask = gaussian_filter(masks[..., 0], 1.5)
    basis = np.zeros((size, size, 3, len(ALBEDO_COMPONENT_NAMES)))
    basis[..., 0] = 0.15 * atlas
    basis[..., 1] = skin_mask[..., None] * np.array([0.05, -0.01, -0.03])
    basis[..., 2] = skin_mask[..., None] * np.array([0.02, 0.02, -0.04])
    basis[..., 3] = lip_mask[..., None] * np.array([0.07, -0.03, -0.02])
    basis[..., 4] = masks[..., 1:2] * np.array([0.06, -0.01, -0.01])
    basis[..., 5] = iris_atlas[..., None] * np.array([-0.06, 0.0, 0.07])
    for k in range(6, len(ALBEDO_COMPONENT_NAMES)):
        basis[..., k] = skin_mask[..., None] * random_blotches(rng, size)
    return np.clip(atlas, 0.0, 1.0), basis


def assemble(seed: int, subdivisions: int, texture_size: int) -> DemoFaceModel:
    """Build every array of the demo face model (see :mod:`augane.demo.face_model`)."""
    import skimage.data

    if not 0 <= subdivisions <= 2:
        raise ValueError(f"subdivisions must be 0, 1 or 2, got {subdivisions}")
    if texture_size < 64 or texture_size % 16:
        raise ValueError(f"texture_size must be a multiple of 16 of at least 64, got {texture_size}")
    rng = np.random.default_rng(seed)
    capture = capture_photo_landmarks(skimage.data.astronaut())
    aligned = align_to_model_frame(capture)
    mirror = aligned.mirror
    neutral = symmetrise(aligned.points[:NUM_MESH_POINTS], mirror)
    iris = {RIGHT_EYE: aligned.points[RIGHT_IRIS_CENTER], LEFT_EYE: aligned.points[LEFT_IRIS_CENTER]}
    flip = np.array([-1.0, 1.0, 1.0])
    iris[RIGHT_EYE] = 0.5 * (iris[RIGHT_EYE] + iris[LEFT_EYE] * flip)
    iris[LEFT_EYE] = iris[RIGHT_EYE] * flip

    skin = build_skin(neutral, lip_texture_points(capture.points[:NUM_MESH_POINTS, :2]), subdivisions, mirror)
    right = fit_eyeball(skin.vertices[list(RIGHT_EYE_LOOP)], iris[RIGHT_EYE])
    eyes = {RIGHT_EYE: right, LEFT_EYE: EyeballShape(center=right.center * flip, radii=right.radii)}
    frame = mouth_frame(skin.vertices)
    depth = skin_depth(skin.vertices)
    upper_teeth, lower_teeth = build_teeth(frame, depth)
    parts = [
        build_eyeball("right_eyeball", eyes[RIGHT_EYE], RIGHT_EYE),
        build_eyeball("left_eyeball", eyes[LEFT_EYE], LEFT_EYE),
        build_mouth_cavity(frame, depth),
        upper_teeth,
        lower_teeth,
    ]

    fields = skin_fields(skin.vertices, skin.faces, mirror)
    skin_weights = np.zeros((len(skin.vertices), NUM_JOINTS))
    skin_weights[:, JAW], skin_weights[:, NECK] = fields.jaw, 1.0 - fields.jaw
    window = PhotoWindow.around(skin.photo_points)
    assembly = _merge(skin.vertices, skin.faces, window.to_uv(skin.photo_points), skin_weights, parts, texture_size)
    num_vertices = len(assembly.vertices)

    marks = FaceLandmarks.from_skin(skin.vertices, mirror)
    shape_block, shape_names = _shape_block(assembly, marks, eyes, rng)
    expression_block = np.zeros((num_vertices, 3, NUM_EXPRESSION_COLUMNS))
    expression_block[: len(skin.vertices), :, : len(DEMO_EXPRESSION_AUS)] = expression_components(
        skin.vertices, fields, mirror
    )

    joints = _joint_positions(skin.vertices, eyes)
    regressor = np.zeros((NUM_JOINTS, num_vertices))
    outline = list(FACE_OVAL)
    regressor[ROOT, outline] = affine_regressor(assembly.vertices[outline], joints[ROOT])
    regressor[NECK, outline] = affine_regressor(assembly.vertices[outline], joints[NECK])
    regressor[JAW, list(_JAW_ANCHORS)] = affine_regressor(assembly.vertices[list(_JAW_ANCHORS)], joints[JAW])
    for joint, region in ((RIGHT_EYE, "right_eyeball"), (LEFT_EYE, "left_eyeball")):
        start, stop = assembly.regions[region]
        regressor[joint, start:stop] = affine_regressor(assembly.vertices[start:stop], joints[joint])

    model = FlameModelData(
        v_template=assembly.vertices,
        faces=assembly.faces,
        shapedirs=np.concatenate([shape_block, expression_block], axis=2),
        posedirs=np.zeros((num_vertices, 3, NUM_POSE_FEATURES)),
        j_regressor=regressor,
        parents=FLAME_PARENTS,
        weights=assembly.weights,
        source="demo face model",
    )
    skin_faces = assembly.faces[: assembly.face_regions["skin"][1]]
    landmarks68 = landmark_embedding68(skin.vertices, skin_faces)
    landmarks105 = mediapipe_embedding(skin_faces)

    eye_photos = {
        RIGHT_EYE: _eye_photo(capture.points, aligned.points, iris[RIGHT_EYE], RIGHT_EYE_LOOP, RIGHT_IRIS_CENTER,
                              RIGHT_IRIS_CONTOUR),
        LEFT_EYE: _eye_photo(capture.points, aligned.points, iris[LEFT_EYE], LEFT_EYE_LOOP, LEFT_IRIS_CENTER,
                             LEFT_IRIS_CONTOUR),
    }
    albedo_mean, albedo_basis = _albedo(assembly, capture, aligned, eyes, eye_photos, frame, window, marks,
                                        texture_size, rng)
    vertex_colors = sample_image(albedo_mean, assembly.uvs[:, 0] * texture_size,
                                 (1.0 - assembly.uvs[:, 1]) * texture_size)
    template = HeadTemplate(vertices=assembly.vertices, faces=assembly.faces, uvs=assembly.uvs,
                            uv_faces=assembly.faces.copy(), source="demo face model")
    card = _card(seed, subdivisions, texture_size, assembly, joints, shape_names, capture.image.shape)
    return DemoFaceModel(model=model, template=template, albedo_mean=albedo_mean, albedo_basis=albedo_basis,
                         landmarks68=landmarks68, landmarks105=landmarks105, vertex_colors=vertex_colors, card=card)


def _card(seed: int, subdivisions: int, texture_size: int, assembly: _Assembly, joints: np.ndarray,
          shape_names: list[str], image_shape: tuple[int, ...]) -> dict:
    """The model card: what every component, joint and file is."""
    import mediapipe

    from augane.aus import au_name

    movements = au_movements()
    return {
        "summary": (
            "A FLAME-format face model built from MediaPipe's face mesh on skimage.data.astronaut() "
            "(public-domain NASA portrait): metres, y up, facing +z; skin from MediaPipe's 468 points "
            "(vertices 0-467 keep MediaPipe's indices), eyeballs, mouth cavity and teeth behind the openings; "
            "FLAME's 5-joint tree; posedirs are zero."
        ),
        "settings": {"seed": seed, "subdivisions": subdivisions, "texture_size": texture_size},
        "source": {"photo": "skimage.data.astronaut()", "photo_size": list(image_shape[:2]),
                   "mediapipe": mediapipe.__version__, "face_mesh": "static image mode, refine_landmarks=True"},
        "mesh": {
            "vertices": int(len(assembly.vertices)),
            "triangles": int(len(assembly.faces)),
            "vertex_regions": {k: list(v) for k, v in assembly.regions.items()},
            "triangle_regions": {k: list(v) for k, v in assembly.face_regions.items()},
        },
        "joints": [
            {"name": name, "parent": JOINT_NAMES[parent] if parent >= 0 else None,
             "position": [round(float(c), 5) for c in joints[index]]}
            for index, (name, parent) in enumerate(zip(JOINT_NAMES, FLAME_PARENTS))
        ],
        "shapedirs": {"identity_columns": NUM_SHAPE_COLUMNS, "expression_columns": NUM_EXPRESSION_COLUMNS},
        "shape_components": [{"index": i, "name": name} for i, name in enumerate(shape_names)],
        "expression_components": [
            {"index": k, "au": au, "name": au_name(au), "movement": movements[au]}
            for k, au in enumerate(DEMO_EXPRESSION_AUS)
        ],
        "au_intensity_per_unit": AU_INTENSITY_PER_UNIT,
        "jaw_drop": {"au": 26, "radians_per_intensity": JAW_DROP_RADIANS_PER_INTENSITY,
                     "pose_entry": "pose[:, 3] (jaw axis-angle about +x; positive opens)"},
        "albedo_components": list(ALBEDO_COMPONENT_NAMES),
        "landmarks": {
            "105": "EMOCA layout; the MediaPipe vertices themselves (one-hot barycentrics)",
            "68": "DECA layout; augane.landmarks.MEDIAPIPE_IBUG68, contour re-computed per yaw bin as the silhouette",
        },
        "files": {
            FACE_MODEL_FILES["face_model"]: "FLAME-format model (plain numpy pickle)",
            FACE_MODEL_FILES["mediapipe_embedding"]: "105 MediaPipe landmarks (EMOCA's layout)",
            FACE_MODEL_FILES["landmark_embedding"]: "68 landmarks (DECA's layout; dynamic arrays as torch tensors)",
            FACE_MODEL_FILES["head_template"]: "OBJ with the UV layout (v/vt faces)",
            FACE_MODEL_FILES["albedo_model"]: "UV albedo space, FLAME_texture.npz layout (BGR, 0-255)",
            FACE_MODEL_FILES["preview"]: "the model neutral and with AUs, with its 105 landmarks",
        },
    }
