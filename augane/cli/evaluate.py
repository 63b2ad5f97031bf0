"""``augane evaluate-select`` and ``augane evaluate-report``: the DISFA evaluation from per-frame AU predictions."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from augane.cli.common import add_config_arguments, config_from_args

log = logging.getLogger("augane.evaluate")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate-select`` and ``evaluate-report`` subcommands."""
    select = subparsers.add_parser(
        "evaluate-select",
        help="choose the evaluated DISFA videos and frames from the AU detector's output on the input frames",
        description=(
            "Rank subjects by detected AU activations on their (strided) input frames and keep the top "
            "evaluate.disfa.num_videos (or the subjects named in evaluate.disfa.subjects)."
        ),
    )
    select.add_argument(
        "--features", type=Path, required=True, help="the dataset's features.parquet (prob_AU<k> per frame)"
    )
    select.add_argument("--out", type=Path, required=True, help="selection CSV to write (one row per subject)")
    select.add_argument(
        "--frames-out", type=Path, default=None, help="optional CSV of the selected (subject, frame) pairs"
    )
    add_config_arguments(select)
    select.set_defaults(func=run_select)

    report = subparsers.add_parser(
        "evaluate-report",
        help="F1 tables (paper Tables 2-3), label F1, plots, qualitative grid and report from per-frame AU predictions",
        description=(
            "Read a predictions table (subject, frame, method in {input, augane, deca, emoca}, prob_AU<k>) and the "
            "dataset index with DISFA labels; write CSV/Markdown tables, PNG plots and report.md to --out-dir."
        ),
    )
    report.add_argument("--predictions", type=Path, required=True, help="predictions table (parquet or CSV)")
    report.add_argument(
        "--labels", type=Path, required=True, help="the dataset's index.parquet with AU<k> intensity labels"
    )
    report.add_argument("--out-dir", type=Path, required=True, help="output folder, e.g. results/eval/disfa")
    report.add_argument(
        "--features",
        type=Path,
        default=None,
        help="the dataset's features.parquet, to take the 'input' rows from when the predictions lack them",
    )
    report.add_argument(
        "--images",
        type=Path,
        default=None,
        help="folder of images for the qualitative grid: <images>/<method>/<subject>/<frame:06d>.png (method 'input' for crops)",
    )
    report.add_argument(
        "--geometry",
        type=Path,
        default=None,
        help="optional per-frame ground-truth errors (method + columns such as vertex_error_mm, landmark_nme)",
    )
    add_config_arguments(report)
    report.set_defaults(func=run_report)


def run_select(args: argparse.Namespace) -> int:
    """Write the selection table (and optionally the selected frames)."""
    from augane.evaluate.pipeline import selection_table
    from augane.evaluate.predictions import input_predictions_from_features, read_table
    from augane.evaluate.selection import select_videos
    from augane.evaluate.settings import EvaluationSettings
    from augane.evaluate.subjects import detector_training
    from augane.io.atomic import write_text_atomic

    settings = EvaluationSettings.from_config(config_from_args(args))
    features = read_table(args.features, "features")
    inputs = input_predictions_from_features(features, source=str(args.features))
    selection = select_videos(
        inputs, settings.aus, settings.threshold, settings.num_videos, settings.frame_stride, settings.subjects
    )
    training = detector_training(settings.detector_variant, settings.training_subjects, settings.synthetic)
    write_text_atomic(args.out, selection_table(selection, training).to_csv(index=False))
    if args.frames_out is not None:
        extra = [c for c in ("sample_id", "shard", "row") if c in features.columns]
        frames = selection.frames
        if extra:
            frames = frames.merge(features[["subject", "frame", *extra]], on=["subject", "frame"], how="left")
        write_text_atomic(args.frames_out, frames.to_csv(index=False))
    log.info(
        "selected %d subject(s) (%s), %d frames; wrote %s",
        len(selection.subjects),
        ", ".join(selection.subjects),
        len(selection.frames),
        args.out,
    )
    return 0


def run_report(args: argparse.Namespace) -> int:
    """Compute every metric and write the tables, figures and report."""
    from augane.evaluate.pipeline import evaluate, read_geometry_errors, write_evaluation
    from augane.evaluate.predictions import (
        combine_predictions,
        input_predictions_from_features,
        read_labels,
        read_predictions,
        read_table,
    )
    from augane.evaluate.settings import EvaluationSettings

    settings = EvaluationSettings.from_config(config_from_args(args))
    predictions = read_predictions(args.predictions)
    if args.features is not None:
        inputs = input_predictions_from_features(read_table(args.features, "features"), source=str(args.features))
        predictions = combine_predictions([predictions, inputs], [str(args.predictions), str(args.features)])
    labels = read_labels(args.labels)
    geometry = read_geometry_errors(args.geometry) if args.geometry is not None else None
    result = evaluate(predictions, settings, labels=labels, geometry_errors=geometry)
    written = write_evaluation(result, args.out_dir, images_dir=args.images)
    log.info("wrote %d outputs to %s (report: %s)", len(written), args.out_dir, written["report"])
    return 0
