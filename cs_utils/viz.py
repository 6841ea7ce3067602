"""Plotting helpers and interactive demos for the lectures.

Everything a lecture draws lives here, so that notebooks stay a few lines per
slide. Two families:

- static figures (``show_*``, ``*_figure``, ``plot_*``): return a matplotlib
  Figure or Axes and work with any backend (the tests use Agg);
- ipywidgets demos (``*_widget``): return an ``ipywidgets.VBox`` whose
  controls, text read-out and figure output are reachable as attributes
  (``.controls``, ``.readout``, ``.output``: an Image widget holding the
  figure as PNG) so tests and browser checks can move a slider and see the
  read-out and the picture change. Each demo has a static twin that
  the lecture shows first, so a notebook exported without a kernel still reads
  sensibly.

Call ``use_lecture_style()`` once at the top of a lecture: large fonts and
high-DPI (or SVG) inline figures that stay readable on a projector.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

__all__ = [
    "use_lecture_style",
    "show_matrix",
    "plot_kernel",
    "show_images",
    "show_feature_maps",
    "plot_smoothing",
    "plot_sequence_steps",
    "symbolic_conv2d",
    "format_terms",
    "latex_matrix",
    "latex_kernel",
    "dot_product_text",
    "sliding_window_figure",
    "sliding_kernel_widget",
    "kernel_1d",
    "KERNELS_1D",
    "kernel_1d_widget",
    "smoothing_figure",
    "kernel_gallery_figure",
    "kernel_gallery_widget",
    "output_size_text",
    "output_size_figure",
    "output_size_widget",
    "connectivity_figure",
    "im2col_figure",
    "pool_backward_figure",
    "plot_timings",
    "benchmark_figures",
    "plot_benchmark",
    "plot_history",
    "plot_layer_profile",
    "html_table",
]

# Colours used consistently across the lectures.
INPUT_COLOR = "#4C72B0"
KERNEL_COLOR = "#DD8452"
OUTPUT_COLOR = "#55A868"
HILITE_COLOR = "#C44E52"


# ----------------------------------------------------------------------------
# Style
# ----------------------------------------------------------------------------

LECTURE_RC = {
    "figure.figsize": (9.0, 4.5),
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 15,
    "axes.titlesize": 17,
    "axes.labelsize": 15,
    "xtick.labelsize": 13,
    "ytick.labelsize": 13,
    "legend.fontsize": 13,
    "lines.linewidth": 2.5,
    "lines.markersize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "image.interpolation": "nearest",
    "figure.constrained_layout.use": True,
}


def use_lecture_style(fmt: str = "retina") -> None:
    """Large fonts, thick lines and sharp inline figures for projection.

    Args:
        fmt: inline figure format inside IPython: "retina" (2x PNG, the default:
            small files, sharp on any screen), "svg" (vector) or "png".
    """
    import matplotlib as mpl

    if fmt not in ("retina", "svg", "png"):
        raise ValueError(f"fmt must be 'retina', 'svg' or 'png'; got fmt={fmt!r}")
    mpl.rcParams.update(LECTURE_RC)
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: rcParams are all we can set
        return
    if get_ipython() is None:
        return
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats(fmt)


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _new_axes(ax, figsize=None):
    if ax is not None:
        return ax.figure, ax
    fig, ax = _plt().subplots(figsize=figsize)
    return fig, ax


# ----------------------------------------------------------------------------
# Matrices, kernels, images
# ----------------------------------------------------------------------------


def _format_cell(v: Any, fmt: str) -> str:
    if isinstance(v, str):
        return v
    v = float(v)
    if fmt == "auto":
        return f"{v:.0f}" if v == round(v) else f"{v:.2f}"
    return fmt.format(v)


def _text_colour(image, value: float) -> str:
    """White on dark cells, black on light ones (luminance of the cell's colour)."""
    if not np.isfinite(value):
        return "black"
    red, green, blue, _ = image.cmap(image.norm(value))
    return "white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.5 else "black"


def show_matrix(
    a,
    ax=None,
    fmt: str = "auto",
    cmap: str = "Blues",
    highlight: Sequence[tuple[int, int, int, int]] | tuple[int, int, int, int] | None = None,
    highlight_color: str = HILITE_COLOR,
    title: str | None = None,
    fontsize: float | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    values: bool = True,
    pad_width: int = 0,
):
    """Draw a small 2-D array as a grid of cells with the value written in each.

    Args:
        a: (H, W) numbers, or (H, W) strings (symbols; drawn on white).
        fmt: "auto" (integers without decimals, else 2 decimals) or a format string.
        highlight: one ``(row, col, height, width)`` box or a list of them, outlined.
        pad_width: number of outer rows/columns to shade as zero padding.
        values: write the numbers into the cells.

    Returns:
        the Axes.
    """
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise ValueError(f"a must be a 2-D array (H, W); got shape {arr.shape}")
    fig, ax = _new_axes(ax, figsize=(0.6 * arr.shape[1] + 1, 0.6 * arr.shape[0] + 1))
    symbolic = arr.dtype.kind in "USO"
    h, w = arr.shape
    if symbolic:
        ax.imshow(np.zeros((h, w)), cmap="Greys", vmin=0, vmax=1)
    else:
        ax.imshow(arr.astype(float), cmap=cmap, vmin=vmin, vmax=vmax)
    if pad_width:
        from matplotlib.patches import Rectangle

        mask = np.ones((h, w), bool)
        mask[pad_width:h - pad_width, pad_width:w - pad_width] = False
        for r, c in zip(*np.nonzero(mask)):
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, color="0.85", zorder=1))
    if values:
        size = fontsize or max(8.0, min(16.0, 120.0 / max(h, w, 1)))
        image = ax.images[-1]
        for r in range(h):
            for c in range(w):
                v = arr[r, c]
                colour = "black" if symbolic else _text_colour(image, float(v))
                ax.text(c, r, _format_cell(v, fmt), ha="center", va="center", fontsize=size, color=colour, zorder=3)
    ax.hlines(np.arange(0.5, h - 1, 1), -0.5, w - 0.5, color="0.4", linewidth=1, zorder=2)
    ax.vlines(np.arange(0.5, w - 1, 1), -0.5, h - 0.5, color="0.4", linewidth=1, zorder=2)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(True)
    if highlight is not None:
        from matplotlib.patches import Rectangle

        boxes = [highlight] if np.ndim(highlight) == 1 else list(highlight)
        for (r0, c0, hh, ww) in boxes:
            ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), ww, hh, fill=False, edgecolor=highlight_color,
                                   linewidth=4, zorder=4))
    if title:
        ax.set_title(title)
    return ax


