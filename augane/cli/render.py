"""``augane render``: draw a mesh (or the configured face model) to a PNG with the differentiable renderer."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from augane.cli.common import add_config_arguments, config_from_args

log = logging.getLogger("augane.render")


def _colour(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"expected three numbers in [0, 1] such as 1,1,1; got {text!r}")
    return values


def _configured_face_model(resources: dict):
    """The configured FLAME-format model's neutral face, textured with the albedo model's mean when both exist."""
    import numpy as np

    from augane.errors import AssetError
    from augane.flame.io import load_flame_model
    from augane.flame.texture import load_albedo_space, load_head_template
    from augane.render.preview import PreviewMesh
    from augane.render.texture import UVLayout

    path = Path(resources["face_model"])
    if not path.is_file():
        raise AssetError(f"resources.face_model {path} does not exist (build the demo model with "
                         "'augane face-model build', or pass a mesh file)")
    model = load_flame_model(path)
    mesh = PreviewMesh(model.v_template.astype(np.float32), model.faces.astype(np.int64), source=str(path))
    template_path, albedo_path = resources.get("head_template"), resources.get("albedo_model")
    if template_path and albedo_path and Path(template_path).is_file() and Path(albedo_path).is_file():
        template = load_head_template(template_path, model.num_vertices, model.num_faces)
        mean = load_albedo_space(albedo_path, max_components=0).mean
        mesh.faces = template.faces.astype(np.int64)
        mesh.uv_layout = UVLayout.from_arrays(template.uvs, template.uv_faces, num_faces=len(template.faces))
        mesh.texture = np.ascontiguousarray(mean.transpose(2, 0, 1), dtype=np.float32)
    return mesh


def run(args: argparse.Namespace) -> int:
    import torch

    from augane.io.images import write_image
    from augane.render.preview import load_mesh, render_preview
    from augane.render.renderer import RenderSettings

    config = config_from_args(args)
    mesh = load_mesh(args.mesh) if args.mesh is not None else _configured_face_model(config["resources"])
    overrides = {"image_size": args.size}
    if args.shading is not None:
        overrides["shading"] = args.shading
    if args.background is not None:
        overrides["background_color"] = args.background
    settings = RenderSettings.from_config(config["render"], **overrides)
    device = "cuda" if config["device"] in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    image = render_preview(mesh, settings, yaw=args.yaw, pitch=args.pitch, scale=args.scale, device=device)
    write_image(args.out, image)
    log.info("wrote %s (%s, %d vertices, %d faces, %s shading)", args.out, mesh.source, len(mesh.vertices),
             len(mesh.faces), settings.shading)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``render``."""
    parser = subparsers.add_parser(
        "render",
        help="render a mesh file or the configured face model to a PNG",
        description="Render a triangle mesh (OBJ, PLY, ... through trimesh, vertex colours kept) or a "
        "FLAME-format model's template (.pkl) with AUGANE's renderer, DECA's camera and a frontal SH light. "
        "Without MESH, renders resources.face_model, textured with resources.albedo_model's mean through "
        "resources.head_template when both exist. Renderer settings come from the config's render section.",
    )
    add_config_arguments(parser)
    parser.add_argument("mesh", nargs="?", type=Path, help="mesh file (.obj, .ply, ... or a FLAME-format .pkl)")
    parser.add_argument("--out", type=Path, required=True, help="output image (.png)")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    parser.add_argument("--scale", type=float, default=None,
                        help="camera scale s (normalised units per model unit; default: fit the mesh to 90%% "
                        "of the image)")
    parser.add_argument("--yaw", type=float, default=0.0, help="turn about the vertical axis, degrees")
    parser.add_argument("--pitch", type=float, default=0.0, help="nod about the horizontal axis, degrees")
    parser.add_argument("--shading", choices=["sh", "albedo", "shape"], default=None,
                        help="sh (lit albedo), albedo (unlit) or shape (DECA's grey render); default: render.shading")
    parser.add_argument("--background", type=_colour, default=None, help="background RGB in [0, 1], e.g. 1,1,1")
    parser.set_defaults(func=run)
