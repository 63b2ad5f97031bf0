"""The Markdown report of the DISFA evaluation: settings, selection, Tables 2-3, label F1, figures, honest notes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from augane.aus import au_name
from augane.evaluate.metrics import AVERAGE_ROW
from augane.evaluate.predictions import REFERENCE_METHOD, display_name
from augane.evaluate.subjects import (
    OPENGRAPHAU_DISFA_TEST,
    OPENGRAPHAU_DISFA_TRAIN,
    OPENGRAPHAU_DISFA_VAL,
    PAPER_SUBJECTS,
    subject_label,
)
from augane.evaluate.tables import count_table, counts_to_markdown, paper_table, to_markdown

if TYPE_CHECKING:
    from augane.evaluate.pipeline import EvaluationResult

#: Section headings, in order; tests and readers can rely on them.
SECTIONS: tuple[str, ...] = (
    "Setup",
    "Selected videos",
    "Per-subject F1 (Table 2)",
    "Per-AU F1 (Table 3)",
    "Detections per AU",
    "Detector against DISFA labels",
    "Errors against ground truth",
    "Qualitative comparison",
    "Notes",
    "Definitions",
)


def _subjects_list(subjects: Sequence[str]) -> str:
    return ", ".join(subject_label(s) for s in subjects) if subjects else "none"


def _format(value: float) -> str:
    return "n/a" if value is None or np.isnan(value) else f"{value:.2f}"


def _setup(result: EvaluationResult) -> list[str]:
    s = result.settings
    world = "synthetic demo world (DISFA layout)" if s.synthetic else "DISFA"
    rows = [
        ("data", f"{world}" + (f", dataset `{s.dataset}`" if s.dataset else "")),
        ("AU detector", f"`{s.detector_variant}` (`{s.detector_checkpoint}`), threshold {s.threshold:g}"),
        ("methods", ", ".join(display_name(m) for m in result.aligned.method_names)),
        ("evaluated AUs", ", ".join(f"AU{au}" for au in result.aligned.aus)),
        (
            "videos",
            f"{len(result.selection.subjects)} of {len(result.selection.activity)} "
            + (
                "(named in the config)"
                if result.selection.explicit
                else f"(top {s.num_videos} by detected AU activations)"
            ),
        ),
        ("frame stride", str(s.frame_stride)),
        ("evaluated frames", str(len(result.aligned.frames))),
        ("zero_division", "NaN (left out of means)" if np.isnan(s.zero_division) else f"{s.zero_division:g}"),
        ("label threshold", f"DISFA intensity >= {s.label_threshold}"),
    ]
    return ["| setting | value |", "| :--- | :--- |", *[f"| {k} | {v} |" for k, v in rows], ""]


def _selection(result: EvaluationResult) -> list[str]:
    activity = result.selection.activity.sort_values("rank")
    frames = result.frames
    lines = [
        "| rank | subject | activations | strided frames | evaluated frames | selected | seen in detector training |",
        "| ---: | :--- | ---: | ---: | ---: | :--- | :--- |",
    ]
    for _, row in activity.iterrows():
        seen = result.training.seen(row["subject"])
        lines.append(
            f"| {row['rank']} | {subject_label(row['subject'])} | {row['activations']} | {row['frames']} | "
            f"{int(frames.get(row['subject'], 0))} | {'yes' if row['selected'] else 'no'} | "
            f"{'unknown' if seen is None else ('yes' if seen else 'no')} |"
        )
    lines.append("")
    lines.append(
        f"Activations = detected (frame, AU) pairs on the strided input frames over {len(result.selection.aus)} AUs; "
        "ties are broken by subject number (lower first)."
    )
    if result.selection.tie_at_cutoff:
        lines.append(
            "**A tie straddles the cut-off**: the last selected and the first unselected subject have equal activations."
        )
    return [*lines, ""]


def _figure(files: Mapping[str, str], name: str, alt: str) -> list[str]:
    return [f"![{alt}]({files[name]})", ""] if name in files else []


def _labels(result: EvaluationResult, files: Mapping[str, str]) -> list[str]:
    if result.labels is None:
        return [f"Not computed: {result.labels_note}.", ""]
    per_au = paper_table(result.labels.per_au, rows="au")
    per_subject = paper_table(result.labels.per_subject, rows="subject")
    positives = count_table(result.labels.positives, rows="au")
    return [
        f"F1 of the detector against DISFA's labels (intensity >= {result.settings.label_threshold}), "
        f"for the AUs DISFA annotates that the detector emits ({', '.join(f'AU{a}' for a in result.label_aus)}). "
        "`Input` is the detector on the input frames; the other columns are the same detector on each method's renders.",
        "",
        "Per AU (pooled frames):",
        "",
        to_markdown(per_au),
        "Per subject (mean over AUs):",
        "",
        to_markdown(per_subject),
        "Labelled and positive frames per AU:",
        "",
        counts_to_markdown(positives),
        *_figure(files, "bars_labels_per_au", "Per-AU F1 against DISFA labels"),
    ]


def _geometry(result: EvaluationResult) -> list[str]:
    if result.geometry is None:
        if result.settings.synthetic:
            return ["No per-frame ground-truth errors were given (`--geometry`).", ""]
        return ["Real DISFA has no ground-truth meshes; this section applies to the synthetic world.", ""]
    table = result.geometry.copy()
    table.index = [display_name(str(m)) for m in table.index]
    table.index.name = "method"
    header = ["method", *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "| :--- |" + " ---: |" * len(table.columns)]
    for label, row in table.iterrows():
        cells = [str(int(v)) if c == "frames" else f"{v:.4f}" for c, v in row.items()]
        lines.append("| " + " | ".join([str(label), *cells]) + " |")
    return [
        "Per-frame errors against the synthetic world's ground truth: `vertex_error_mm` = mean per-vertex distance "
        "in mm (expression only when meshes share the true identity), `landmark_nme` = mean landmark distance over "
        "the inter-ocular distance.",
        "",
        *lines,
        "",
    ]


def _qualitative(
    result: EvaluationResult, files: Mapping[str, str], images_given: bool, missing: Sequence[Path]
) -> list[str]:
    chosen = result.chosen
    if chosen.empty:
        return ["No frame was chosen (`evaluate.disfa.qualitative_frames` is 0).", ""]
    frames = ", ".join(f"{subject_label(s)}/{int(f)}" for s, f in zip(chosen["subject"], chosen["frame"]))
    lines = [
        f"Frames chosen by `{result.settings.qualitative_strategy}` (subject/frame): {frames}. "
        "Rows: input, then each method's render (the paper's Figures 2-3).",
        "",
    ]
    if not images_given:
        lines += [
            "No images were given (`--images`), so the grid was not drawn; the chosen frames are in "
            f"`{files['qualitative_frames']}`.",
            "",
        ]
    else:
        lines += _figure(files, "qualitative", "Input and renders of the chosen frames")
        if missing:
            lines += [f"{len(missing)} image(s) were missing and are drawn grey, e.g. `{missing[0]}`.", ""]
    return lines


def _training_note(result: EvaluationResult) -> str:
    training = result.training
    selected = result.selection.subjects
    note = f"Detector training data: {training.source}."
    if training.subjects is not None:
        seen = [s for s in selected if training.seen(s)]
        unseen = [s for s in selected if training.seen(s) is False]
        note += (
            f" Of the evaluated subjects, seen in training: {_subjects_list(seen)}; not seen: {_subjects_list(unseen)}. "
            "The detector's F1 against the labels is optimistic on seen subjects."
        )
    if result.settings.detector_variant == "opengraphau" and not result.settings.synthetic:

        def listed(split: tuple[int, ...]) -> str:
            return ", ".join(f"{n:02d}" for n in sorted(set(PAPER_SUBJECTS) & set(split))) or "none"

        note += (
            " OpenGraphAU was trained on 18 DISFA subjects; of the paper's 9 evaluated subjects, "
            f"{listed(OPENGRAPHAU_DISFA_TRAIN)} are in its training list, {listed(OPENGRAPHAU_DISFA_VAL)} in its "
            f"validation list and {listed(OPENGRAPHAU_DISFA_TEST)} in its test list."
        )
    return note


def _notes(result: EvaluationResult) -> list[str]:
    s = result.settings
    notes = [
        "The reference is the AU detector's output on the input frames, not DISFA's labels: a method scores F1 = 1 "
        "on an AU when the detector finds that AU on its renders on exactly the frames where it finds it on the inputs. "
        "Detector mistakes on the inputs become part of the reference; the label section shows how well the detector "
        "itself agrees with DISFA's annotation.",
        _training_note(result),
    ]
    if s.synthetic:
        notes.append(
            "These numbers come from the synthetic demo world: faces rendered from the demo face model, and stand-in "
            "detectors (AU detector, DECA-format encoder) trained by the demo stage on that world. They show that the "
            "evaluation runs end to end and how the methods compare under the world's own detector; they are not "
            "comparable with the paper's Tables 2-3 (real DISFA video, ME-GraphAU, released DECA/EMOCA)."
        )
    zero = len(result.zero_support)
    total = len(result.cells)
    value = "left out of the means" if np.isnan(s.zero_division) else f"set to {s.zero_division:g}"
    notes.append(
        f"{zero} of {total} (method, subject, AU) cells have neither a detection on the inputs nor on the renders; "
        f"their F1 is undefined and {value} (`evaluate.disfa.zero_division`)."
    )
    if result.aus_missing:
        notes.append(
            "The detector gives no output for "
            + ", ".join(f"AU{a} ({au_name(a)})" for a in result.aus_missing)
            + " on the inputs or some method; these rows read n/a and are left out of the averages."
        )
    if result.methods_absent:
        notes.append(
            "Configured but absent from the predictions: "
            + ", ".join(display_name(m) for m in result.methods_absent)
            + " (e.g. EMOCA without `resources.emoca.checkpoint`)."
        )
    dropped = {m: n for m, n in result.aligned.dropped.items() if n}
    if dropped:
        notes.append(
            "Selected frames left out because a detector or method had no output there: "
            + ", ".join(f"{display_name(m)} {n}" for m, n in dropped.items())
            + " (a frame is kept only when the input and every method have an output)."
        )
    if len(result.selection.subjects) < s.num_videos and not result.selection.explicit:
        notes.append(f"Only {len(result.selection.subjects)} subject(s) exist; {s.num_videos} were requested.")
    return [f"- {note}" for note in notes] + [""]


_DEFINITIONS = """\
- Detection: AU *a* is detected on an image when the detector's probability is >= the threshold.
- F1(r, y) = `sklearn.metrics.f1_score(r, y, zero_division=z)` = 2TP / (2TP + FP + FN) with the
  detections on the inputs as r and the detections on a method's renders as y; z when TP + FP + FN = 0.
