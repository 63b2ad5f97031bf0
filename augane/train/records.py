"""What a training run writes as it goes: per-step and validation CSV tables and TensorBoard scalars.

``train_steps.csv`` has one row per optimiser step::

    step, epoch, samples, lr, grad_norm, loss, au_landmark, au_relative, au_feature,
    reg_expression, reg_pose, reg_camera, seconds

(``loss`` is the weighted total; terms are unweighted global-batch means;
a term that is not computed, e.g. ``au_feature`` with weight 0, is empty;
``seconds`` is the wall time since the run, or its resumption, started).

``validation.csv`` has one row per metric and method at each validation::

    step, epoch, method (gane | deca), metric, value

TensorBoard gets ``train/<column>`` per step and ``val/<method>/<metric>``.
When a run resumes from a checkpoint of step k, rows (and TensorBoard
events) after step k are dropped first, so the tables read as one run.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from augane.train.objective import TERM_NAMES

log = logging.getLogger(__name__)

STEP_COLUMNS = ("step", "epoch", "samples", "lr", "grad_norm", "loss", *TERM_NAMES, "seconds")
VALIDATION_COLUMNS = ("step", "epoch", "method", "metric", "value")


def _truncate(path: Path, columns: tuple[str, ...], last_step: int | None) -> None:
    """Keep the rows of ``path`` up to ``last_step`` (remove the file when None) and make sure it has a header."""
    if last_step is None or not path.is_file():
        path.unlink(missing_ok=True)
    else:
        try:
            table = pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
            log.warning("%s cannot be read (%s); starting it again", path, err)
            table = pd.DataFrame(columns=list(columns))
        if list(table.columns) != list(columns):
            log.warning("%s has columns %s, expected %s; starting it again", path, list(table.columns), list(columns))
            table = pd.DataFrame(columns=list(columns))
        table[table["step"] <= last_step].to_csv(path, index=False)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow(columns)


class RunRecords:
    """CSV tables and TensorBoard events of one run (used by rank 0 only).

    Args:
        steps_csv, validation_csv: the tables.
        tensorboard_dir: TensorBoard log folder, or None for none.
        resume_step: step of the checkpoint resumed from (later rows dropped), or None for a new run.
    """

    def __init__(self, steps_csv: Path, validation_csv: Path, tensorboard_dir: Path | None,
                 resume_step: int | None) -> None:
        self.steps_csv = steps_csv
        self.validation_csv = validation_csv
        _truncate(steps_csv, STEP_COLUMNS, resume_step)
        _truncate(validation_csv, VALIDATION_COLUMNS, resume_step)
        self.writer = None
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self.writer = SummaryWriter(log_dir=str(tensorboard_dir), purge_step=purge)

    def log_steps(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append per-step rows (keys among :data:`STEP_COLUMNS`)."""
        rows = list(rows)
        with open(self.steps_csv, "a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            for row in rows:
                writer.writerow(["" if row.get(column) is None else row[column] for column in STEP_COLUMNS])
        if self.writer is not None:
            for row in rows:
                for column in STEP_COLUMNS[2:-1]:
                    if row.get(column) is not None:
                        self.writer.add_scalar(f"train/{column}", row[column], row["step"])

    def log_validation(self, step: int, epoch: int, metrics: Mapping[str, Mapping[str, float]]) -> None:
        """Append ``{method: {metric: value}}`` measured after ``step`` optimiser steps."""
        with open(self.validation_csv, "a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            for method, values in metrics.items():
                for metric, value in sorted(values.items()):
                    writer.writerow([step, epoch, method, metric, value])
        if self.writer is not None:
            for method, values in metrics.items():
                for metric, value in values.items():
                    self.writer.add_scalar(f"val/{method}/{metric}", value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
