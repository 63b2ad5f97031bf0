"""The evaluation's settings, read once from the resolved config (``evaluate.disfa`` and the AU detector)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from augane.errors import ConfigError
from augane.evaluate.metrics import zero_division_value
from augane.evaluate.predictions import validate_aus, validate_methods
from augane.evaluate.qualitative import STRATEGIES

#: Where the demo stage writes the synthetic world's stand-in assets.
DEMO_RESULTS = PurePosixPath("results/demo")


def is_demo_world(config: dict[str, Any]) -> bool:
    """Whether the AU detector is the demo world's stand-in (its checkpoint lies under ``results/demo/``)."""
    checkpoint = PurePosixPath(str(config["resources"]["au_detector"]["checkpoint"]).replace("\\", "/"))
    return checkpoint.parts[: len(DEMO_RESULTS.parts)] == DEMO_RESULTS.parts


@dataclass(frozen=True)
class EvaluationSettings:
    """Everything the AU-consistency evaluation reads from the config.

    Attributes:
        aus: evaluated AUs (``evaluate.disfa.aus``).
        methods: reconstruction methods to score (``evaluate.disfa.methods``).
        threshold: detector probability at or above which an AU is detected
            (``resources.au_detector.threshold``).
        num_videos, frame_stride, subjects: video and frame selection.
        label_threshold: DISFA intensity at or above which a label counts as present.
        zero_division: F1 when TP + FP + FN = 0 (0.0, 1.0 or NaN).
        qualitative_frames, qualitative_strategy: frames of the qualitative grid.
        detector_variant, detector_checkpoint, training_subjects: the AU detector, for the report.
        synthetic: the numbers come from the demo world.
        dataset: name of the evaluated dataset (for the report), or None.
    """

    aus: tuple[int, ...]
    methods: tuple[str, ...]
    threshold: float
    num_videos: int = 9
    frame_stride: int = 1
    subjects: tuple[str, ...] | None = None
    label_threshold: int = 2
    zero_division: float = 0.0
    qualitative_frames: int = 6
    qualitative_strategy: str = "disagreement"
    detector_variant: str = "opengraphau"
    detector_checkpoint: str = ""
    training_subjects: tuple[str, ...] = ()
    synthetic: bool = False
    dataset: str | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EvaluationSettings:
        """Read the settings from a validated config (defaults filled)."""
        try:
            section = config["evaluate"]["disfa"]
            detector = config["resources"]["au_detector"]
        except KeyError as err:
            raise ConfigError(f"the config lacks {err}; load it through augane.config.load_config") from err
        strategy = section.get("qualitative_strategy", "disagreement")
        if strategy not in STRATEGIES:
            raise ConfigError(
                f"evaluate.disfa.qualitative_strategy must be one of {list(STRATEGIES)}, got {strategy!r}"
            )
        synthetic = section.get("synthetic")
        return cls(
            aus=validate_aus(section["aus"]),
            methods=validate_methods(section["methods"]),
            threshold=float(detector["threshold"]),
            num_videos=int(section["num_videos"]),
            frame_stride=int(section["frame_stride"]),
            subjects=tuple(str(s) for s in section["subjects"]) if section.get("subjects") else None,
            label_threshold=int(section["label_threshold"]),
            zero_division=zero_division_value(section.get("zero_division", 0)),
            qualitative_frames=int(section["qualitative_frames"]),
            qualitative_strategy=strategy,
            detector_variant=str(detector["variant"]),
            detector_checkpoint=str(detector["checkpoint"]),
            training_subjects=tuple(str(s) for s in detector.get("training_subjects", [])),
            synthetic=is_demo_world(config) if synthetic is None else bool(synthetic),
            dataset=section.get("dataset"),
        )
