"""The synthetic AU-labelled demo world: entry point that builds each part from a config.

Parts (:data:`~augane.demo.world_settings.WORLD_PARTS`), each deterministic
given ``demo.world`` and the face model files, and independent of the others:

* ``train`` and ``heldout``: still images with label tables
  (:mod:`augane.demo.world_images`), disjoint identities;
* ``disfa``: videos in DISFA's layout with per-frame ground truth
  (:mod:`augane.demo.world_disfa`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from augane.demo.world_settings import WORLD_PARTS, WorldSettings
from augane.errors import ConfigError


def world_renderer(config: Mapping[str, Any], settings: WorldSettings):
    """The :class:`~augane.demo.world_render.WorldRenderer` of the config's face model files."""
    from augane.demo.world_render import WorldRenderer, face_model_files

    return WorldRenderer(face_model_files(config["resources"]), settings.image_size, settings.supersample)


def write_world_part(config: Mapping[str, Any], part: str, out: str | Path) -> Path:
    """Write one part of the demo world.

    Args:
        config: a validated config (``demo.world`` and the face model's ``resources``).
        part: ``train``, ``heldout`` or ``disfa``.
        out: the split folder (images/, labels.csv, summary.json) or the DISFA root.
    Returns:
        ``out``.
    """
    if part not in WORLD_PARTS:
        raise ConfigError(f"demo world part must be one of {', '.join(WORLD_PARTS)}, got {part!r}")
    settings = WorldSettings.from_config(config["demo"]["world"])
    renderer = world_renderer(config, settings)
    if part == "disfa":
        from augane.demo.world_disfa import write_disfa_world

        return write_disfa_world(settings, renderer, out)
    from augane.demo.world_images import write_image_split

    return write_image_split(settings, part, renderer, out)
