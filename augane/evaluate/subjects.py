"""DISFA subjects: naming (``SN003`` <-> ``03``) and which subjects the released AU detectors trained on.

Facts about the released detectors (not code) come from their data
preparation: OpenGraphAU's ``tool/dataset_process.py`` splits DISFA into 14
training, 4 validation and 9 test subjects; ME-GraphAU trains each of its
three DISFA checkpoints on two of the three folds listed below (which fold a
given checkpoint held out is not recorded in the file). ME-GraphAU's BP4D
checkpoint saw no DISFA frame.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from augane.errors import DataError

_SUBJECT_PATTERN = re.compile(r"^(?:SN)?0*(\d+)$", re.IGNORECASE)

#: OpenGraphAU's DISFA split (subject numbers).
OPENGRAPHAU_DISFA_TRAIN: tuple[int, ...] = (2, 10, 27, 32, 30, 9, 16, 13, 18, 11, 28, 24, 3, 29)
OPENGRAPHAU_DISFA_VAL: tuple[int, ...] = (12, 6, 31, 21)
OPENGRAPHAU_DISFA_TEST: tuple[int, ...] = (23, 25, 8, 5, 7, 17, 4, 1, 26)

#: ME-GraphAU's three DISFA folds (subject numbers).
MEGRAPHAU_DISFA_FOLDS: tuple[tuple[int, ...], ...] = (
    (2, 10, 1, 26, 27, 32, 30, 9, 16),
    (13, 18, 11, 28, 12, 6, 31, 21, 24),
    (3, 29, 23, 25, 8, 5, 7, 17, 4),
)

#: The 9 subjects the paper evaluates (Table 2).
PAPER_SUBJECTS: tuple[int, ...] = (3, 6, 11, 12, 16, 18, 23, 25, 27)


def subject_number(subject: str) -> int | None:
    """DISFA subject number of ``SN003``, ``sn3``, ``03`` or ``3`` (-> 3); None for other names."""
    match = _SUBJECT_PATTERN.match(str(subject).strip())
    return int(match.group(1)) if match else None


def subject_label(subject: str) -> str:
    """How the paper's tables name a subject: ``SN003`` -> ``03``; other names unchanged."""
    number = subject_number(subject)
    return f"{number:02d}" if number is not None else str(subject)


def subject_sort_key(subject: str) -> tuple[int, int, str]:
    """Sort DISFA subjects by number, then any other names alphabetically after them."""
    number = subject_number(subject)
    return (0, number, "") if number is not None else (1, 0, str(subject))


def sorted_subjects(subjects: Iterable[str]) -> list[str]:
    """``subjects`` in table order (see :func:`subject_sort_key`)."""
    return sorted(subjects, key=subject_sort_key)


def match_subjects(requested: Sequence[str], available: Iterable[str], key: str) -> tuple[str, ...]:
    """Map requested subject names (``SN003``, ``03``, ``3``) to the names used in the data.

    Raises:
        DataError: naming ``key`` when a requested subject is absent or ambiguous.
    """
    available = list(dict.fromkeys(available))
    matched = []
    for name in requested:
        if name in available:
            matched.append(name)
            continue
        number = subject_number(name)
        candidates = [s for s in available if number is not None and subject_number(s) == number]
        if len(candidates) != 1:
            reason = "is not in the data" if not candidates else f"matches several subjects {candidates}"
            raise DataError(f"{key}: subject {name!r} {reason}; subjects present: {sorted_subjects(available)}")
        matched.append(candidates[0])
    if len(set(matched)) != len(matched):
        raise DataError(f"{key} names a subject more than once: {list(requested)}")
    return tuple(matched)


@dataclass(frozen=True)
class DetectorTraining:
    """What is known about the DISFA subjects an AU detector saw in training.

    Attributes:
        subjects: DISFA subject numbers seen in training (or validation), or
            None when unknown.
        source: where that knowledge comes from, in words for the report.
    """

    subjects: frozenset[int] | None
    source: str

    def seen(self, subject: str) -> bool | None:
        """True/False when known, None when it cannot be told."""
        number = subject_number(subject)
        if self.subjects is None or number is None:
            return None
        return number in self.subjects


def detector_training(variant: str, configured: Sequence[str], synthetic: bool) -> DetectorTraining:
    """The DISFA subjects an AU detector saw in training.

    Args:
        variant: ``resources.au_detector.variant``.
        configured: ``resources.au_detector.training_subjects`` (wins when non-empty).
        synthetic: whether the detector is the demo world's stand-in.
    """
    if configured:
        numbers = {subject_number(s) for s in configured}
        if None in numbers:
            bad = [s for s in configured if subject_number(s) is None]
            raise DataError(f"resources.au_detector.training_subjects: {bad} are not DISFA subject names such as SN003")
        return DetectorTraining(
            frozenset(n for n in numbers if n is not None), "resources.au_detector.training_subjects"
        )
    if synthetic:
        return DetectorTraining(
            None,
            "the stand-in detector was trained by the demo stage on the synthetic world; "
            "list any overlap in resources.au_detector.training_subjects",
        )
    if variant == "opengraphau":
        return DetectorTraining(
            frozenset(OPENGRAPHAU_DISFA_TRAIN + OPENGRAPHAU_DISFA_VAL),
            "OpenGraphAU's data preparation: 18 DISFA subjects in its training (14) and validation (4) lists",
        )
    if variant == "megraphau_bp4d":
        return DetectorTraining(frozenset(), "ME-GraphAU's BP4D checkpoint was trained on BP4D only")
    return DetectorTraining(
        None,
        "ME-GraphAU's DISFA checkpoints each train on two of three folds (18 subjects); which fold this "
        "checkpoint held out is not recorded: set resources.au_detector.training_subjects",
    )