- Per-subject F1 (Table 2): mean over the evaluated AUs of the per-AU F1 on that subject's frames.
- Per-AU F1 (Table 3): F1 on the frames of all evaluated subjects pooled.
- `Avg.`: mean of the rows above, from unrounded values (NaN left out). Table 2's average is the mean
  over (subject, AU) cells; Table 3's is the macro F1 over AUs on pooled frames; they differ in general.
  The paper prints 0.39 / 0.18 / 0.30 under both tables, although its Table 3 column means are
  0.36 / 0.17 / 0.28.
- Label F1: the same with DISFA's labels (intensity >= the label threshold) as r; frames whose label is
  -1 (not annotated) are left out for that AU.
"""


def render_report(
    result: EvaluationResult,
    files: Mapping[str, str],
    images_given: bool = False,
    missing_images: Sequence[Path] = (),
) -> str:
    """The report as Markdown.

    Args:
        result: from :func:`augane.evaluate.pipeline.evaluate`.
        files: output name (see ``pipeline.OUTPUTS``) -> path relative to the report.
        images_given: whether images for the qualitative grid were supplied.
        missing_images: images of the grid that were not found.
    """
    world = "the synthetic demo world" if result.settings.synthetic else "DISFA"
    per_subject, per_au = result.per_subject, result.per_au
    averages = ", ".join(f"{name} {_format(per_subject.loc[AVERAGE_ROW, name])}" for name in per_subject.columns)
    support = count_table(result.support, rows="au")
    parts = [
        f"# AU-consistency evaluation on {world}",
        "",
        "The AU detector runs on the input frames and on each method's rendered reconstruction; F1 between "
        "the two measures how faithfully a reconstruction reproduces the detected action units "
        f"(paper §IV.B). Average per-subject F1: {averages}.",
        "",
        "## Setup",
        "",
        *_setup(result),
        "## Selected videos",
        "",
        *_selection(result),
        "## Per-subject F1 (Table 2)",
        "",
        f"Tables: [`{files['f1_per_subject']}`]({files['f1_per_subject']}), "
        f"full-precision cells: [`{files['f1_cells']}`]({files['f1_cells']}).",
        "",
        to_markdown(per_subject),
        *_figure(files, "bars_per_subject", "Per-subject F1, methods side by side"),
        "## Per-AU F1 (Table 3)",
        "",
        f"Table: [`{files['f1_per_au']}`]({files['f1_per_au']}).",
        "",
        to_markdown(per_au),
        *_figure(files, "bars_per_au", "Per-AU F1, methods side by side"),
        "## Detections per AU",
        "",
        f"Frames (of {len(result.aligned.frames)}) on which each AU is detected: `{display_name(REFERENCE_METHOD)}` "
        "is the reference's positives (F1's support).",
        "",
        counts_to_markdown(support.drop(columns="frames")),
        "## Detector against DISFA labels",
        "",
        *_labels(result, files),
        "## Errors against ground truth",
        "",
        *_geometry(result),
        "## Qualitative comparison",
        "",
        *_qualitative(result, files, images_given, missing_images),
        "## Notes",
        "",
        *_notes(result),
        "## Definitions",
        "",
        _DEFINITIONS,
    ]
    return "\n".join(parts)
