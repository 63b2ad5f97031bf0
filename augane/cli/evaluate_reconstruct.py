"""The reconstruction steps of the DISFA evaluation, between ``evaluate-select`` and ``evaluate-report``.

``evaluate-inputs``       index.parquet + features.parquet -> the ``input`` rows with each frame's place in the cache
``evaluate-reconstruct``  selected frames -> one method's renders -> its AU predictions (and ground-truth errors)
``evaluate-combine``      input rows + every method's rows -> one predictions table (and one error table)
``evaluate-images``       the qualitative grid's frames: input crops and each method's renders as PNG
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from augane.cli.common import add_config_arguments, add_threads_argument, config_from_args, set_torch_threads

log = logging.getLogger("augane.evaluate")

METHOD_CHOICES = ("augane", "deca", "emoca")


def _add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="the DISFA-type dataset (a name under datasets:)")
    parser.add_argument("--cache-root", type=Path, default=Path("results/cache"),
                        help="folder of the cached datasets (default results/cache)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="GANE checkpoint for augane (default: evaluate.disfa.checkpoint, else "
                        "results/train/<run_name>/checkpoints/best.pt)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                        help="where to reconstruct (default: the config's device)")
    add_threads_argument(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate-inputs``, ``evaluate-reconstruct``, ``evaluate-combine`` and ``evaluate-images``."""
    inputs = subparsers.add_parser(
        "evaluate-inputs",
        help="the AU detector's output on a dataset's input frames, with subject, frame and place in the cache",
        description="Join the dataset's index.parquet (subject, frame, status) and features.parquet (valid, "
        "prob_<AU>, shard, row) on sample_id: the table evaluate-select and evaluate-report read as input rows.",
    )
    inputs.add_argument("--index", type=Path, required=True, help="results/cache/<dataset>/index.parquet")
    inputs.add_argument("--features", type=Path, required=True, help="results/cache/<dataset>/features.parquet")
    inputs.add_argument("--out", type=Path, required=True, help="parquet table to write")
    inputs.set_defaults(func=run_inputs)

    reconstruct = subparsers.add_parser(
        "evaluate-reconstruct",
        help="reconstruct the selected DISFA frames with one method, render them and run the AU detector on the renders",
        description="For every frame of --frames (augane evaluate-select --frames-out), read the cached crop and "
        "features, predict expression, pose and camera with the method (GANE checkpoint, DECA's or EMOCA's cached "
        "estimate), decode with the face model, render over the crop with the training renderer and compositing, and "
        "run the AU detector on the render. Writes the method's rows of the predictions table; frames without a face "
        "keep NaN probabilities.",
    )
    reconstruct.add_argument("--frames", type=Path, required=True, help="the selected frames (CSV or parquet)")
    reconstruct.add_argument("--method", choices=METHOD_CHOICES, required=True)
    reconstruct.add_argument("--out", type=Path, required=True, help="predictions parquet to write")
    reconstruct.add_argument("--errors-out", type=Path, default=None,
                             help="also write per-frame errors against the dataset's GroundTruth/ folder (synthetic "
                             "world only): vertex_error_mm, landmark_nme, expression_rmse")
    reconstruct.add_argument("--batch-size", type=int, default=None,
                             help="frames per batch (default evaluate.disfa.batch_size)")
    _add_runtime_arguments(reconstruct)
    add_config_arguments(reconstruct)
    reconstruct.set_defaults(func=run_reconstruct)

    combine = subparsers.add_parser(
        "evaluate-combine",
        help="stack the input rows and every method's predictions (and error tables) into one table each",
    )
    combine.add_argument("--inputs", type=Path, required=True, help="the evaluate-inputs table (the input rows)")
    combine.add_argument("--predictions", type=Path, nargs="+", required=True, help="each method's predictions")
    combine.add_argument("--out", type=Path, required=True, help="the combined predictions table (parquet)")
    combine.add_argument("--errors", type=Path, nargs="*", default=[], help="each method's ground-truth errors")
    combine.add_argument("--errors-out", type=Path, default=None, help="the combined error table (parquet)")
    combine.set_defaults(func=run_combine)

    images = subparsers.add_parser(
        "evaluate-images",
        help="write the qualitative grid's input crops and renders (the frames evaluate-report will choose)",
    )
    images.add_argument("--predictions", type=Path, required=True, help="the combined predictions table")
    images.add_argument("--frames", type=Path, required=True, help="the selected frames (CSV or parquet)")
    images.add_argument("--out-dir", type=Path, required=True,
                        help="images folder: <out-dir>/<method>/<subject>/<frame:06d>.png ('input' for crops)")
    _add_runtime_arguments(images)
    add_config_arguments(images)
    images.set_defaults(func=run_images)


