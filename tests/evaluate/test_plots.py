"""Bar plots are written as valid PNGs of the expected size; empty tables are refused."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from augane.evaluate.plots import bar_plot, method_colour
from augane.evaluate.tables import paper_table

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_bar_plot_writes_a_png(tmp_path):
    scores = pd.DataFrame({"augane": [0.4, 0.5, np.nan], "deca": [0.2, 0.1, 0.3]}, index=[1, 2, 4])
    path = bar_plot(paper_table(scores, rows="au"), tmp_path / "bars.png", "Per-AU F1")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
    assert image[..., :3].std() > 0.05  # something was drawn
    assert not list(tmp_path.glob(".*tmp*"))


def test_methods_keep_their_colours():
    assert method_colour("AUGANE", 5) == method_colour("AUGANE", 0)
    assert method_colour("Other", 0) != method_colour("Other", 1)


def test_empty_table_is_refused(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        bar_plot(pd.DataFrame(), tmp_path / "x.png", "nothing")
