"""A wrong tensor result as a picture: expected, got and their difference, with the elements
outside their allowed error outlined.

    figure_png(mismatch, title) -> PNG bytes, or None
    figure_record(failure)      -> what a failure record carries (properties.outcomes):
                                   {"png": base64 text, "alt": the picture in words}, or None

A picture is drawn for a `properties.compare.Mismatch` of kind 'values' (one heatmap row per
output channel: expected, got, got − expected; the outlined cells are `mismatch.bad`) or
'shape' (expected and got side by side: the missing or extra rows and columns show). Other
failures (a raise, a hang, a wrong dtype) have no picture. A result with leading axes (C, H, W)
or (N, C, H, W) is one row per channel holding wrong elements, at most MAX_ROWS of them (the
caption says how many more). Small outputs carry their values in the cells, larger ones a
colour bar.

matplotlib is optional (the `plot` extra): without it there are no pictures and nothing else
changes. The picture is drawn with matplotlib's object API on an Agg canvas under the default
style, so neither pyplot's state (a notebook's open figures, its inline backend) nor the
user's rcParams are touched or used.
"""
from __future__ import annotations

import base64
import io
import math

import torch

#: At most this many channels are drawn (the first ones holding wrong elements).
MAX_ROWS = 4
#: Outputs with at most this many elements per channel show their values in the cells.
ANNOTATE_UP_TO = 64
#: The outline of an element outside its allowed error: a colour no colormap here uses.
MARK_COLOUR = "#ff00ff"
#: Above this many wrong elements in a channel they are shaded instead of outlined.
OUTLINE_UP_TO = 400
DPI = 80


