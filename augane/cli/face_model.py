"""Face model commands: ``face-model build`` (the demo face model) and ``face-model export`` (a mesh file)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from augane.cli.common import add_config_arguments, config_from_args

log = logging.getLogger("augane.face_model")

DEFAULT_DEMO_DIR = Path("results/demo/face_model")


def run_build(args: argparse.Namespace) -> int:
    from augane.demo.face_model import write_demo_face_model

    settings = config_from_args(args)["demo"]["face_model"]
    paths = write_demo_face_model(
        args.out_dir,
        seed=int(settings["seed"]),
        subdivisions=int(settings["subdivisions"]),
        texture_size=int(settings["texture_size"]),
    )
    for role, path in paths.items():
        log.info("%s: %s", role, path)
    return 0


def _parse_aus(text: str) -> dict[int, float]:
    from augane.errors import ConfigError

    intensities: dict[int, float] = {}
    for item in filter(None, text.split(",")):
        try:
            au, value = item.split("=")
            intensities[int(au.strip().upper().removeprefix("AU"))] = float(value)
        except ValueError:
            raise ConfigError(f"--aus expects AU=intensity pairs such as 12=4,26=2.5; got {item!r}") from None
    return intensities


def run_export(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from augane.demo.face_model import au_parameters
    from augane.errors import ConfigError
    from augane.flame.export import write_mesh
    from augane.flame.layer import FlameLayer
    from augane.flame.texture import load_albedo_space, load_head_template

    resources = config_from_args(args)["resources"]
    layer = FlameLayer.from_files(resources["face_model"], dtype=torch.float64)
    expression = torch.zeros(1, layer.n_exp, dtype=torch.float64)
    pose = torch.zeros(1, 6, dtype=torch.float64)
    if args.aus:
        try:
            values, jaw = au_parameters(_parse_aus(args.aus), n_exp=layer.n_exp)
        except ValueError as err:
            raise ConfigError(f"--aus: {err}") from None
        expression[0], pose[0, 3:] = torch.from_numpy(values), torch.from_numpy(jaw)
    vertices = layer(torch.zeros(1, layer.n_shape, dtype=torch.float64), expression, pose).vertices[0].numpy()
    colors = None
    if resources.get("head_template") and resources.get("albedo_model"):
        template = load_head_template(resources["head_template"], layer.num_vertices, int(layer.faces.shape[0]))
        albedo = load_albedo_space(resources["albedo_model"], max_components=0).mean
        rows = np.clip(((1.0 - template.uvs[:, 1]) * albedo.shape[0]).astype(int), 0, albedo.shape[0] - 1)
        cols = np.clip((template.uvs[:, 0] * albedo.shape[1]).astype(int), 0, albedo.shape[1] - 1)
        colors = np.zeros((layer.num_vertices, 3))
        colors[template.faces.ravel()] = albedo[rows, cols][template.uv_faces.ravel()]
    write_mesh(args.out, vertices, layer.faces.numpy(), colors)
    log.info("wrote %s (%d vertices%s)", args.out, len(vertices), ", vertex colours" if colors is not None else "")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``face-model build`` and ``face-model export``."""
    parser = subparsers.add_parser(
        "face-model",
        help="build the demo face model, or export a face-model mesh",
        description="The FLAME-format face model: build the built-in demo model, or export a mesh of the "
        "configured model (resources.face_model) with AUs applied.",
    )
    commands = parser.add_subparsers(dest="face_model_command", metavar="COMMAND", required=True)

    build = commands.add_parser(
        "build",
        help="write the demo face model (FLAME-format files, card and preview)",
        description="Build the demo face model from MediaPipe's face mesh on a bundled photo and write "
        "face_model.pkl, landmark_embedding.npy, mediapipe_landmark_embedding.npz, head_template.obj, "
        "albedo_model.npz, face_model_card.{json,md} and preview.png. Settings: demo.face_model.",
    )
    add_config_arguments(build)
    build.add_argument("--out-dir", type=Path, default=DEFAULT_DEMO_DIR,
                       help=f"output folder (default: {DEFAULT_DEMO_DIR})")
    build.set_defaults(func=run_build)

    export = commands.add_parser(
        "export",
        help="write the configured face model as an OBJ or PLY mesh, optionally with AUs (demo model)",
        description="Decode the face model of resources.face_model with zero shape and pose and write it; "
        "--aus applies demo-model AU intensities (e.g. 12=4,26=2.5). Vertex colours come from "
        "resources.head_template and resources.albedo_model when both are set.",
    )
    add_config_arguments(export)
    export.add_argument("--out", type=Path, required=True, help="mesh file (.obj or .ply)")
    export.add_argument("--aus", default="", help="AU intensities 0-5, e.g. 1=3,12=4,26=2 (demo face model)")
    export.set_defaults(func=run_export)
