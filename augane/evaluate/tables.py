"""Tables in the paper's layout (Tables 2-3): CSV and Markdown, two decimals, an ``Avg.`` row.

Rows are subjects as ``03`` (DISFA ``SN003``) or AUs as ``01``, then ``Avg.``;
columns are methods under their display names (``AUGANE``, ``DECA``, ``EMOCA``).
Empty cells (an AU the detector does not emit, a cell left out by
``zero_division: nan``) are written as ``n/a`` in Markdown and left empty in CSV.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from augane.evaluate.metrics import with_average
from augane.evaluate.predictions import display_name
from augane.evaluate.subjects import subject_label
from augane.io.atomic import write_text_atomic

SUBJECT_HEADER = "Subject"
AU_HEADER = "AU"


def au_row_label(au: int) -> str:
    """How the paper's Table 3 names an AU: 4 -> ``04``."""
    return f"{int(au):02d}"


def paper_table(scores: pd.DataFrame, rows: str, include_aus: Sequence[int] | None = None) -> pd.DataFrame:
    """Relabel a score table into the paper's layout and append the ``Avg.`` row.

    Args:
        scores: numeric table indexed by subject names (``rows="subject"``) or AU
            numbers (``rows="au"``), one column per method key.
        rows: ``"subject"`` or ``"au"``.
        include_aus: with ``rows="au"``, the full AU list to show; AUs missing from
            ``scores`` become empty rows (left out of the average).
    Returns:
        numeric table with string row labels (``03``/``01``/``Avg.``), display column
        names, and the index named ``Subject`` or ``AU``.
    """
    if rows == "au":
        if include_aus is not None:
            scores = scores.reindex(list(include_aus))
        labels = [au_row_label(au) for au in scores.index]
        header = AU_HEADER
    elif rows == "subject":
        labels = [subject_label(s) for s in scores.index]
        header = SUBJECT_HEADER
    else:
        raise ValueError(f"rows must be 'subject' or 'au', got {rows!r}")
    table = scores.copy()
    table.index = pd.Index(labels)
    table = with_average(table)
    table.columns = [display_name(str(c)) for c in table.columns]
    table.index.name = header
    return table


def _cell(value: float, decimals: int, missing: str) -> str:
    return missing if value is None or np.isnan(value) else f"{value:.{decimals}f}"


def to_markdown(table: pd.DataFrame, decimals: int = 2) -> str:
    """A GitHub-flavoured Markdown table: the index as first column, numbers right-aligned."""
    header = [str(table.index.name or ""), *map(str, table.columns)]
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join([":---", *["---:"] * len(table.columns)]) + " |",
    ]
    for label, row in table.iterrows():
        cells = [_cell(float(v), decimals, "n/a") for v in row.to_numpy(dtype=np.float64)]
        lines.append("| " + " | ".join([str(label), *cells]) + " |")
    return "\n".join(lines) + "\n"


def to_csv(table: pd.DataFrame, decimals: int = 2) -> str:
    """CSV text of a paper-layout table, numbers with ``decimals`` decimals, empty cells empty."""
    buffer = io.StringIO()
    table.to_csv(buffer, float_format=f"%.{decimals}f", na_rep="", lineterminator="\n")
    return buffer.getvalue()


def count_table(counts: pd.DataFrame, rows: str) -> pd.DataFrame:
    """Relabel an integer count table (support, selection) with paper-style row labels and display names."""
    table = counts.copy()
    if rows == "au":
        table.index = pd.Index([au_row_label(au) for au in table.index], name=AU_HEADER)
    else:
        table.index = pd.Index([subject_label(s) for s in table.index], name=SUBJECT_HEADER)
    table.columns = [display_name(str(c)) for c in table.columns]
    return table


def counts_to_markdown(table: pd.DataFrame) -> str:
    """Markdown for a table of integers or short strings (no rounding)."""
    header = [str(table.index.name or ""), *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join([":---", *["---:"] * len(table.columns)]) + " |"]
    for label, row in table.iterrows():
        lines.append("| " + " | ".join([str(label), *(str(v) for v in row.tolist())]) + " |")
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, stem: str | Path, decimals: int = 2) -> tuple[Path, Path]:
    """Write ``<stem>.csv`` and ``<stem>.md`` atomically; returns both paths."""
    stem = Path(stem)
    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    write_text_atomic(csv_path, to_csv(table, decimals))
    write_text_atomic(md_path, to_markdown(table, decimals))
    return csv_path, md_path
