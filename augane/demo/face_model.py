"""The built-in demo face model: a FLAME-format model made from MediaPipe's face mesh on a bundled photo.

It stands in for FLAME (licence-gated) in the embedded default, so the same
loaders (:mod:`augane.flame.io`) and the same layer (:class:`augane.flame.layer.FlameLayer`)
serve it. What it is made of (details in the ``face_model_*`` modules):

* skin: MediaPipe's 468-point face mesh on ``skimage.data.astronaut()``,
  aligned to FLAME's frame (metres, y up, facing +z; face about 0.13 m wide at
  the cheekbones), made mirror-symmetric, mouth closed, subdivided; vertices
  0..467 are MediaPipe's points, so the 105 landmarks are exact vertices;
* eyeballs (on the eye joints), a mouth cavity and teeth behind the openings;
* FLAME's 5 joints and kinematic tree (root, neck, jaw, left eye, right eye),
  harmonic jaw weights, an affine ``J_regressor``; ``posedirs`` are zero;
* ``shapedirs`` with 300 identity columns (12 named smooth fields, 8 seeded
  random smooth fields, the rest zero) and 100 expression columns: one
  component per action unit in :data:`DEMO_EXPRESSION_AUS` order, the rest zero;
* a UV atlas from the photo with a small albedo basis, DECA's 68-point and
  EMOCA's 105-point landmark embeddings.

:func:`au_parameters` turns AU intensities (0-5) into the expression vector
and jaw pose that show them: AU ``k`` drives its component with coefficient
``intensity / AU_INTENSITY_PER_UNIT``; AU26 (jaw drop) opens the jaw joint by
:data:`JAW_DROP_RADIANS_PER_INTENSITY` per intensity step, as FLAME opens its jaw.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augane.demo.face_model_fields import (
    AU_HANDLES,
    AU_INTENSITY_PER_UNIT,
    DEMO_EXPRESSION_AUS,
    NAMED_SHAPE_COMPONENTS,
    NUM_RANDOM_SHAPE_COMPONENTS,
)
from augane.flame.embedding import LandmarkEmbedding68, MediapipeEmbedding
from augane.flame.io import FlameModelData, NUM_EXPRESSION_COMPONENTS
from augane.flame.texture import HeadTemplate

#: Every AU the demo model can show: the expression components, then AU26 (jaw joint).
DEMO_AUS: tuple[int, ...] = (*DEMO_EXPRESSION_AUS, 26)
#: Jaw opening (radians about +x) per AU26 intensity step: 0.25 rad (14 degrees) at intensity 5.
JAW_DROP_RADIANS_PER_INTENSITY = 0.05
NUM_SHAPE_COLUMNS = 300
NUM_EXPRESSION_COLUMNS = NUM_EXPRESSION_COMPONENTS
MAX_AU_INTENSITY = 5.0

FACE_MODEL_FILES: dict[str, str] = {
    "face_model": "face_model.pkl",
    "mediapipe_embedding": "mediapipe_landmark_embedding.npz",
    "landmark_embedding": "landmark_embedding.npy",
    "head_template": "head_template.obj",
    "albedo_model": "albedo_model.npz",
    "card_json": "face_model_card.json",
    "card_markdown": "face_model_card.md",
    "preview": "preview.png",
}


def au_parameters(
    intensities: Mapping[int, float] | np.ndarray, n_exp: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Expression coefficients and jaw pose of the demo face model showing the given AU intensities.

    Args:
        intensities: ``{AU: intensity}`` (AUs of :data:`DEMO_AUS`, others refused),
            or an array (..., len(DEMO_AUS)) in :data:`DEMO_AUS` order; 0-5 scale.
        n_exp: length of the expression vector (the layer's ``n_exp``; at least
            ``len(DEMO_EXPRESSION_AUS)``).
    Returns:
        expression (..., n_exp) and jaw_pose (..., 3) axis-angle (the last 3
        entries of DECA's 6-d pose), float64.
    Raises:
        ValueError: an AU the model cannot show, a wrong array width, or
            intensities outside [0, 5].
    """
    if n_exp < len(DEMO_EXPRESSION_AUS):
        raise ValueError(f"n_exp={n_exp} cannot hold the {len(DEMO_EXPRESSION_AUS)} AU components")
    if isinstance(intensities, Mapping):
        unknown = sorted(set(intensities) - set(DEMO_AUS))
        if unknown:
            raise ValueError(f"the demo face model cannot show AU(s) {unknown}; it shows {list(DEMO_AUS)}")
        values = np.array([float(intensities.get(au, 0.0)) for au in DEMO_AUS])
    else:
        values = np.asarray(intensities, dtype=np.float64)
        if values.shape[-1:] != (len(DEMO_AUS),):
            raise ValueError(f"AU intensities must have {len(DEMO_AUS)} entries on the last axis "
                             f"(DEMO_AUS order {list(DEMO_AUS)}), got shape {values.shape}")
    if np.any(values < 0) or np.any(values > MAX_AU_INTENSITY):
        raise ValueError(f"AU intensities must lie in [0, {MAX_AU_INTENSITY:g}]")
    expression = np.zeros((*values.shape[:-1], n_exp))
    expression[..., : len(DEMO_EXPRESSION_AUS)] = values[..., :-1] / AU_INTENSITY_PER_UNIT
    jaw_pose = np.zeros((*values.shape[:-1], 3))
    jaw_pose[..., 0] = values[..., -1] * JAW_DROP_RADIANS_PER_INTENSITY
    return expression, jaw_pose


