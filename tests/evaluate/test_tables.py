"""Paper-layout tables (Tables 2-3): Markdown and CSV match golden files built from the paper's own numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from augane.evaluate.tables import au_row_label, count_table, paper_table, to_csv, to_markdown, write_table

GOLDEN = Path(__file__).parent / "golden"

#: The paper's Table 2 (per subject) and Table 3 (per AU) values, without its Avg. rows.
PAPER_TABLE_2 = pd.DataFrame(
    {
        "augane": [0.46, 0.35, 0.45, 0.46, 0.43, 0.45, 0.27, 0.34, 0.33],
        "deca": [0.23, 0.13, 0.18, 0.30, 0.05, 0.19, 0.16, 0.21, 0.07],
        "emoca": [0.24, 0.32, 0.30, 0.43, 0.24, 0.25, 0.24, 0.25, 0.30],
    },
    index=["SN003", "SN006", "SN011", "SN012", "SN016", "SN018", "SN023", "SN025", "SN027"],
)
PAPER_TABLE_3 = pd.DataFrame(
    {
        "augane": [0.00, 0.00, 0.47, 0.24, 0.78, 0.17, 0.83, 0.84, 0.13, 0.04, 0.28, 0.56],
        "deca": [0.00, 0.00, 0.09, 0.08, 0.47, 0.00, 0.47, 0.40, 0.00, 0.01, 0.03, 0.46],
        "emoca": [0.00, 0.00, 0.30, 0.12, 0.64, 0.21, 0.81, 0.86, 0.02, 0.06, 0.02, 0.36],
    },
    index=[1, 2, 4, 5, 7, 9, 10, 12, 15, 20, 23, 26],
)


def test_table_2_markdown_matches_golden():
    table = paper_table(PAPER_TABLE_2, rows="subject")
    assert to_markdown(table) == (GOLDEN / "table2_paper.md").read_text()


def test_table_2_csv_matches_golden():
    table = paper_table(PAPER_TABLE_2, rows="subject")
    assert to_csv(table) == (GOLDEN / "table2_paper.csv").read_text()


def test_table_3_markdown_matches_golden():
    table = paper_table(PAPER_TABLE_3, rows="au")
    assert to_markdown(table) == (GOLDEN / "table3_paper.md").read_text()


def test_average_row_is_the_mean_of_unrounded_rows():
    table = paper_table(pd.DataFrame({"augane": [0.125, 0.13]}, index=["SN001", "SN002"]), rows="subject")
    assert table.loc["Avg.", "AUGANE"] == pytest.approx(0.1275)
    assert to_markdown(table).splitlines()[-1] == "| Avg. | 0.13 |"


def test_missing_aus_show_as_na_and_stay_out_of_the_average():
    scores = pd.DataFrame({"augane": [0.5, 0.7]}, index=[4, 12])
    table = paper_table(scores, rows="au", include_aus=(1, 4, 12))
    assert list(table.index) == ["01", "04", "12", "Avg."]
    assert np.isnan(table.loc["01", "AUGANE"])
    assert table.loc["Avg.", "AUGANE"] == pytest.approx(0.6)
    assert "| 01 | n/a |" in to_markdown(table)
    assert to_csv(table).splitlines()[1] == "01,"


def test_non_disfa_subject_names_are_kept():
    table = paper_table(pd.DataFrame({"deca": [0.1]}, index=["alice"]), rows="subject")
    assert list(table.index) == ["alice", "Avg."]


def test_au_row_labels_have_two_digits():
    assert [au_row_label(a) for a in (1, 12, 26)] == ["01", "12", "26"]


def test_count_table_uses_display_names():
    counts = pd.DataFrame({"input": [3], "augane": [2], "frames": [8]}, index=[4])
    assert list(count_table(counts, rows="au").columns) == ["Input", "AUGANE", "frames"]


def test_write_table_writes_both_formats(tmp_path):
    csv_path, md_path = write_table(paper_table(PAPER_TABLE_2, rows="subject"), tmp_path / "f1_per_subject")
    assert csv_path.read_text() == (GOLDEN / "table2_paper.csv").read_text()
    assert md_path.read_text() == (GOLDEN / "table2_paper.md").read_text()


def test_unknown_row_kind_is_rejected():
    with pytest.raises(ValueError, match="rows must be"):
        paper_table(PAPER_TABLE_2, rows="frame")