def plot_kernel(k, ax=None, title: str | None = None, fmt: str = "auto"):
    """A kernel as a grid, coloured on a diverging scale centred at zero (red > 0, blue < 0)."""
    k = np.asarray(k, dtype=float)
    m = float(np.max(np.abs(k))) or 1.0
    return show_matrix(k, ax=ax, fmt=fmt, cmap="RdBu_r", vmin=-m, vmax=m, title=title)


def show_images(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    cmap: str = "gray",
    size: float = 3.0,
    symmetric: bool = False,
    suptitle: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
):
    """A grid of images (each (H, W) or (H, W, 3)) with optional titles.

    Args:
        symmetric: colour each image on a scale symmetric around 0 (for filter
            responses that are negative and positive).

    Returns:
        the Figure.
    """
    images = list(images)
    if not images:
        raise ValueError("images must contain at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"titles must have one entry per image: {len(images)} images, {len(titles)} titles")
    ncols = ncols or min(len(images), 6)
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = _plt().subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.5 if suptitle else 0)),
                                squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        img = np.asarray(images[i], dtype=float)
        lo, hi = vmin, vmax
        if symmetric:
            m = float(np.max(np.abs(img))) or 1.0
            lo, hi = -m, m
        ax.imshow(img, cmap=None if img.ndim == 3 else cmap, vmin=lo, vmax=hi)
        if titles is not None:
            ax.set_title(titles[i], fontsize=LECTURE_RC["font.size"] - 1)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def show_feature_maps(maps, titles: Sequence[str] | None = None, ncols: int = 8, cmap: str = "viridis",
                      size: float = 1.8, suptitle: str | None = None):
    """Feature maps (C, H, W) of one image, one panel per channel."""
    maps = np.asarray(maps, dtype=float)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (C, H, W); got shape {maps.shape}")
    titles = titles if titles is not None else [f"map {i}" for i in range(maps.shape[0])]
    return show_images(list(maps), titles=titles, ncols=min(ncols, maps.shape[0]), cmap=cmap, size=size,
                       suptitle=suptitle)


# ----------------------------------------------------------------------------
# 1-D signals
# ----------------------------------------------------------------------------


def plot_smoothing(readings, curves: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
                   truth=None, ax=None, title: str | None = None):
    """Noisy readings as dots, the true path (optional) and smoothed curves as lines.

    Args:
        readings: (T,) measured values, plotted at t = 0..T-1.
        curves: label -> (t, values) for each smoothed signal.
        truth: (T,) the noise-free signal, drawn dashed.
    """
    fig, ax = _new_axes(ax, figsize=(10, 4.5))
    readings = np.asarray(readings, dtype=float)
    t = np.arange(len(readings))
    ax.plot(t, readings, "o", color="0.6", markersize=4, label="sensor readings")
    if truth is not None:
        ax.plot(t, truth, "--", color="k", linewidth=1.5, label="true position")
    for label, (tt, vv) in (curves or {}).items():
        ax.plot(tt, vv, label=label)
    ax.set_xlabel("time step t")
    ax.set_ylabel("position")
    ax.legend(loc="upper left", frameon=False)
    if title:
        ax.set_title(title)
    return ax


def plot_sequence_steps(x, w, out, t_labels: Sequence[int] | None = None, step: int | None = None, fmt: str = "{:.2f}"):
    """Input row, kernel row and output row as three strips of cells (the 1-D sliding picture).

    Args:
        x: (L,) input; w: (K,) kernel as it slides (cross-correlation order);
        out: (L-K+1,) outputs; step: index of the output being computed, whose window is outlined.

    Returns:
        the Figure.
    """
    x, w, out = (np.asarray(a, dtype=float) for a in (x, w, out))
    L, K = len(x), len(w)
    step = len(out) - 1 if step is None else int(step)
    fig, axes = _plt().subplots(3, 1, figsize=(0.85 * L + 1.5, 3.6))
    rows = [("x", x, 0, INPUT_COLOR), ("w", w, step, KERNEL_COLOR), ("s", out[:step + 1], K - 1, OUTPUT_COLOR)]
    for ax, (name, vals, offset, color) in zip(axes, rows):
        ax.set_xlim(-0.5, L - 0.5)
        ax.set_ylim(-0.5, 0.5)
        ax.axis("off")
        ax.text(-0.7, 0, name, ha="right", va="center", fontsize=16, style="italic")
        for i, v in enumerate(vals):
            from matplotlib.patches import Rectangle

            ax.add_patch(Rectangle((offset + i - 0.45, -0.4), 0.9, 0.8, facecolor=color, alpha=0.25, edgecolor=color))
            ax.text(offset + i, 0, fmt.format(v), ha="center", va="center", fontsize=12)
    from matplotlib.patches import Rectangle

    axes[0].add_patch(Rectangle((step - 0.5, -0.48), K, 0.96, fill=False, edgecolor=HILITE_COLOR, linewidth=3))
    if t_labels is not None:
        for i, lab in enumerate(t_labels):
            axes[0].text(i, 0.62, str(lab), ha="center", va="bottom", fontsize=10, color="0.4")
    return fig


