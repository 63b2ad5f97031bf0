"""``augane reconstruct``: 3D faces from your own images, folders and videos."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from augane.cli.common import add_config_arguments, add_threads_argument, config_from_args, set_torch_threads

log = logging.getLogger("augane.reconstruct")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``reconstruct``."""
    parser = subparsers.add_parser(
        "reconstruct",
        help="reconstruct 3D faces from an image, a folder or a video (FLAME parameters, meshes, renders, overlays)",
        description="Find the largest face in every image or video frame (MediaPipe, the preprocessing's crop), run "
        "the AU detector and DECA on the crop, predict expression, pose and camera with the method (AUGANE: the "
        "trained GANE checkpoint; DECA or EMOCA: their own estimates), and write per frame the FLAME parameters "
        "(.npz), the mesh, the render and overlays; for videos also an MP4 of input | reconstruction. Frames without "
        "a face are listed in frames.csv and skipped. Exits with an error only when nothing could be reconstructed.",
    )
    parser.add_argument("input", type=Path, help="an image, a video (any format OpenCV decodes) or a folder of them")
    parser.add_argument("--out-dir", type=Path, required=True, help="output folder")
    parser.add_argument("--method", choices=("augane", "deca", "emoca"), default=None,
                        help="reconstruction method (default: reconstruct.method of the config, augane)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="GANE checkpoint for augane (default: reconstruct.checkpoint, else "
                        "results/train/<run_name>/checkpoints/best.pt)")
    parser.add_argument("--mesh", choices=("obj", "ply", "none"), default=None,
                        help="mesh file per frame (default: reconstruct.mesh of the config, obj)")
    parser.add_argument("--frame-stride", type=int, default=None, help="every k-th video frame (default 1)")
    parser.add_argument("--batch-size", type=int, default=None, help="frames per network batch (default 8)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                        help="where the networks run (default: the config's device)")
    add_threads_argument(parser)
    add_config_arguments(parser)
    parser.set_defaults(func=run_reconstruct)


def run_reconstruct(args: argparse.Namespace) -> int:
    from augane.evaluate.user_media import MediaSettings, reconstruct_media
    from augane.features.runtime import resolve_device

    config = config_from_args(args)
    set_torch_threads(args)
    section = config.get("reconstruct", {})
    mesh = args.mesh or section.get("mesh", "obj")
    checkpoint = args.checkpoint or (Path(section["checkpoint"]) if section.get("checkpoint") else None)
    settings = MediaSettings(
        method=args.method or section.get("method", "augane"),
        mesh=None if mesh == "none" else mesh,
        batch_size=args.batch_size or int(section.get("batch_size", 8)),
        frame_stride=args.frame_stride or int(section.get("frame_stride", 1)),
        checkpoint=checkpoint,
    )
    device = resolve_device(args.device or config["device"])
    result = reconstruct_media(args.input, args.out_dir, config, settings, device)
    summary = result.summary
    log.info("%d of %d frames reconstructed with %s in %.1f s (%s); per-frame statuses in %s",
             summary["reconstructed"], summary["frames"], settings.method, summary["seconds"],
             ", ".join(f"{status} {count}" for status, count in summary["statuses"].items()),
             args.out_dir / "frames.csv")
    return 0