@dataclass(frozen=True)
class DemoFaceModel:
    """Everything the demo face model files hold.

    Attributes:
        model: the FLAME-format arrays.
        template: the UV layout (same vertices and triangles as ``model``).
        albedo_mean: (S, S, 3) RGB atlas in [0, 1].
        albedo_basis: (S, S, 3, K) RGB per unit coefficient.
        landmarks68: DECA-layout 68-point embedding.
        landmarks105: EMOCA-layout 105-point embedding.
        vertex_colors: (V, 3) albedo at each vertex (for exports and previews).
        card: the documentation of the components (JSON-ready).
    """

    model: FlameModelData
    template: HeadTemplate
    albedo_mean: np.ndarray
    albedo_basis: np.ndarray
    landmarks68: LandmarkEmbedding68
    landmarks105: MediapipeEmbedding
    vertex_colors: np.ndarray
    card: dict[str, Any] = field(default_factory=dict)


def build_demo_face_model(seed: int = 0, subdivisions: int = 1, texture_size: int = 256) -> DemoFaceModel:
    """Build the demo face model (deterministic for a given seed and settings).

    Args:
        seed: seeds the random identity fields and albedo blotches.
        subdivisions: times the skin's triangles are split in four (0-2).
        texture_size: side of the UV atlas in texels (a multiple of 16).
    """
    from augane.demo.face_model_build import assemble

    return assemble(seed=seed, subdivisions=subdivisions, texture_size=texture_size)


def write_demo_face_model(
    out_dir: str | Path, seed: int = 0, subdivisions: int = 1, texture_size: int = 256
) -> dict[str, Path]:
    """Build the demo face model and write its files (names in :data:`FACE_MODEL_FILES`) into ``out_dir``.

    The preview is drawn from the written files loaded back through the same
    loaders as real FLAME files, so a file that does not load fails here.

    Returns:
        File role -> path.
    """
    from augane.flame.io import write_flame_model, write_landmark_embedding, write_mediapipe_embedding
    from augane.flame.texture import write_albedo_space, write_head_template

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {role: out_dir / name for role, name in FACE_MODEL_FILES.items()}
    demo = build_demo_face_model(seed=seed, subdivisions=subdivisions, texture_size=texture_size)
    write_flame_model(paths["face_model"], demo.model)
    write_landmark_embedding(paths["landmark_embedding"], demo.landmarks68)
    write_mediapipe_embedding(paths["mediapipe_embedding"], demo.landmarks105)
    write_head_template(paths["head_template"], demo.template,
                        header="AUGANE demo face model: vertices and UV layout (v/vt faces)")
    write_albedo_space(paths["albedo_model"], demo.albedo_mean, demo.albedo_basis)
    write_card(paths["card_json"], paths["card_markdown"], demo.card)
    from augane.demo.face_model_preview import write_preview

    write_preview(paths["preview"], paths)
    return paths


