"""Which videos and frames are evaluated: the paper's "top K videos by detected AU activations".

The paper (§IV.B) evaluates "the top 9 videos based on the number of detected
AU activations" among DISFA's 27. Here, for each subject (one video per DISFA
subject) on the evaluated frames (every ``frame_stride``-th frame):

    activations(s) = #{(frame f, AU a) : f in frames(s), a in AUs, p_input(f, a) >= threshold}

where p_input is the AU detector's probability on the input frame, AUs are the
evaluated AUs the detector emits, and frames without detector output count
zero. The K subjects with the most activations are selected; ties are broken
by subject number (lower first), so the choice is deterministic, and a tie
that straddles the cut-off is flagged in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from augane.errors import DataError
from augane.evaluate.predictions import REFERENCE_METHOD, decisions, label_column, predicted_aus
from augane.evaluate.subjects import match_subjects, sorted_subjects, subject_sort_key


@dataclass(frozen=True)
class VideoSelection:
    """The evaluated subjects and frames.

    Attributes:
        subjects: selected subjects in table order (by subject number).
        frames: (subject, frame) pairs evaluated: the strided frames of the selected subjects.
        activity: one row per subject present: ``subject``, ``frames`` (strided),
            ``activations``, ``rank`` (1 = most active), ``selected``.
        aus: AUs counted (evaluated AUs the detector emits).
        num_videos: K requested.
        frame_stride: every k-th frame kept.
        explicit: subjects were named in the config rather than selected by activity.
        tie_at_cutoff: the K-th and (K+1)-th subjects have equal activations.
    """

    subjects: tuple[str, ...]
    frames: pd.DataFrame
    activity: pd.DataFrame
    aus: tuple[int, ...]
    num_videos: int
    frame_stride: int
    explicit: bool
    tie_at_cutoff: bool


def stride_frames(keys: pd.DataFrame, frame_stride: int) -> pd.DataFrame:
    """Every ``frame_stride``-th frame of each subject, counting from its first frame.

    Args:
        keys: table with ``subject`` and ``frame`` (other columns ignored; repeats collapsed).
    Returns:
        ``subject, frame`` rows, sorted by subject then frame.
    """
    if frame_stride < 1:
        raise DataError(f"evaluate.disfa.frame_stride must be >= 1, got {frame_stride}")
    unique = keys[["subject", "frame"]].drop_duplicates().sort_values(["subject", "frame"], kind="stable")
    position = unique.groupby("subject", sort=False).cumcount()
    return unique[position % frame_stride == 0].reset_index(drop=True)


def count_activations(input_predictions: pd.DataFrame, aus: Sequence[int], threshold: float) -> pd.DataFrame:
    """Detected AU activations per subject on the given input rows.

    Returns:
        ``subject, frames, activations`` per subject, in table order.
    """
    detected = decisions(input_predictions, aus, threshold)
    columns = [label_column(au) for au in aus]
    detected["activations"] = np.nan_to_num(detected[columns].to_numpy(dtype=np.float64)).sum(axis=1)
    activity = detected.groupby("subject", sort=False).agg(frames=("frame", "size"), activations=("activations", "sum"))
    activity["activations"] = activity["activations"].astype(np.int64)
    activity = activity.reset_index()
    order = sorted(range(len(activity)), key=lambda i: subject_sort_key(activity.loc[i, "subject"]))
    return activity.iloc[order].reset_index(drop=True)


def select_videos(
    predictions: pd.DataFrame,
    aus: Sequence[int],
    threshold: float,
    num_videos: int = 9,
    frame_stride: int = 1,
    subjects: Sequence[str] | None = None,
) -> VideoSelection:
    """Select the evaluated subjects from the detector's output on the input frames.

    Args:
        predictions: a validated predictions table; only its ``input`` rows are read.
        aus: evaluated AUs; those without a prediction column are not counted.
        threshold: detector probability at or above which an AU is detected.
        num_videos: K; when fewer subjects exist, all are selected.
        frame_stride: keep every k-th frame of each subject (see :func:`stride_frames`).
        subjects: evaluate exactly these subjects (``SN003`` or ``03``) instead.

    Raises:
        DataError: no input rows, no counted AU, or an unknown named subject.
    """
    inputs = predictions[predictions["method"] == REFERENCE_METHOD]
    if inputs.empty:
        raise DataError(
            "the predictions hold no 'input' rows (the AU detector on the input frames), "
            "which select the videos and serve as the reference"
        )
    counted = tuple(au for au in aus if au in predicted_aus(inputs.dropna(axis=1, how="all")))
    if not counted:
        raise DataError(
            f"the detector's input predictions cover none of the evaluated AUs {list(aus)} "
            f"(predicted: {list(predicted_aus(inputs))})"
        )
    frames = stride_frames(inputs, frame_stride)
    strided = inputs.merge(frames, on=["subject", "frame"], how="inner")
    activity = count_activations(strided, counted, threshold)
    ranked = sorted(
        range(len(activity)),
        key=lambda i: (-activity.loc[i, "activations"], subject_sort_key(activity.loc[i, "subject"])),
    )
    activity["rank"] = 0
    activity.loc[ranked, "rank"] = np.arange(1, len(ranked) + 1)
    if subjects:
        chosen = match_subjects(list(subjects), activity["subject"], "evaluate.disfa.subjects")
        tie = False
    else:
        if num_videos < 1:
            raise DataError(f"evaluate.disfa.num_videos must be >= 1, got {num_videos}")
        chosen = tuple(activity.loc[ranked[:num_videos], "subject"])
        counts = activity.loc[ranked, "activations"].to_numpy()
        tie = len(counts) > num_videos and counts[num_videos - 1] == counts[num_videos]
    activity["selected"] = activity["subject"].isin(chosen)
    selected_frames = frames[frames["subject"].isin(chosen)].reset_index(drop=True)
    return VideoSelection(
        subjects=tuple(sorted_subjects(chosen)),
        frames=selected_frames,
        activity=activity,
        aus=counted,
        num_videos=num_videos,
        frame_stride=frame_stride,
        explicit=bool(subjects),
        tie_at_cutoff=bool(tie),
    )