# ----------------------------------------------------------------------------
# Symbolic sums (the toy 3x4 example) without a CAS
# ----------------------------------------------------------------------------


def symbolic_conv2d(inputs, kernel, stride: int = 1) -> list[list[list[tuple[str, str]]]]:
    """Cross-correlate a grid of input symbols with a grid of kernel symbols.

    Args:
        inputs: (H, W) grid of symbol names (strings).
        kernel: (kh, kw) grid of symbol names.

    Returns:
        ``terms[i][j]`` = list of ``(input_symbol, kernel_symbol)`` products whose
        sum is output (i, j); the order is row-major over the kernel.
    """
    from cs_utils.shapes import conv_output_size

    inputs, kernel = np.asarray(inputs, dtype=object), np.asarray(kernel, dtype=object)
    if inputs.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"inputs and kernel must be 2-D grids; got shapes {inputs.shape} and {kernel.shape}")
    ho = conv_output_size(inputs.shape[0], kernel.shape[0], stride, axis="height")
    wo = conv_output_size(inputs.shape[1], kernel.shape[1], stride, axis="width")
    kh, kw = kernel.shape
    return [[[(str(inputs[i * stride + a, j * stride + b]), str(kernel[a, b])) for a in range(kh) for b in range(kw)]
             for j in range(wo)] for i in range(ho)]


def format_terms(terms: Sequence[tuple[str, str]], latex: bool = False) -> str:
    """``[("a", "w"), ("b", "x")]`` -> ``"aw + bx"`` (or ``"a w + b x"`` for LaTeX)."""
    sep = " " if latex else ""
    return " + ".join(f"{p}{sep}{q}" for p, q in terms)


def latex_matrix(a, env: str = "bmatrix") -> str:
    """A 2-D array (numbers or strings) as a LaTeX matrix."""
    arr = np.asarray(a, dtype=object)
    if arr.ndim != 2:
        raise ValueError(f"a must be 2-D; got shape {arr.shape}")
    rows = [" & ".join(_format_cell(v, "auto") for v in row) for row in arr]
    return rf"\begin{{{env}}} " + r" \\ ".join(rows) + rf" \end{{{env}}}"


def latex_kernel(k, max_denominator: int = 64) -> str:
    """A kernel as LaTeX, pulling out a common fraction: ``ones/9`` -> ``\\frac{1}{9}[1 1 1; ...]``."""
    k = np.asarray(k, dtype=float)
    for d in range(1, max_denominator + 1):
        scaled = k * d
        if np.allclose(scaled, np.round(scaled)):
            body = latex_matrix(np.round(scaled).astype(int))
            return body if d == 1 else rf"\frac{{1}}{{{d}}} {body}"
    return latex_matrix(np.round(k, 3))


# ----------------------------------------------------------------------------
# Sliding a kernel over an image
# ----------------------------------------------------------------------------


def _window(x: np.ndarray, kh: int, kw: int, r: int, c: int, stride: int) -> np.ndarray:
    return x[r * stride:r * stride + kh, c * stride:c * stride + kw]


def dot_product_text(x, k, r: int, c: int, stride: int = 1, fmt: str = "auto") -> str:
    """The multiply-add that produces output (r, c), written out: ``1·0 + 2·1 + ... = 7``."""
    x, k = np.asarray(x, dtype=float), np.asarray(k, dtype=float)
    win = _window(x, *k.shape, r, c, stride)
    if win.shape != k.shape:
        raise ValueError(f"output position ({r}, {c}) with stride {stride} puts the {k.shape} kernel outside the "
                         f"{x.shape} input")
    parts = " + ".join(f"{_format_cell(a, fmt)}·{_format_cell(b, fmt)}" for a, b in zip(win.ravel(), k.ravel()))
    return f"{parts} = {_format_cell(float(np.sum(win * k)), fmt)}"


def sliding_window_figure(x, k, position: int, stride: int = 1, axes=None, fmt: str = "auto"):
    """Input with the current window outlined, the kernel, and the output filled up to ``position``.

    The output values come from ``cs_utils.functional.conv2d`` (cross-correlation);
    positions are numbered row-major over the output.

    Returns:
        the Figure.
    """
    from cs_utils.functional import conv2d

    x, k = np.asarray(x, dtype=float), np.asarray(k, dtype=float)
    out = conv2d(x, k, stride=stride)
    ho, wo = out.shape
    if not 0 <= position < ho * wo:
        raise ValueError(f"position must be in 0..{ho * wo - 1} for a {ho}x{wo} output; got position={position}")
    r, c = divmod(int(position), wo)
    if axes is None:
        widths = [x.shape[1], k.shape[1], wo]
        fig, axes = _plt().subplots(1, 3, figsize=(0.75 * sum(widths) + 3, 0.75 * x.shape[0] + 1.6),
                                    gridspec_kw={"width_ratios": widths})
    else:
        fig = axes[0].figure
    show_matrix(x, ax=axes[0], fmt=fmt, cmap="Blues", highlight=(r * stride, c * stride, *k.shape), title="input")
    plot_kernel(k, ax=axes[1], title="kernel", fmt=fmt)
    partial = np.full(out.shape, np.nan)
    partial.flat[:position + 1] = out.flat[:position + 1]
    shown = np.where(np.isnan(partial), 0.0, partial)
    ax = show_matrix(shown, ax=axes[2], fmt=fmt, cmap="Greens", highlight=(r, c, 1, 1), title="output",
                     vmin=float(np.min(out)), vmax=float(np.max(out)), values=False)
    for rr in range(ho):
        for cc in range(wo):
            if not np.isnan(partial[rr, cc]):
                ax.text(cc, rr, _format_cell(partial[rr, cc], fmt), ha="center", va="center", fontsize=14,
                        color=_text_colour(ax.images[-1], partial[rr, cc]))
    fig.suptitle(f"output[{r}, {c}] = " + dot_product_text(x, k, r, c, stride, fmt), fontsize=14)
    return fig


