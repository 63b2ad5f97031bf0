"""The synthetic AU-labelled demo world: entry point that builds each part.

Parts (:data:`~augane.demo.world_settings.WORLD_PARTS`), each deterministic
given ``demo.world`` and the demo face model, and independent of the others:

* ``train`` and ``heldout``: still images with label tables
  (:mod:`augane.demo.world_images`), disjoint identities;
* ``disfa``: videos in DISFA's layout with per-frame ground truth
  (:mod:`augane.demo.world_disfa`).

The world is always rendered from the demo face model (its expression
components are the AUs; :func:`augane.demo.face_model.au_parameters`), read
from its folder whatever ``resources.face_model`` names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from augane.demo.face_model import FACE_MODEL_FILES
from augane.demo.world_render import FACE_MODEL_ROLES, WorldRenderer
from augane.demo.world_settings import WORLD_PARTS, WorldSettings
from augane.errors import AssetError, ConfigError

#: Where the workflow writes the demo face model.
DEMO_FACE_MODEL_DIR = Path("results/demo/face_model")


def demo_face_model_files(folder: str | Path = DEMO_FACE_MODEL_DIR) -> dict[str, Path]:
    """The demo face model's files the renderer reads, by role; raises :class:`AssetError` when one is missing."""
    folder = Path(folder)
    files = {role: folder / FACE_MODEL_FILES[role] for role in FACE_MODEL_ROLES}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise AssetError(f"the demo face model is incomplete in {folder} (missing {missing}); "
                         "run `augane face-model build` (the demo_face_model rule) first")
    return files


def write_world_part(config: Mapping[str, Any], part: str, out: str | Path,
                     face_model_dir: str | Path = DEMO_FACE_MODEL_DIR) -> Path:
    """Write one part of the demo world.

    Args:
        config: a validated config (its ``demo.world`` section is read).
        part: ``train``, ``heldout`` or ``disfa``.
        out: the split folder (images/, labels.csv, summary.json) or the DISFA root.
        face_model_dir: the demo face model's folder.
    Returns:
        ``out``.
    """
    if part not in WORLD_PARTS:
        raise ConfigError(f"demo world part must be one of {', '.join(WORLD_PARTS)}, got {part!r}")
    settings = WorldSettings.from_config(config["demo"]["world"])
    renderer = WorldRenderer(demo_face_model_files(face_model_dir), settings.image_size, settings.supersample)
    if part == "disfa":
        from augane.demo.world_disfa import write_disfa_world

        return write_disfa_world(settings, renderer, out)
    from augane.demo.world_images import write_image_split

    return write_image_split(settings, part, renderer, out)