def write_card(path_json: Path, path_markdown: Path, card: dict[str, Any]) -> None:
    """The component documentation as JSON and as a Markdown page."""
    from augane.io.atomic import write_text_atomic

    write_text_atomic(path_json, json.dumps(card, indent=2) + "\n")
    lines = [
        "# Demo face model",
        "",
        card["summary"],
        "",
        f"Vertices: {card['mesh']['vertices']}, triangles: {card['mesh']['triangles']} "
        f"(regions: {', '.join(f'{k} {v[0]}-{v[1] - 1}' for k, v in card['mesh']['vertex_regions'].items())}).",
        "",
        "## Expression components (shapedirs columns 300 + k)",
        "",
        f"Coefficient 1 shows the AU at intensity {AU_INTENSITY_PER_UNIT:g}; "
        f"AU26 opens the jaw by {JAW_DROP_RADIANS_PER_INTENSITY:g} rad per intensity step (pose[3]). "
        "Each movement is a Gaussian (sigma in mm) around the listed MediaPipe points and their mirror "
        "partners; lateral means away from the midline.",
        "",
        "| k | AU | name | movement |",
        "| --- | --- | --- | --- |",
    ]
    for entry in card["expression_components"]:
        lines.append(f"| {entry['index']} | AU{entry['au']} | {entry['name']} | {entry['movement']} |")
    lines += ["", "## Identity components (shapedirs columns k)", "", "| k | name |", "| --- | --- |"]
    lines += [f"| {e['index']} | {e['name']} |" for e in card["shape_components"]]
    lines += ["", "## Albedo components (tex parameters)", "", "| k | name |", "| --- | --- |"]
    lines += [f"| {i} | {name} |" for i, name in enumerate(card["albedo_components"])]
    lines += ["", "## Joints", "", "| joint | parent | rest position (m) |", "| --- | --- | --- |"]
    lines += [f"| {j['name']} | {j['parent']} | {j['position']} |" for j in card["joints"]]
    lines += ["", "## Files", ""] + [f"- `{name}`: {text}" for name, text in card["files"].items()]
    write_text_atomic(path_markdown, "\n".join(lines) + "\n")


def au_movements() -> dict[int, str]:
    """One line per AU component describing its handles (for the card)."""
    described = {}
    for au, handles in AU_HANDLES.items():
        parts = []
        for handle in handles:
            lateral, up, forward = handle.offset
            region = f"MediaPipe {list(handle.anchors)}" + (f" ({handle.mask})" if handle.mask else "")
            parts.append(
                f"{region}: lateral {lateral:+g}, up {up:+g}, forward {forward:+g} mm (sigma {handle.sigma:g})"
            )
        described[au] = "; ".join(parts)
    return described


__all__ = [
    "DEMO_AUS",
    "DEMO_EXPRESSION_AUS",
    "AU_INTENSITY_PER_UNIT",
    "JAW_DROP_RADIANS_PER_INTENSITY",
    "NAMED_SHAPE_COMPONENTS",
    "NUM_RANDOM_SHAPE_COMPONENTS",
    "FACE_MODEL_FILES",
    "DemoFaceModel",
    "au_parameters",
    "build_demo_face_model",
]