@functools.lru_cache(maxsize=None)
def _demo_class():
    import ipywidgets as widgets

    class DemoBox(widgets.VBox):
        """A VBox whose plain-text form says what it is, for exports made without a live kernel."""

        def _repr_mimebundle_(self, **kwargs):
            data = super()._repr_mimebundle_(**kwargs)
            if isinstance(data, dict) and "text/plain" in data:
                data["text/plain"] = ("[interactive demo: run this notebook in JupyterLab to use the controls; "
                                      "the static figure above shows the same thing]")
            return data

    return DemoBox


def _DemoBox(children):
    return _demo_class()(children)


def _demo_box(controls: Mapping[str, Any], render: Callable[[], str], draw: Callable[[], Any], dpi: int = 150):
    """A VBox of controls, an HTML read-out and an Image widget with the figure; redraws on any change.

    The figure is rendered to PNG and shipped as the value of an ``ipywidgets.Image``:
    no Output-widget capture, so it updates the same way in JupyterLab, in an
    exported notebook with saved widget state and under nbclient.
    """
    import io

    import ipywidgets as widgets

    readout = widgets.HTML()
    output = widgets.Image(format="png")

    def refresh(_change=None):
        readout.value = render()
        fig = draw()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        _plt().close(fig)
        output.value = buf.getvalue()
        width_px = int.from_bytes(output.value[16:20], "big")  # PNG header: IHDR width
        output.layout.width = f"{round(width_px * 100 / dpi)}px"  # shown at 100 px per inch, sharp on HiDPI

    for ctrl in controls.values():
        ctrl.observe(refresh, names="value")
    box = _DemoBox([widgets.HBox(list(controls.values())), readout, output])
    box.controls, box.readout, box.output, box.refresh = dict(controls), readout, output, refresh
    refresh()
    return box


def sliding_kernel_widget(x, k, stride: int = 1):
    """Slider over output positions: outlines the window, fills the output, writes out the dot product."""
    import ipywidgets as widgets
    from cs_utils.functional import conv2d

    x, k = np.asarray(x, dtype=float), np.asarray(k, dtype=float)
    ho, wo = conv2d(x, k, stride=stride).shape
    slider = widgets.IntSlider(value=0, min=0, max=ho * wo - 1, description="position",
                               continuous_update=False, layout=widgets.Layout(width="420px"))

    def render():
        r, c = divmod(slider.value, wo)
        return f"<code style='font-size:16px'>output[{r}, {c}] = {dot_product_text(x, k, r, c, stride)}</code>"

    return _demo_box({"position": slider}, render, lambda: sliding_window_figure(x, k, slider.value, stride))


# ----------------------------------------------------------------------------
# 1-D kernels: the interactive smoothing demo
# ----------------------------------------------------------------------------

KERNELS_1D = ("box", "triangle", "gaussian", "recent-weighted", "difference")


def kernel_1d(kind: str, width: int) -> np.ndarray:
    """A normalised 1-D kernel of ``width`` taps listed oldest first.

    "box", "triangle", "gaussian" are symmetric averages; "recent-weighted" gives
    geometrically more weight to later taps (each tap twice the one before);
    "difference" is ``[-1, 0, ..., 0, 1]`` (not normalised: it sums to 0).
    """
    width = int(width)
    if width < 1:
        raise ValueError(f"width must be >= 1; got width={width}")
    i = np.arange(width, dtype=float)
    if kind == "box":
        w = np.ones(width)
    elif kind == "triangle":
        w = np.minimum(i + 1, width - i)
    elif kind == "gaussian":
        sigma = max(width / 5.0, 0.5)
        w = np.exp(-0.5 * ((i - (width - 1) / 2) / sigma) ** 2)
    elif kind == "recent-weighted":
        w = 2.0 ** i
    elif kind == "difference":
        if width < 2:
            raise ValueError("a difference kernel needs width >= 2")
        w = np.zeros(width)
        w[0], w[-1] = -1.0, 1.0
        return w
    else:
        raise ValueError(f"kind must be one of {KERNELS_1D}; got kind={kind!r}")
    return w / w.sum()


def smoothing_figure(readings, truth, w):
    """Readings filtered by the causal weighted average ``w`` (oldest first) next to a bar chart of ``w``.

    ``s_t = sum_j x_{t-K+1+j} w_j`` is computed by ``cs_utils.functional.conv1d`` and
    plotted at the time of its newest reading t, so a lagging filter shows as a shift.
    """
    from cs_utils.functional import conv1d

    w = np.asarray(w, dtype=float)
    fig, (ax, axk) = _plt().subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [4, 1.2]})
    s = conv1d(np.asarray(readings, dtype=float), w)
    t = np.arange(len(w) - 1, len(readings))  # s_t uses x_{t-K+1} .. x_t: a causal filter
    plot_smoothing(readings, {"filtered": (t, s)}, truth=truth, ax=ax)
    axk.bar(np.arange(-len(w) + 1, 1), w, color=KERNEL_COLOR)
    axk.set_xlabel("lag  (0 = newest)")
    axk.set_title("weights")
    return fig


def kernel_1d_widget(readings, truth=None, kind: str = "recent-weighted", width: int = 5):
    """Pick a kernel shape and width; the filtered signal and the weights update."""
    import ipywidgets as widgets

    kind_w = widgets.Dropdown(options=list(KERNELS_1D), value=kind, description="kernel")
    width_w = widgets.IntSlider(value=width, min=2, max=25, description="width", continuous_update=False)

    def render():
        w = kernel_1d(kind_w.value, width_w.value)
        shown = ", ".join(f"{v:.3f}" for v in w)
        return f"<code style='font-size:15px'>w (oldest → newest) = [{shown}]   sum = {w.sum():.3f}</code>"

    return _demo_box({"kind": kind_w, "width": width_w}, render,
                     lambda: smoothing_figure(readings, truth, kernel_1d(kind_w.value, width_w.value)))


