"""From per-frame AU predictions to every table, figure and the report of the DISFA evaluation.

:func:`evaluate` computes (no files); :func:`write_evaluation` writes the
outputs listed in :data:`OUTPUTS` under one folder (``results/eval/disfa/``),
each atomically, the report last.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from augane.aus import DISFA_AUS
from augane.errors import DataError
from augane.evaluate.geometry import summarise_errors, validate_errors
from augane.evaluate.metrics import (
    AVERAGE_ROW,
    AlignedDetections,
    LabelF1,
    align_detections,
    evaluable_aus,
    f1_cells,
    f1_per_au,
    f1_per_subject,
    frames_per_subject,
    label_f1,
    support_per_au,
    zero_support_cells,
)
from augane.evaluate.predictions import labelled_aus, read_table
from augane.evaluate.qualitative import choose_frames, column_titles, load_grid_images, qualitative_grid
from augane.evaluate.selection import VideoSelection, select_videos
from augane.evaluate.settings import EvaluationSettings
from augane.evaluate.subjects import DetectorTraining, detector_training, subject_label
from augane.evaluate.tables import count_table, paper_table, write_table
from augane.evaluate.plots import bar_plot
from augane.io.atomic import write_text_atomic

log = logging.getLogger(__name__)

#: Output files, relative to the output folder (tables also get a ``.md`` twin of each ``.csv``).
OUTPUTS: dict[str, str] = {
    "selection": "selection.csv",
    "f1_per_subject": "f1_per_subject.csv",
    "f1_per_au": "f1_per_au.csv",
    "f1_cells": "f1_cells.csv",
    "support_per_au": "support_per_au.csv",
    "f1_labels_per_au": "f1_labels_per_au.csv",
    "f1_labels_per_subject": "f1_labels_per_subject.csv",
    "geometry_errors": "geometry_errors.csv",
    "bars_per_subject": "f1_per_subject.png",
    "bars_per_au": "f1_per_au.png",
    "bars_labels_per_au": "f1_labels_per_au.png",
    "qualitative_frames": "qualitative_frames.csv",
    "qualitative": "qualitative.png",
    "summary": "summary.json",
    "report": "report.md",
}


@dataclass(frozen=True)
class EvaluationResult:
    """Everything the report shows.

    Attributes:
        settings: the settings used.
        selection: subjects and frames evaluated.
        aligned: detections on the evaluated frames for the evaluated AUs.
        methods_absent: configured methods without any row in the predictions.
        aus_missing: configured AUs the detector gave no output for (shown as n/a).
        per_subject, per_au: Tables 2 and 3 in the paper's layout (numeric, ``Avg.`` row).
        cells: every (method, subject, AU) F1 behind Table 2, full precision.
        support: frames on which each AU is detected, on inputs and per method.
        zero_support: (method, subject, AU) cells where F1 is the zero-division value.
        frames: evaluated frames per subject.
        labels: F1 against DISFA labels (None when no labelled AU could be scored).
        labels_note: why the label section is absent, when it is.
        label_aus: AUs scored against labels.
        training: what is known of the detector's DISFA training subjects.
        geometry: per-method summary of ground-truth errors, or None.
        chosen: frames for the qualitative grid.
    """

    settings: EvaluationSettings
    selection: VideoSelection
    aligned: AlignedDetections
    methods_absent: tuple[str, ...]
    aus_missing: tuple[int, ...]
    per_subject: pd.DataFrame
    per_au: pd.DataFrame
    cells: pd.DataFrame
    support: pd.DataFrame
    zero_support: pd.DataFrame
    frames: pd.Series
    labels: LabelF1 | None
    labels_note: str
    label_aus: tuple[int, ...]
    training: DetectorTraining
    geometry: pd.DataFrame | None
    chosen: pd.DataFrame


def _label_scores(
    predictions: pd.DataFrame,
    labels: pd.DataFrame | None,
    selection: VideoSelection,
    settings: EvaluationSettings,
    methods: tuple[str, ...],
) -> tuple[LabelF1 | None, str, tuple[int, ...]]:
    if labels is None:
        return None, "no labels table was given", ()
    annotated = tuple(au for au in DISFA_AUS if au in labelled_aus(labels))
    if not annotated:
        return None, f"the labels table has no AU<k> column for DISFA's AUs {list(DISFA_AUS)}", ()
    scored, _ = evaluable_aus(predictions, annotated, methods)
    if not scored:
        return None, f"the detector emits none of the labelled AUs {list(annotated)}", ()
    aligned = align_detections(predictions, selection.frames, scored, settings.threshold, methods)
    return label_f1(aligned, labels, settings.label_threshold, settings.zero_division), "", scored


def selection_table(selection: VideoSelection, training: DetectorTraining) -> pd.DataFrame:
    """One row per subject: ``subject, label, frames, activations, rank, selected, seen_in_detector_training``."""
    table = selection.activity.copy()
    table.insert(1, "label", [subject_label(s) for s in table["subject"]])
    seen = [training.seen(s) for s in table["subject"]]
    table["seen_in_detector_training"] = ["unknown" if s is None else ("yes" if s else "no") for s in seen]
    return table


def read_geometry_errors(path: str | Path) -> pd.DataFrame:
    """Read a per-frame ground-truth error table (parquet or CSV) and check it."""
    return validate_errors(read_table(path, "ground-truth errors"), source=str(path))


def evaluate(
    predictions: pd.DataFrame,
    settings: EvaluationSettings,
    labels: pd.DataFrame | None = None,
    geometry_errors: pd.DataFrame | None = None,
) -> EvaluationResult:
    """Run selection, alignment and every metric.

    Args:
        predictions: a validated predictions table (``input`` rows for every
            subject of the dataset; method rows for the selected subjects).
        settings: see :class:`EvaluationSettings`.
        labels: the dataset index with DISFA labels, or None.
        geometry_errors: per-frame ground-truth errors (``method`` + numeric
            columns such as ``vertex_error_mm``, ``landmark_nme``), or None.

    Raises:
        DataError: no configured method has predictions, or no frame/AU is left to score.
    """
    present = set(predictions["method"])
    methods = tuple(m for m in settings.methods if m in present)
    absent = tuple(m for m in settings.methods if m not in present)
    if not methods:
        raise DataError(
            f"the predictions hold no rows for any configured method {list(settings.methods)} "
            f"(methods present: {sorted(present)})"
        )
    scored, missing = evaluable_aus(predictions, settings.aus, methods)
    if not scored:
        raise DataError(
            f"the detector gave no output for any evaluated AU {list(settings.aus)} on the input and every method"
        )
    # The selection reads the input rows only (as `augane evaluate-select` does), so it does not depend on
    # which AUs the methods' renders happen to cover.
    selection = select_videos(
        predictions, settings.aus, settings.threshold, settings.num_videos, settings.frame_stride, settings.subjects
    )
    if len(selection.subjects) < settings.num_videos and not selection.explicit:
        log.warning("only %d subject(s) available; %d were requested", len(selection.subjects), settings.num_videos)
    aligned = align_detections(predictions, selection.frames, scored, settings.threshold, methods)
    per_subject = paper_table(f1_per_subject(aligned, settings.zero_division), rows="subject")
    per_au = paper_table(f1_per_au(aligned, settings.zero_division), rows="au", include_aus=settings.aus)
    label_scores, labels_note, label_aus = _label_scores(predictions, labels, selection, settings, methods)
    training = detector_training(settings.detector_variant, settings.training_subjects, settings.synthetic)
    geometry = summarise_errors(geometry_errors) if geometry_errors is not None else None
    return EvaluationResult(
        settings=settings,
        selection=selection,
        aligned=aligned,
        methods_absent=absent,
        aus_missing=missing,
        per_subject=per_subject,
        per_au=per_au,
        cells=f1_cells(aligned, settings.zero_division),
        support=support_per_au(aligned),
        zero_support=zero_support_cells(aligned),
        frames=frames_per_subject(aligned),
        labels=label_scores,
        labels_note=labels_note,
        label_aus=label_aus,
        training=training,
        geometry=geometry,
        chosen=choose_frames(aligned, settings.qualitative_frames, settings.qualitative_strategy),
    )


def _summary(result: EvaluationResult) -> dict:
    def averages(table: pd.DataFrame) -> dict[str, float | None]:
        row = table.loc[AVERAGE_ROW]
        return {str(k): (None if np.isnan(v) else float(v)) for k, v in row.items()}

    summary = {
        "dataset": result.settings.dataset,
        "synthetic": result.settings.synthetic,
        "subjects": list(result.selection.subjects),
        "frames": int(len(result.aligned.frames)),
        "aus": list(result.aligned.aus),
        "aus_missing": list(result.aus_missing),
        "methods": list(result.aligned.method_names),
        "methods_absent": list(result.methods_absent),
        "dropped_frames": result.aligned.dropped,
        "f1_per_subject_avg": averages(result.per_subject),
        "f1_per_au_avg": averages(result.per_au),
        "zero_support_cells": int(len(result.zero_support)),
    }
    if result.labels is not None:
        summary["f1_labels_per_au_avg"] = averages(paper_table(result.labels.per_au, rows="au"))
    return summary


def write_evaluation(
    result: EvaluationResult, out_dir: str | Path, images_dir: str | Path | None = None
) -> dict[str, Path]:
    """Write every output of :data:`OUTPUTS` that applies; returns name -> path.

    Args:
        result: from :func:`evaluate`.
        out_dir: output folder (created).
        images_dir: folder of input crops and renders for the qualitative grid
            (see :func:`augane.evaluate.qualitative.image_path`); None skips the grid image.
    """
    from augane.evaluate.report import render_report

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    def path(name: str) -> Path:
        written[name] = out_dir / OUTPUTS[name]
        return written[name]

    write_text_atomic(path("selection"), selection_table(result.selection, result.training).to_csv(index=False))
    write_table(result.per_subject, path("f1_per_subject").with_suffix(""))
    write_table(result.per_au, path("f1_per_au").with_suffix(""))
    write_text_atomic(path("f1_cells"), result.cells.to_csv(index=False))
    support = count_table(result.support, rows="au")
    write_text_atomic(path("support_per_au"), support.to_csv())
    bar_plot(result.per_subject, path("bars_per_subject"), "Per-subject F1: detector on renders vs. on inputs")
    bar_plot(result.per_au, path("bars_per_au"), "Per-AU F1: detector on renders vs. on inputs")
    if result.labels is not None:
        labels_per_au = paper_table(result.labels.per_au, rows="au")
        write_table(labels_per_au, path("f1_labels_per_au").with_suffix(""))
        write_table(
            paper_table(result.labels.per_subject, rows="subject"), path("f1_labels_per_subject").with_suffix("")
        )
        bar_plot(labels_per_au, path("bars_labels_per_au"), "Per-AU F1 against DISFA labels")
    if result.geometry is not None:
        write_text_atomic(path("geometry_errors"), result.geometry.to_csv(float_format="%.4f"))
    write_text_atomic(path("qualitative_frames"), result.chosen.to_csv(index=False))
    missing_images: list[Path] = []
    if images_dir is not None and not result.chosen.empty:
        images, missing_images = load_grid_images(images_dir, result.chosen, result.aligned.method_names)
        qualitative_grid(images, column_titles(result.chosen), path("qualitative"))
        if missing_images:
            log.warning(
                "%d image(s) of the qualitative grid are missing, e.g. %s", len(missing_images), missing_images[0]
            )
    write_text_atomic(path("summary"), json.dumps(_summary(result), indent=2) + "\n")
    relative = {name: p.name for name, p in written.items()}
    write_text_atomic(path("report"), render_report(result, relative, images_dir is not None, missing_images))
    return written