def available() -> bool:
    """Whether pictures can be drawn here (matplotlib is installed)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


#: At most this many outlined elements are named in a picture's words.
NAMED_CELLS = 8


def figure_record(failure) -> dict | None:
    """The picture of a failure's wrong value, as data: {"png": the PNG in base64, "alt":
    what it shows in words (which elements are outlined)}; None when there is nothing to
    draw or no matplotlib."""
    found = getattr(failure, "mismatch", None)
    if found is None:
        return None
    title = f"{failure.culprit}: {found.what}"
    png = figure_png(found, title)
    if not png:
        return None
    return {"png": base64.b64encode(png).decode("ascii"), "alt": describe(found, title)}


def describe(found, title: str) -> str:
    """A picture in words (an image's alt text)."""
    if found.kind == "shape":
        return (f"{title}: expected (shape {tuple(found.expected.shape)}) and got (shape "
                f"{tuple(found.got.shape)}) side by side")
    cells = marked_cells(found)
    named = ", ".join(str(list(c)) for c in cells[:NAMED_CELLS])
    more = f" and {len(cells) - NAMED_CELLS} more" if len(cells) > NAMED_CELLS else ""
    return (f"{title}: expected, got and got − expected; outlined, outside the tolerance: "
            f"{named}{more}")


def figure_png(found, title: str = "result") -> bytes | None:
    """The PNG of a Mismatch (module docstring), or None when it has no picture."""
    if found.kind not in ("values", "shape") or not available():
        return None
    expected = found.expected.detach().to(torch.float64).cpu()
    got = found.got.detach().to(torch.float64).cpu()
    if found.kind == "values":
        bad = found.bad.expand_as(expected).cpu()
        rows = _rows(expected, bad)
        panels = [(expected, "expected"), (got, "got"), (got - expected, "got − expected")]
        caption = (f"{title}: {int(bad.sum())} of {bad.numel()} elements outside the "
                   "tolerance (outlined)")
    else:
        if expected.dim() != got.dim():
            return None
        bad = None
        rows = _rows(expected if expected.numel() >= got.numel() else got, None)
        panels = [(expected, "expected"), (got, "got")]
        caption = (f"{title}: shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
    if len(rows) > MAX_ROWS:
        caption += f"; {len(rows) - MAX_ROWS} more channels not shown"
        rows = rows[:MAX_ROWS]
    return _draw(panels, bad, rows, caption, difference=found.kind == "values")


def marked_cells(found) -> list[tuple[int, ...]]:
    """The indices outlined in a 'values' picture (for words beside it: an image's alt
    text)."""
    if found.kind != "values" or found.bad is None:
        return []
    return [tuple(int(i) for i in index) for index in found.bad.nonzero()]


# --------------------------------------------------------------------------- drawing

def _plane(t: torch.Tensor, lead: tuple[int, ...]) -> torch.Tensor:
    """The 2-D slice of `t` at the leading index `lead` (a 0-d or 1-d tensor is one row)."""
    if t.dim() == 0:
        return t.reshape(1, 1)
    if t.dim() == 1:
        return t.reshape(1, -1)
    return t[lead] if lead else t


def _slice(t: torch.Tensor, lead: tuple[int, ...]) -> torch.Tensor | None:
    """`_plane`, or None when `t` has no such leading index (a shape mismatch)."""
    try:
        return _plane(t, lead)
    except IndexError:
        return None


def _rows(t: torch.Tensor, bad: torch.Tensor | None) -> list[tuple[int, ...]]:
    """The leading indices of the channels to draw, one heatmap row each: those holding
    wrong elements (all of them when `bad` is None)."""
    if t.dim() <= 2:
        return [()]
    leads = [tuple(int(i) for i in index) for index in
             torch.ones(t.shape[:-2], dtype=torch.bool).nonzero()]
    if bad is not None:
        leads = [lead for lead in leads if bool(bad[lead].any())] or leads
    return leads


def _finite_range(*planes: torch.Tensor) -> tuple[float, float]:
    values = torch.cat([p.reshape(-1) for p in planes])
    values = values[torch.isfinite(values)]
    if not values.numel():
        return -1.0, 1.0
    low, high = float(values.min()), float(values.max())
    return (low - 1.0, high + 1.0) if low == high else (low, high)


#: The layout, in inches: margins, gaps, a row's title, a colorbar and its labels.
_LEFT, _GAP, _TOP, _TITLE, _BOTTOM, _BAR, _BAR_LABELS = 0.35, 0.3, 0.4, 0.3, 0.3, 0.12, 0.45
_MIN_PANEL = 1.2


def _draw(panels, bad, rows, caption: str, difference: bool) -> bytes:
    import matplotlib
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    planes = [[_slice(t, lead) for t, _ in panels] for lead in rows]
    height = max(p.shape[0] for row in planes for p in row if p is not None)
    width = max(p.shape[1] for row in planes for p in row if p is not None)
    cell = min(0.55, 2.4 / max(height, width, 1))
    panel_w, panel_h = width * cell, height * cell
    annotate = height * width <= ANNOTATE_UP_TO
    bar = 0.0 if annotate else _BAR + _BAR_LABELS
    column = max(panel_w, _MIN_PANEL) + bar + _GAP
    fig_w = max(_LEFT + len(panels) * column, 4.0)
    row_h = panel_h + _TITLE + _BOTTOM
    fig_h = _TOP + len(rows) * row_h
    with matplotlib.style.context("default"):
        figure = Figure(figsize=(fig_w, fig_h), dpi=DPI)
        FigureCanvasAgg(figure)
        figure.text(0.5, 1 - 0.12 / fig_h, caption, ha="center", va="top", fontsize=9)
        for r, lead in enumerate(rows):
            low, high = _finite_range(*[p for p in planes[r][:2] if p is not None])
            mask = _plane(bad, lead) if bad is not None else None
            top = _TOP + r * row_h + _TITLE
            for c, ((_, label), plane) in enumerate(zip(panels, planes[r])):
                if plane is None:
                    continue
                h, w = plane.shape[0] * cell, plane.shape[1] * cell
                left = _LEFT + c * column
                ax = figure.add_axes((left / fig_w, 1 - (top + h) / fig_h, w / fig_w,
                                      h / fig_h))
                ax.set_title(label + (f"  {list(lead)}" if lead else ""), fontsize=9)
                if difference and c == 2:
                    limit = max(abs(v) for v in _finite_range(plane)) or 1.0
                    cmap, vmin, vmax = "RdBu_r", -limit, limit
                else:
                    cmap, vmin, vmax = "viridis", low, high
                colours = matplotlib.colormaps[cmap].with_extremes(bad="#bbbbbb")
                image = ax.imshow(plane.numpy(), cmap=colours, vmin=vmin, vmax=vmax,
                                  interpolation="nearest", aspect="auto")
                _ticks(ax, plane.shape)
                if annotate:
                    _annotate(ax, plane, image)
                else:
                    bar_ax = figure.add_axes(((left + w + 0.06) / fig_w, 1 - (top + h) / fig_h,
                                              _BAR / fig_w, h / fig_h))
                    figure.colorbar(image, cax=bar_ax)
                    bar_ax.tick_params(labelsize=7)
                if mask is not None and c > 0:
                    _mark(ax, mask, Rectangle, linewidth=min(2.5, max(0.8, cell * 7.2)))
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _ticks(ax, shape) -> None:
    h, w = shape
    step_h, step_w = max(1, math.ceil(h / 8)), max(1, math.ceil(w / 8))
    ax.set_yticks(range(0, h, step_h))
    ax.set_xticks(range(0, w, step_w))
    ax.tick_params(labelsize=7, length=2)


def _annotate(ax, plane: torch.Tensor, image) -> None:
    for (i, j), value in zip(torch.ones(plane.shape).nonzero().tolist(),
                             plane.reshape(-1).tolist()):
        rgba = image.cmap(image.norm(value)) if math.isfinite(value) else (0.7, 0.7, 0.7, 1)
        light = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] > 0.5
        ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=7,
                color="black" if light else "white")


def _mark(ax, mask: torch.Tensor, Rectangle, linewidth: float) -> None:
    """Outline each wrong element (shade them when there are many)."""
    cells = mask.nonzero().tolist()
    if len(cells) <= OUTLINE_UP_TO:
        for i, j in cells:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                   edgecolor=MARK_COLOUR, linewidth=linewidth, clip_on=False))
        return
    shade = torch.zeros(*mask.shape, 4)
    shade[mask] = torch.tensor([1.0, 0.0, 1.0, 0.55])
    ax.imshow(shade.numpy(), interpolation="nearest", aspect="equal")