# ----------------------------------------------------------------------------
# A table of kernels applied to a photograph
# ----------------------------------------------------------------------------


def kernel_gallery_figure(image, kernels: Mapping[str, np.ndarray], ncols: int = 4, size: float = 3.2):
    """Each kernel applied to ``image`` ((H, W) grayscale) with ``conv2d`` (pad to keep the size).

    The kernel itself is drawn as an inset in the corner of its panel.
    """
    from cs_utils.functional import conv2d

    image = np.asarray(image, dtype=float)
    names = list(kernels)
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = _plt().subplots(nrows, ncols, figsize=(size * ncols, size * 1.15 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        k = np.asarray(kernels[name], dtype=float)
        out = conv2d(image, k, pad=k.shape[0] // 2)
        if np.all(k >= 0):  # an average: keep the photograph's grey scale
            ax.imshow(out, cmap="gray", vmin=0, vmax=1)
        else:  # responses of both signs: clip the extreme 1 % so edges stay visible
            m = float(np.percentile(np.abs(out), 99)) or 1.0
            ax.imshow(out, cmap="gray", vmin=-m if np.isclose(k.sum(), 0) else 0, vmax=m)
        ax.set_title(name, fontsize=14)
        inset = ax.inset_axes([0.0, 0.0, 0.3, 0.3])
        plot_kernel(k, ax=inset, fmt="auto")
        for t in inset.texts:
            t.set_fontsize(7)
    return fig


def kernel_gallery_widget(image, kernels: Mapping[str, np.ndarray]):
    """Dropdown over the kernel table; shows the original and the filtered photograph side by side."""
    import ipywidgets as widgets

    pick = widgets.Dropdown(options=list(kernels), description="kernel")

    def draw():
        from cs_utils.functional import conv2d

        k = np.asarray(kernels[pick.value], dtype=float)
        out = conv2d(np.asarray(image, dtype=float), k, pad=k.shape[0] // 2)
        fig, axes = _plt().subplots(1, 3, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 1.3, 3]})
        axes[0].imshow(image, cmap="gray", vmin=0, vmax=1)
        axes[0].set_title("original")
        plot_kernel(k, ax=axes[1], title="kernel")
        m = float(np.percentile(np.abs(out), 99)) or 1.0
        axes[2].imshow(out, cmap="gray", vmin=0 if np.all(k >= 0) else -m, vmax=1 if np.all(k >= 0) else m)
        axes[2].set_title(pick.value)
        for ax in (axes[0], axes[2]):
            ax.axis("off")
        return fig

    def render():
        k = np.asarray(kernels[pick.value], dtype=float)
        return f"<code style='font-size:15px'>{pick.value}: sum of weights = {k.sum():.3g}</code>"

    return _demo_box({"kernel": pick}, render, draw)


# ----------------------------------------------------------------------------
# Output size: the formula, drawn
# ----------------------------------------------------------------------------


def output_size_text(n: int, f: int, stride: int = 1, pad: int = 0) -> str:
    """``(7 - 3 + 2*0)/2 + 1 = 3`` or the error message of ``cs_utils.shapes`` when it does not fit."""
    from cs_utils.shapes import conv_output_size

    try:
        out = conv_output_size(n, f, stride, pad)
    except ValueError as err:
        return f"does not fit: {err}"
    return f"({n} - {f} + 2*{pad})/{stride} + 1 = {out}"


def output_size_figure(n: int, f: int, stride: int = 1, pad: int = 0, ax=None):
    """One row of ``n`` input cells with ``pad`` zeros on each side, and every filter placement below it.

    Placements that would run past the padded input (a stride that does not tile)
    are drawn in red, so the non-integer case of the formula is visible.
    """
    from matplotlib.patches import Rectangle

    n, f, stride, pad = int(n), int(f), int(stride), int(pad)
    total = n + 2 * pad
    fig, ax = _new_axes(ax, figsize=(max(6.0, 0.55 * total + 2), 3.2))
    for i in range(total):
        is_pad = i < pad or i >= pad + n
        ax.add_patch(Rectangle((i, 0), 1, 1, facecolor="0.85" if is_pad else INPUT_COLOR, alpha=0.35 if not is_pad else 1,
                               edgecolor="0.3"))
        ax.text(i + 0.5, 0.5, "0" if is_pad else f"$x_{{{i - pad}}}$", ha="center", va="center", fontsize=12)
    starts = list(range(0, total - f + 1, stride))
    leftover = (total - f) % stride if f <= total else None
    level = -0.6
    for k, s in enumerate(starts):
        y = level - 0.45 * (k % 3)
        ax.plot([s + 0.1, s + f - 0.1], [y, y], color=OUTPUT_COLOR, linewidth=5, solid_capstyle="butt")
        ax.text(s + f / 2, y - 0.12, str(k), ha="center", va="top", fontsize=10, color=OUTPUT_COLOR)
    if leftover:
        s = starts[-1] + stride
        y = level - 0.45 * (len(starts) % 3)
        ax.plot([s + 0.1, s + f - 0.1], [y, y], color=HILITE_COLOR, linewidth=5, linestyle=(0, (2, 1)))
        ax.text(s + f / 2, y - 0.12, "?", ha="center", va="top", fontsize=12, color=HILITE_COLOR)
    ax.set_xlim(-0.5, max(total, (starts[-1] + stride + f) if starts else f) + 0.5)
    ax.set_ylim(-2.3, 1.5)
    ax.axis("off")
    if leftover:
        title = f"({n} - {f} + 2*{pad})/{stride} + 1 = {(total - f) / stride + 1:.2f}: the last window runs off the edge"
    else:
        title = output_size_text(n, f, stride, pad)
    ax.set_title(title, fontsize=15)
    return fig


def output_size_widget(n: int = 7, f: int = 3, stride: int = 1, pad: int = 0):
    """Sliders for input size, filter size, stride and padding; the formula and the drawing update."""
    import ipywidgets as widgets

    ctrl = {
        "n": widgets.IntSlider(value=n, min=1, max=16, description="input W1"),
        "f": widgets.IntSlider(value=f, min=1, max=9, description="filter F"),
        "stride": widgets.IntSlider(value=stride, min=1, max=5, description="stride S"),
        "pad": widgets.IntSlider(value=pad, min=0, max=4, description="pad P"),
    }
    for c in ctrl.values():
        c.continuous_update = False
        c.layout = widgets.Layout(width="230px")

    def args():
        return ctrl["n"].value, ctrl["f"].value, ctrl["stride"].value, ctrl["pad"].value

    def render():
        return f"<code style='font-size:16px'>W2 = {output_size_text(*args())}</code>"

    def draw():
        a = args()
        if a[1] > a[0] + 2 * a[3]:  # the filter is wider than the padded input: nothing to draw but text
            fig, ax = _plt().subplots(figsize=(6, 1.2))
            ax.axis("off")
            ax.text(0, 0.5, "the filter does not fit even once", color=HILITE_COLOR, fontsize=15)
            return fig
        return output_size_figure(*a)

    return _demo_box(ctrl, render, draw)


# ----------------------------------------------------------------------------
# Connectivity, im2col, pooling gradients
# ----------------------------------------------------------------------------


def connectivity_figure(n: int = 7, k: int = 3, axes=None):
    """Dense layer vs convolution on a 1-D input of ``n`` units: lines are weights.

    Left: every output sees every input (n*n distinct weights). Right: each
    output sees ``k`` neighbours (zero padding keeps n outputs) and the same
    ``k`` weights are reused at every position, one colour per weight.
    """
    n, k = int(n), int(k)
    if axes is None:
        fig, axes = _plt().subplots(1, 2, figsize=(12, 4.2))
    else:
        fig = axes[0].figure
    colors = _plt().get_cmap("tab10")
    for ax, dense in zip(axes, (True, False)):
        for i in range(n):
            for j in range(n):
                lag = j - i + k // 2
                if dense:
                    ax.plot([j, i], [0, 1], color="0.55", linewidth=0.8)
                elif 0 <= lag < k:
                    ax.plot([j, i], [0, 1], color=colors(lag), linewidth=2.5)
        ax.scatter(range(n), [0] * n, s=300, color=INPUT_COLOR, zorder=3)
        ax.scatter(range(n), [1] * n, s=300, color=OUTPUT_COLOR, zorder=3)
        for i in range(n):
            ax.text(i, -0.16, f"$x_{{{i + 1}}}$", ha="center", va="top")
            ax.text(i, 1.12, f"$h_{{{i + 1}}}$", ha="center", va="bottom")
        n_weights = n * n if dense else k
        ax.set_title(("dense: " if dense else f"convolution (k={k}): ") + f"{n_weights} distinct weights")
        ax.set_ylim(-0.45, 1.45)
        ax.axis("off")
    return fig


def im2col_figure(x, fh: int, fw: int, stride: int = 1, highlight: int = 0, symbols: bool = True):
    """Input (C, H, W) as labelled cells next to its im2col matrix, one receptive field outlined in both.

    Cells are labelled with letters (symbols=True) so that the reader can follow
    where each input value lands in the column matrix built by ``cs_utils.im2col``.
    """
    from cs_utils.im2col import im2col

    x = np.asarray(x, dtype=float)
    if x.ndim != 3:
        raise ValueError(f"x must be one image (C, H, W); got shape {x.shape}")
    c, h, w = x.shape
    cols = im2col(x[None], fh, fw, stride=stride)  # (C*fh*fw, Ho*Wo)
    from cs_utils.shapes import conv_output_size

    wo = conv_output_size(w, fw, stride)
    labels = np.empty(x.shape, dtype=object)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for idx in range(x.size):
        labels.flat[idx] = letters[idx % len(letters)] if symbols else _format_cell(x.flat[idx], "auto")
    # map every value of cols back to its label: im2col of the label indices
    index_cols = im2col(np.arange(x.size, dtype=float).reshape(1, *x.shape), fh, fw, stride=stride).astype(int)
    col_labels = np.vectorize(lambda i: labels.flat[i])(index_cols)
    r, cc = divmod(int(highlight), wo)
    fig, axes = _plt().subplots(1, c + 1, figsize=(2.0 * c * w / 4 + 0.55 * cols.shape[1] + 2.5,
                                                   0.55 * cols.shape[0] + 1.2),
                                gridspec_kw={"width_ratios": [w] * c + [cols.shape[1]]})
    axes = np.atleast_1d(axes)
    for ch in range(c):
        show_matrix(labels[ch], ax=axes[ch], title=f"input channel {ch}" if c > 1 else "input",
                    highlight=(r * stride, cc * stride, fh, fw))
    show_matrix(col_labels, ax=axes[-1], title=f"im2col: {cols.shape[0]} x {cols.shape[1]}",
                highlight=(0, int(highlight), cols.shape[0], 1), fontsize=12)
    return fig


def pool_backward_figure(x, dout, dx, size: int = 2, stride: int = 2, title: str | None = None):
    """Three grids: input with pooling windows, upstream gradient, and the gradient routed back."""
    x, dout, dx = (np.asarray(a, dtype=float) for a in (x, dout, dx))
    fig, axes = _plt().subplots(1, 3, figsize=(13, 4.3), gridspec_kw={"width_ratios": [x.shape[1], dout.shape[1], dx.shape[1]]})
    boxes = [(i * stride, j * stride, size, size) for i in range(dout.shape[0]) for j in range(dout.shape[1])]
    show_matrix(x, ax=axes[0], cmap="Blues", highlight=boxes if stride >= size else None, title="input x")
    show_matrix(dout, ax=axes[1], cmap="Oranges", title="upstream gradient")
    m = float(np.max(np.abs(dx))) or 1.0
    show_matrix(dx, ax=axes[2], cmap="RdBu_r", vmin=-m, vmax=m, title="gradient dx")
    if title:
        fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------
# Measurements and training
# ----------------------------------------------------------------------------


def plot_timings(times: Mapping[str, float], ax=None, title: str | None = None, unit: str = "ms"):
    """Horizontal bars on a log scale, one per implementation, labelled with the time and the ratio to the fastest."""
    scale = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]
    names = list(times)
    vals = np.array([times[k] for k in names], dtype=float) * scale
    fig, ax = _new_axes(ax, figsize=(9, 0.7 * len(names) + 1.5))
    ax.barh(names, vals, color=[INPUT_COLOR, KERNEL_COLOR, OUTPUT_COLOR, HILITE_COLOR, "0.5"][: len(names)])
    ax.set_xscale("log")
    ax.invert_yaxis()
    fastest = vals.min()
    for i, v in enumerate(vals):
        ax.text(v * 1.1, i, f"{v:.3g} {unit}  ({v / fastest:.0f}x)", va="center", fontsize=13)
    ax.set_xlim(fastest / 2, vals.max() * 15)
    ax.set_xlabel(f"time per call ({unit}, log scale)")
    if title:
        ax.set_title(title)
    return ax


# The figures of one `make bench` run on the course's build machine, shipped with the package.
BENCHMARK_REFERENCE = Path(__file__).with_name("benchmark_reference.json")
_BENCH_KEYS = ("results", "gemm_gflops", "cases")  # what plot_benchmark needs
_BENCH_BACKENDS = ("naive", "numpy", "cython", "torch", "cuda")
_BENCH_COLORS = {"naive": "0.6", "numpy": INPUT_COLOR, "cython": OUTPUT_COLOR, "torch": KERNEL_COLOR,
                 "cuda": HILITE_COLOR}


def benchmark_figures(*paths: str | Path) -> dict:
    """The figures of a benchmark run (the JSON file bench/conv.py writes).

    The first of ``paths`` that exists is read (say "../bench/results.json", written by
    `make bench` on this machine); when none does, the figures recorded on the course's
    build machine. The result's "source" is the file read and "about" a line saying
    where the figures come from (and which file was passed over, and why).
    """
    passed_over = []
    for path in [*map(Path, paths), BENCHMARK_REFERENCE]:
        if not path.exists():
            continue
        figures = json.loads(path.read_text())
        missing = [key for key in _BENCH_KEYS if key not in figures]
        if missing:  # a file from an older bench/conv.py
            passed_over.append(f"{path} has no {', '.join(map(repr, missing))}: run `make bench` again")
            continue
        figures["source"] = str(path)
        where = figures.get("recorded") or f"`make bench` on this machine ({path})"
        figures["about"] = f"{where}, {figures.get('date', 'undated')}" + "".join(f"; {p}" for p in passed_over)
        return figures
    raise FileNotFoundError(f"no benchmark figures: none of {[str(p) for p in paths]} could be used "
                            f"{passed_over}, and the reference {BENCHMARK_REFERENCE} is missing from this "
                            f"install of cs_utils")


def _bench_bars(ax, figures: Mapping, op: str, cases: Sequence[str], dtype: str,
                value: Callable[[str, dict], float], exclude: Sequence[str] = ()):
    """Grouped bars: one group per case, one bar per backend (but ``exclude``) that has a figure there."""
    results = figures["results"]
    backends = [b for b in _BENCH_BACKENDS
                if b not in exclude and any(f"{op}/{c}/{b}/{dtype}" in results for c in cases)]
    width = 0.8 / max(1, len(backends))
    drawn = []
    for k, backend in enumerate(backends):
        for i, case in enumerate(cases):
            r = results.get(f"{op}/{case}/{backend}/{dtype}")
            if r is None or "error" in r:
                continue
            ax.bar(i + (k - (len(backends) - 1) / 2) * width, value(case, r), width, color=_BENCH_COLORS[backend],
                   hatch="//" if r.get("estimated") else None, edgecolor="white",
                   label=backend if backend not in drawn else None)
            drawn.append(backend)
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([_bench_case_label(c, figures["cases"][c]) for c in cases], fontsize=11)
    return drawn


def _bench_case_label(name: str, case: Mapping) -> str:
    """'B: 64x64x32x32 * 64x3x3' style: the batch, the image and the filters (or the window) of a case."""
    n, c, h, w = case["x"]
    if "w" in case:
        f, _, hh, ww = case["w"]
        return f"{name}: {n} x {c}x{h}x{w}\n{f} filters {hh}x{ww}, s{case['stride']}"
    return f"{name}: {n} x {c}x{h}x{w}\n{case['size']}x{case['size']} window, s{case['stride']}"


def plot_benchmark(figures: Mapping, dtype: str = "float32"):
    """Three panels from a benchmark run (``benchmark_figures``), one bar per backend and case.

    Left: convolution forward+backward time (ms, log scale). Middle: the convolution's
    forward speed as a share of the machine's NumPy matrix-product peak (CPU backends).
    Right: max pooling forward+backward time (ms, log scale). Hatched bars (the naive
    loops) were timed on one image and scaled by the batch size. The case shapes are
    in ``figures["cases"]``.
    """
    for key in _BENCH_KEYS:
        if key not in figures:
            raise ValueError(f"figures: expected the JSON of bench/conv.py with a {key!r} entry; "
                             f"got one with {sorted(figures)}")
    if dtype not in figures["gemm_gflops"]:
        raise ValueError(f"dtype: expected one of {sorted(figures['gemm_gflops'])}; got {dtype!r}")
    cases = figures["cases"]
    conv_cases = [c for c in cases if "w" in cases[c]]
    pool_cases = [c for c in cases if "size" in cases[c]]
    peak = figures["gemm_gflops"][dtype]
    fig, (ax_conv, ax_peak, ax_pool) = _plt().subplots(1, 3, figsize=(13, 4.6),
                                                      gridspec_kw={"width_ratios": [3, 3, 2]})

    from cs_utils.shapes import conv_output_shape

    def flops(case):  # of one forward pass: 2 per multiply-add
        c = cases[case]
        n, f, ho, wo = conv_output_shape(c["x"], c["w"], c["stride"], c["pad"])
        _, ch, hh, ww = c["w"]
        return 2.0 * n * f * ho * wo * ch * hh * ww

    _bench_bars(ax_conv, figures, "conv", conv_cases, dtype, lambda case, r: r["fwdbwd_ms"])
    ax_conv.set_yscale("log")
    ax_conv.set_ylabel("ms per call (log)")
    ax_conv.set_title("conv forward+backward")
    _bench_bars(ax_peak, figures, "conv", conv_cases, dtype,  # the CPU's peak says nothing about a GPU
                lambda case, r: 100 * flops(case) / (r["fwd_ms"] * 1e-3) / 1e9 / peak, exclude=("cuda",))
    ax_peak.axhline(100, color="0.3", linestyle="--", linewidth=1.5)
    ax_peak.text(-0.45, 102, f"NumPy matrix product: {peak:.0f} GFLOP/s", fontsize=11, va="bottom")
    ax_peak.set_ylim(0, 118)
    ax_peak.set_ylabel("% of the matrix-product peak")
    ax_peak.set_title("conv forward, CPU")
    drawn = _bench_bars(ax_pool, figures, "pool", pool_cases, dtype, lambda case, r: r["fwdbwd_ms"])
    ax_pool.set_yscale("log")
    ax_pool.set_title("max pool forward+backward")
    if not drawn:
        ax_pool.set_axis_off()
    handles = {}
    for ax in (ax_conv, ax_peak, ax_pool):
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=len(handles), frameon=False)
    machine = figures.get("machine", {})
    fig.suptitle(f"{dtype}, {machine.get('cpu', '?')} with {machine.get('cores', '?')} cores"
                 + (f", {figures['date']}" if "date" in figures else ""), fontsize=15)
    return fig


