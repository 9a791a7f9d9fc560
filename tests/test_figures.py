"""Pictures of wrong results (properties.figures): the outlined cells are the wrong ones, read
back from the rendered pixels; shape mismatches and failures without a value have their own
picture or none; without matplotlib there is none and the record says null."""
from __future__ import annotations

import base64
import io
import sys

import pytest
import torch

from properties import figures
from properties.compare import mismatch
from properties.failures import PropertyFailure
from properties.outcomes import failure_record
from properties.tolerance import Expected

image = pytest.importorskip("matplotlib.image", reason="pictures need matplotlib (plot extra)")

MAGENTA = (1.0, 0.0, 1.0)


def wrong_row(row: int = -1, rows: int = 3, cols: int = 3):
    """A result whose row `row` is zeros (the last row: a loop that skipped it)."""
    expected = torch.arange(1.0, rows * cols + 1).reshape(rows, cols)
    got = expected.clone()
    got[row] = 0
    return mismatch(got, Expected(expected, lambda u: 0), input_dtype=torch.float32)


def skipped_last_row(rows: int = 3, cols: int = 3):
    return wrong_row(-1, rows, cols)


def pixels(png: bytes):
    return image.imread(io.BytesIO(png), format="png")[..., :3]


def magenta_rows(png: bytes) -> torch.Tensor:
    """The pixel rows holding the outline colour, as fractions of the picture's height."""
    rgb = torch.as_tensor(pixels(png))
    close = (rgb - torch.tensor(MAGENTA)).abs().amax(-1) < 0.1
    return close.any(-1).nonzero().flatten().double() / rgb.shape[0]


def heatmap_extent(png: bytes) -> tuple[float, float]:
    """The vertical extent of the heatmaps, as fractions of the picture's height: the pixel
    rows where many pixels are coloured (neither white, grey nor black)."""
    rgb = torch.as_tensor(pixels(png))
    coloured = ((rgb.amax(-1) - rgb.amin(-1)) > 0.25).sum(-1) > rgb.shape[1] * 0.2
    rows = coloured.nonzero().flatten().double() / rgb.shape[0]
    return float(rows.min()), float(rows.max())


@pytest.mark.parametrize("row, third", [(-1, 2), (0, 0), (1, 1)])
def test_the_outline_is_on_the_wrong_row(row, third):
    """Read back from the pixels: the outline colour is within the wrong row's third of the
    heatmaps' height, and nowhere else."""
    png = figures.figure_png(wrong_row(row), "corr2d: result")
    marked = magenta_rows(png)
    assert len(marked), "nothing is outlined"
    top, bottom = heatmap_extent(png)
    height = (bottom - top) / 3
    slack = 0.02   # the outline's width, half of it outside its cell
    assert top + third * height - slack <= float(marked.min())
    assert float(marked.max()) <= top + (third + 1) * height + slack


def test_marked_cells_and_words_name_the_wrong_elements():
    found = skipped_last_row(2, 2)
    assert figures.marked_cells(found) == [(1, 0), (1, 1)]
    words = figures.describe(found, "corr2d: result")
    assert words.endswith("outside the tolerance: [1, 0], [1, 1]")


def test_channels_with_wrong_elements_are_drawn_and_the_rest_counted():
    expected = torch.randn(1, 6, 4, 5, dtype=torch.float64)
    got = expected.clone()
    got[0, 1:, 0, 0] += 1.0       # channels 1..5 wrong, channel 0 right
    found = mismatch(got, Expected(expected, lambda u: 0), input_dtype=torch.float64)
    assert figures._rows(expected, found.bad) == [(0, c) for c in range(1, 6)]
    png = figures.figure_png(found, "conv2d: result")
    assert png.startswith(b"\x89PNG")


def test_a_shape_mismatch_is_drawn_side_by_side_without_a_difference():
    expected = torch.arange(9.0).reshape(3, 3)
    found = mismatch(expected[:2, :2], Expected(expected, lambda u: 0),
                     input_dtype=torch.float32)
    assert found.kind == "shape"
    png = figures.figure_png(found, "corr2d: result")
    assert png.startswith(b"\x89PNG") and len(magenta_rows(png)) == 0
    assert "side by side" in figures.describe(found, "corr2d: result")


def test_failures_without_a_value_have_no_picture():
    raised = PropertyFailure("corr2d", "raised ValueError: no", kind="raised")
    assert figures.figure_record(raised) is None
    integer = mismatch(torch.zeros(2, 2, dtype=torch.int64), Expected(torch.zeros(2, 2),
                                                                       lambda u: 0),
                       input_dtype=torch.float32)
    assert figures.figure_png(integer) is None


def test_the_failure_record_carries_the_picture_only_when_asked():
    found = skipped_last_row()
    failure = PropertyFailure("corr2d", found.summary(), mismatch=found)
    assert failure_record(failure, "agrees")["figure"] is None
    picture = failure_record(failure, "agrees", figure=True)["figure"]
    assert base64.b64decode(picture["png"]).startswith(b"\x89PNG")
    assert picture["alt"].startswith("corr2d: result: expected, got")


def test_drawing_leaves_pyplot_and_rcparams_alone():
    import matplotlib
    before = dict(matplotlib.rcParams)
    pyplot = sys.modules.get("matplotlib.pyplot")
    figures.figure_png(skipped_last_row(), "corr2d: result")
    assert dict(matplotlib.rcParams) == before
    if pyplot is None:
        assert "matplotlib.pyplot" not in sys.modules
    else:
        assert pyplot.get_fignums() == []


def test_without_matplotlib_there_is_no_picture(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib -> ImportError
    assert not figures.available()
    failure = PropertyFailure("corr2d", "wrong", mismatch=skipped_last_row())
    assert failure_record(failure, "agrees", figure=True)["figure"] is None
