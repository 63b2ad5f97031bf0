"""Run tables: appending, truncation when a run resumes, and the loss-curve figure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from augane.train.curves import moving_average, write_loss_curves
from augane.train.records import STEP_COLUMNS, VALIDATION_COLUMNS, RunRecords


def rows(steps):
    return [{"step": s, "epoch": 0, "samples": 4, "lr": 1e-3, "grad_norm": 1.0, "loss": 1.0 / s,
             "au_landmark": 0.1, "au_relative": 0.2, "au_feature": None, "reg_expression": 3.0, "reg_pose": 0.1,
             "reg_camera": 0.0, "seconds": 0.5 * s} for s in steps]


def test_tables_are_truncated_to_the_resumed_step_and_plotted(tmp_path):
    steps_csv, validation_csv = tmp_path / "train_steps.csv", tmp_path / "validation.csv"
    records = RunRecords(steps_csv, validation_csv, None, resume_step=None)
    records.log_steps(rows(range(1, 7)))
    records.log_validation(3, 0, {"gane": {"loss": 0.5, "landmark_nme": 0.1}, "deca": {"loss": 0.6}})
    records.log_validation(6, 1, {"gane": {"loss": 0.4, "landmark_nme": 0.08}, "deca": {"loss": 0.6}})
    records.close()
    table = pd.read_csv(steps_csv)
    assert list(table.columns) == list(STEP_COLUMNS) and table["au_feature"].isna().all()
    assert list(pd.read_csv(validation_csv).columns) == list(VALIDATION_COLUMNS)

    RunRecords(steps_csv, validation_csv, None, resume_step=4).close()  # a run resumed from step 4
    assert pd.read_csv(steps_csv)["step"].tolist() == [1, 2, 3, 4]
    assert pd.read_csv(validation_csv)["step"].unique().tolist() == [3]

    out = write_loss_curves(steps_csv, validation_csv, tmp_path / "curves.png", title="t")
    assert out.read_bytes()[:4] == b"\x89PNG"

    RunRecords(steps_csv, validation_csv, None, resume_step=None).close()  # a new run starts empty tables
    assert pd.read_csv(steps_csv).empty and pd.read_csv(validation_csv).empty
    write_loss_curves(steps_csv, validation_csv, tmp_path / "empty.png")


def test_moving_average():
    np.testing.assert_allclose(moving_average(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(moving_average(np.array([2.0, 4.0]), 10), [2.0, 3.0])