def plot_history(history: Mapping[str, Sequence[float]], title: str | None = None, xlabel: str = "epoch",
                 every: int = 1):
    """Training curves: ``loss`` series on the left, every ``*acc*`` series on the right.

    Args:
        history: name -> values, one value per record.
        xlabel: what one record step is ("epoch", "step").
        every: records were taken every ``every`` steps (sets the x positions).
    """
    fig, (axl, axa) = _plt().subplots(1, 2, figsize=(12, 4))
    for key, vals in history.items():
        target = axa if "acc" in key else axl
        target.plot(every * np.arange(1, len(vals) + 1), vals, marker="o", label=key)
    axl.set_ylabel("loss")
    axa.set_ylabel("accuracy")
    for ax in (axl, axa):
        ax.set_xlabel(xlabel)
        if ax.lines:
            ax.legend(frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_layer_profile(names: Sequence[str], memory: Sequence[float], params: Sequence[float],
                       title: str | None = None):
    """Two bar charts over the layers of a network: activation memory and parameters per layer.

    Shows at a glance where a network spends memory (usually the early layers) and where it
    keeps its parameters (usually the late, fully connected ones).
    """
    names = list(names)
    memory, params = np.asarray(memory, dtype=float), np.asarray(params, dtype=float)
    if not len(names) == len(memory) == len(params):
        raise ValueError(f"names, memory and params must have the same length; got {len(names)}, {len(memory)}, {len(params)}")
    fig, (axm, axp) = _plt().subplots(2, 1, figsize=(13, 6.5), sharex=True)
    x = np.arange(len(names))
    axm.bar(x, memory / 1e6, color=INPUT_COLOR)
    axm.set_ylabel("activations (M values)")
    axp.bar(x, params / 1e6, color=KERNEL_COLOR)
    axp.set_ylabel("parameters (M)")
    axp.set_xticks(x)
    axp.set_xticklabels(names, rotation=60, ha="right", fontsize=11)
    for ax, vals in ((axm, memory), (axp, params)):
        share = vals / vals.sum()
        for i in np.argsort(share)[-2:]:
            ax.text(i, vals[i] / 1e6, f"{share[i]:.0%}", ha="center", va="bottom", fontsize=12)
    if title:
        fig.suptitle(title)
    return fig


def html_table(rows: Sequence[Sequence[Any]], header: Sequence[str], caption: str | None = None,
               bold_last: bool = False):
    """Rows as an HTML table (numbers right-aligned with thousands separators) for notebooks and slides.

    Returns:
        an ``IPython.display.HTML`` object (its ``.data`` is the HTML string).
    """
    from html import escape

    from IPython.display import HTML

    def cell(v, tag):
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return f"<{tag} style='text-align:right'>{int(v):,}</{tag}>"
        if isinstance(v, (float, np.floating)):
            return f"<{tag} style='text-align:right'>{float(v):,.3g}</{tag}>"
        return f"<{tag} style='text-align:left'>{escape(str(v))}</{tag}>"

    parts = ["<table style='font-size:15px; border-collapse:collapse'>"]
    if caption:
        parts.append(f"<caption style='caption-side:top; font-weight:bold'>{escape(caption)}</caption>")
    parts.append("<tr>" + "".join(f"<th style='text-align:left'>{escape(str(h))}</th>" for h in header) + "</tr>")
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells but the header has {len(header)}")
        tag = "th" if bold_last and i == len(rows) - 1 else "td"
        parts.append("<tr>" + "".join(cell(v, tag) for v in row) + "</tr>")
    parts.append("</table>")
    return HTML("".join(parts))