def _setup(args: argparse.Namespace) -> dict:
    config = config_from_args(args)
    set_torch_threads(args)
    if args.device is not None:
        config["device"] = args.device
    return config


def _checkpoint(args: argparse.Namespace, config: dict) -> Path | None:
    if args.checkpoint is not None:
        return args.checkpoint
    configured = config["evaluate"]["disfa"].get("checkpoint")
    return Path(configured) if configured else None


def run_inputs(args: argparse.Namespace) -> int:
    from augane.evaluate.inputs import input_table
    from augane.evaluate.predictions import read_table
    from augane.evaluate.disfa_reconstruct import write_table

    table = input_table(read_table(args.index, "index"), read_table(args.features, "features"),
                        source=f"{args.index} + {args.features}")
    write_table(table, args.out, {"index": str(args.index), "features": str(args.features)})
    log.info("%s: %d frames of %d subjects, %d with a face", args.out, len(table), table["subject"].nunique(),
             int(table["valid"].sum()))
    return 0


def run_reconstruct(args: argparse.Namespace) -> int:
    from augane.errors import DataError
    from augane.evaluate.cached_frames import read_frames_table
    from augane.evaluate.disfa_reconstruct import reconstruct_frames, write_table
    from augane.evaluate.ground_truth import ground_truth_folder

    config = _setup(args)
    if args.dataset not in config["datasets"]:
        raise DataError(f"--dataset {args.dataset}: no such dataset in the config (known: {sorted(config['datasets'])})")
    ground_truth = None
    if args.errors_out is not None:
        root = config["datasets"][args.dataset]["path"]
        ground_truth = ground_truth_folder(root)
        if ground_truth is None:
            raise DataError(f"--errors-out needs ground truth, but {root} has no GroundTruth/ folder (only the "
                            "synthetic world has one)")
    batch_size = args.batch_size or int(config["evaluate"]["disfa"].get("batch_size", 16))
    result = reconstruct_frames(
        config, args.cache_root / args.dataset, read_frames_table(args.frames), args.method,
        checkpoint=_checkpoint(args, config), ground_truth=ground_truth, batch_size=batch_size,
    )
    write_table(result.predictions, args.out, result.provenance)
    if result.errors is not None:
        write_table(result.errors, args.errors_out, result.provenance)
    log.info("%s", json.dumps({key: result.provenance[key] for key in
                               ("method", "frames", "reconstructed", "no_face", "frames_per_second",
                                "mean_render_coverage", "mean_landmark_nme_input")}))
    return 0


def run_combine(args: argparse.Namespace) -> int:
    import pandas as pd

    from augane.errors import DataError
    from augane.evaluate.disfa_reconstruct import write_table
    from augane.evaluate.geometry import validate_errors
    from augane.evaluate.predictions import combine_predictions, input_predictions_from_features, read_predictions, read_table

    tables = [input_predictions_from_features(read_table(args.inputs, "inputs"), source=str(args.inputs))]
    tables += [read_predictions(path) for path in args.predictions]
    combined = combine_predictions(tables, [str(args.inputs), *map(str, args.predictions)])
    write_table(combined, args.out, {"parts": [str(args.inputs), *map(str, args.predictions)]})
    log.info("%s: %d rows, methods %s", args.out, len(combined), sorted(set(combined["method"])))
    if args.errors:
        if args.errors_out is None:
            raise DataError("--errors needs --errors-out")
        errors = pd.concat([validate_errors(read_table(p, "errors"), str(p)) for p in args.errors], ignore_index=True)
        write_table(errors, args.errors_out, {"parts": list(map(str, args.errors))})
    return 0


def run_images(args: argparse.Namespace) -> int:
    from augane.evaluate.cached_frames import read_frames_table
    from augane.evaluate.predictions import read_predictions
    from augane.evaluate.qualitative_images import grid_frames, write_grid_images
    from augane.evaluate.reconstruction import METHODS
    from augane.features.runtime import resolve_device

    config = _setup(args)
    predictions = read_predictions(args.predictions)
    chosen = grid_frames(predictions, config)
    methods = [method for method in METHODS if method in set(predictions["method"])]
    written = write_grid_images(
        config, args.cache_root / args.dataset, read_frames_table(args.frames), chosen, methods, args.out_dir,
        checkpoint=_checkpoint(args, config), device=resolve_device(config["device"]),
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    log.info("%d images of %d chosen frames (%s) in %s", len(written), len(chosen), ", ".join(methods), args.out_dir)
    return 0
