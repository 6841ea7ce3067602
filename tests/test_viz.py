"""cs_utils.viz: figures build under Agg, widgets react to their controls, text helpers say the right thing.

Oracles: the seed's hand-worked 3x4 example, NumPy slicing and sums written out here,
cs_utils.shapes for the output-size arithmetic.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cs_utils import viz  # noqa: E402
from conftest import load_bench_conv  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


X34 = np.arange(12, dtype=float).reshape(3, 4)
K22 = np.array([[1.0, 0.0], [0.0, -1.0]])


# ----------------------------------------------------------------------------- style


def test_lecture_style_sets_large_fonts_and_rejects_unknown_formats():
    viz.use_lecture_style()
    assert matplotlib.rcParams["font.size"] >= 14 and matplotlib.rcParams["savefig.dpi"] >= 150
    with pytest.raises(ValueError, match="fmt"):
        viz.use_lecture_style(fmt="gif")


# ----------------------------------------------------------------------------- matrices


def test_show_matrix_writes_every_value_and_outlines_boxes():
    ax = viz.show_matrix(X34, highlight=[(0, 0, 2, 2), (1, 2, 2, 2)])
    assert sorted(t.get_text() for t in ax.texts) == sorted(str(v) for v in range(12))
    assert len(ax.patches) == 2
    with pytest.raises(ValueError, match="2-D"):
        viz.show_matrix(np.zeros(3))


def test_show_matrix_white_text_on_dark_cells():
    ax = viz.show_matrix(np.array([[0.0, 1.0]]), cmap="Blues")
    colours = {t.get_text(): t.get_color() for t in ax.texts}
    assert colours == {"0": "black", "1": "white"}


def test_plot_kernel_is_centred_on_zero():
    ax = viz.plot_kernel(np.array([[1.0, -3.0], [0.5, 2.0]]))
    assert ax.images[0].get_clim() == (-3.0, 3.0)


def test_show_images_and_feature_maps():
    fig = viz.show_images([np.zeros((4, 4)), np.ones((4, 4, 3))], titles=["a", "b"], ncols=2)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["a", "b"]
    with pytest.raises(ValueError, match="titles"):
        viz.show_images([np.zeros((2, 2))], titles=["a", "b"])
    fig = viz.show_feature_maps(np.random.default_rng(0).random((5, 6, 6)), ncols=3)
    assert sum(1 for ax in fig.axes if ax.images) == 5
    with pytest.raises(ValueError, match="C, H, W"):
        viz.show_feature_maps(np.zeros((6, 6)))


# ----------------------------------------------------------------------------- symbols and text


def test_symbolic_conv2d_reproduces_the_seed_table():
    letters = np.array(list("abcdefghijkl")).reshape(3, 4)
    terms = viz.symbolic_conv2d(letters, np.array(list("wxyz")).reshape(2, 2))
    got = [[viz.format_terms(t) for t in row] for row in terms]
    assert got == [["aw + bx + ey + fz", "bw + cx + fy + gz", "cw + dx + gy + hz"],
                   ["ew + fx + iy + jz", "fw + gx + jy + kz", "gw + hx + ky + lz"]]


def test_symbolic_conv2d_with_stride_and_bad_stride():
    terms = viz.symbolic_conv2d(np.array(list("abcdefghijklmno")).reshape(3, 5), np.array([["w"]]), stride=2)
    assert [[viz.format_terms(t) for t in row] for row in terms] == [["aw", "cw", "ew"], ["kw", "mw", "ow"]]
    with pytest.raises(ValueError, match="not an integer"):
        viz.symbolic_conv2d(np.array(list("abcdefghijkl")).reshape(3, 4), np.array([["w"]]), stride=2)


def test_latex_helpers():
    assert viz.latex_matrix([[1, 2], [3, 4]]) == r"\begin{bmatrix} 1 & 2 \\ 3 & 4 \end{bmatrix}"
    assert viz.latex_kernel(np.ones((3, 3)) / 9).startswith(r"\frac{1}{9} \begin{bmatrix} 1 & 1 & 1")
    assert viz.latex_kernel(np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16).startswith(r"\frac{1}{16}")
    assert viz.latex_kernel(np.eye(2)).startswith(r"\begin{bmatrix}")


def test_dot_product_text_matches_numpy():
    text = viz.dot_product_text(X34, K22, 1, 2)
    window = X34[1:3, 2:4]
    assert text == "6·1 + 7·0 + 10·0 + 11·-1 = " + f"{np.sum(window * K22):.0f}"
    with pytest.raises(ValueError, match="outside"):
        viz.dot_product_text(X34, K22, 2, 0)


def test_output_size_text():
    assert viz.output_size_text(7, 3, 2, 0) == "(7 - 3 + 2*0)/2 + 1 = 3"
    assert viz.output_size_text(32, 5, 1, 2) == "(32 - 5 + 2*2)/1 + 1 = 32"
    bad = viz.output_size_text(7, 3, 3, 0)
    assert bad.startswith("does not fit") and "2.33" in bad


# ----------------------------------------------------------------------------- static figures


def test_sliding_window_figure_fills_the_output_up_to_the_position():
    fig = viz.sliding_window_figure(X34, K22, position=4)
    out_ax = fig.axes[2]
    written = [t.get_text() for t in out_ax.texts]
    expected = [X34[r:r + 2, c:c + 2].ravel() @ K22.ravel() for r in range(2) for c in range(3)][:5]
    assert written == [f"{v:.0f}" for v in expected]
    assert "output[1, 1]" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="position"):
        viz.sliding_window_figure(X34, K22, position=6)


def test_output_size_figure_draws_one_bar_per_output():
    fig = viz.output_size_figure(7, 3, stride=2, pad=1)
    ax = fig.axes[0]
    assert len(ax.lines) == 4 and ax.get_title() == "(7 - 3 + 2*1)/2 + 1 = 4"
    fig = viz.output_size_figure(7, 3, stride=3, pad=0)   # 2 placements fit, a third runs off the edge
    assert len(fig.axes[0].lines) == 3 and "2.33" in fig.axes[0].get_title()


def test_im2col_figure_columns_are_the_windows():
    x = np.arange(16, dtype=float).reshape(1, 4, 4)
    fig = viz.im2col_figure(x, 2, 2, stride=2, highlight=3)
    col_ax = fig.axes[-1]
    labels = np.array([t.get_text() for t in col_ax.texts]).reshape(4, 4)  # rows of the 4x4 column matrix
    letters = np.array(list("abcdefghijklmnop")).reshape(4, 4)
    for col, (r, c) in enumerate([(0, 0), (0, 2), (2, 0), (2, 2)]):
        assert labels[:, col].tolist() == letters[r:r + 2, c:c + 2].ravel().tolist()
    with pytest.raises(ValueError, match="C, H, W"):
        viz.im2col_figure(np.zeros((4, 4)), 2, 2)


def test_other_static_figures_build():
    truth = np.linspace(0, 1, 30)
    assert viz.plot_smoothing(truth + 0.1, {"smoothed": (np.arange(30), truth)}, truth=truth).lines
    assert viz.smoothing_figure(truth + 0.1, truth, viz.kernel_1d("box", 5)).axes
    assert viz.plot_sequence_steps(np.arange(8.0), np.ones(3) / 3, np.arange(6.0), step=2).axes
    assert viz.connectivity_figure(n=5, k=3).axes[1].get_title().endswith("3 distinct weights")
    kernels = {"id": np.pad([[1.0]], 1), "edge": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float)}
    assert len(viz.kernel_gallery_figure(np.random.default_rng(0).random((20, 16)), kernels, ncols=2).axes) >= 2
    x4 = np.array([[1, 4, 2, 1], [5, 8, 3, 4], [7, 6, 4, 5], [1, 3, 1, 2]], float)
    assert len(viz.pool_backward_figure(x4, np.ones((2, 2)), np.zeros((4, 4))).axes) == 3
    ax = viz.plot_timings({"naive": 1.0, "fast": 0.01})
    assert "100x" in " ".join(t.get_text() for t in ax.texts)
    fig = viz.plot_history({"loss": [2, 1, 0.5], "test acc": [0.3, 0.6, 0.9]}, xlabel="step", every=10)
    assert fig.axes[1].lines[0].get_xdata().tolist() == [10, 20, 30]
    fig = viz.plot_layer_profile(["a", "b", "c"], [5, 1, 1], [0, 1, 9])
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="same length"):
        viz.plot_layer_profile(["a"], [1, 2], [1])


def test_kernel_1d():
    for kind in ("box", "triangle", "gaussian", "recent-weighted"):
        w = viz.kernel_1d(kind, 5)
        assert w.shape == (5,) and np.isclose(w.sum(), 1.0)
    assert np.all(np.diff(viz.kernel_1d("recent-weighted", 5)) > 0)
    assert viz.kernel_1d("difference", 3).tolist() == [-1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="kind"):
        viz.kernel_1d("sawtooth", 3)


def test_html_table():
    html = viz.html_table([["conv1", 34944, 0.5]], header=["layer", "params", "x"]).data
    assert "34,944" in html and "conv1" in html and "<th" in html
    with pytest.raises(ValueError, match="row 0"):
        viz.html_table([[1, 2]], header=["a"])


# ----------------------------------------------------------------------------- widgets


def test_output_size_widget_reacts_to_its_sliders():
    w = viz.output_size_widget(n=7, f=3, stride=1, pad=0)
    assert "= 5" in w.readout.value
    png_before = w.output.value
    w.controls["stride"].value = 2
    assert "(7 - 3 + 2*0)/2 + 1 = 3" in w.readout.value
    assert w.output.value != png_before and w.output.value[:4] == b"\x89PNG"
    w.controls["stride"].value = 3
    assert "does not fit" in w.readout.value
    w.controls["f"].value = 9          # wider than the input: text only, no crash
    assert "larger than the padded input" in w.readout.value


def test_sliding_kernel_widget_shows_each_dot_product():
    w = viz.sliding_kernel_widget(X34, K22)
    assert w.controls["position"].max == 5
    w.controls["position"].value = 5
    assert "output[1, 2] = " + viz.dot_product_text(X34, K22, 1, 2) in w.readout.value


def test_kernel_widgets_update():
    truth = np.linspace(0, 1, 40)
    w = viz.kernel_1d_widget(truth + 0.05, truth, kind="box", width=4)
    assert "0.250, 0.250, 0.250, 0.250" in w.readout.value
    w.controls["kind"].value = "difference"
    assert "sum = 0.000" in w.readout.value
    g = viz.kernel_gallery_widget(np.random.default_rng(0).random((12, 12)),
                                  {"box": np.ones((3, 3)) / 9, "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0.]])})
    before = g.output.value
    g.controls["kernel"].value = "sharpen"
    assert "sharpen" in g.readout.value and g.output.value != before


def test_widget_plain_text_fallback_explains_itself():
    w = viz.output_size_widget()
    bundle = w._repr_mimebundle_()
    assert "interactive demo" in bundle["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" in bundle


# ----------------------------------------------------------------------------- benchmark figures


def _bar_heights(ax):
    return sorted(round(p.get_height(), 6) for p in ax.patches)


def test_plot_benchmark_draws_the_recorded_figures():
    figures = viz.benchmark_figures()  # the reference shipped with cs_utils
    assert figures["source"].endswith("benchmark_reference.json")
    bench = load_bench_conv()  # the benchmark's own FLOP count is the oracle for the share of peak
    results, peak = figures["results"], figures["gemm_gflops"]["float32"]
    fig = viz.plot_benchmark(figures)
    ax_conv, ax_peak, ax_pool = fig.axes[:3]
    conv = [k for k in results if k.startswith("conv/") and k.endswith("/float32")]
    assert _bar_heights(ax_conv) == sorted(round(results[k]["fwdbwd_ms"], 6) for k in conv)
    shares = [100 * bench.conv_flops(bench.CONV_CASES[k.split("/")[1]]) / (results[k]["fwd_ms"] * 1e-3) / 1e9 / peak
              for k in conv]
    assert sorted(p.get_height() for p in ax_peak.patches) == pytest.approx(sorted(shares))
    pool = [k for k in results if k.startswith("pool/") and k.endswith("/float32")]
    assert _bar_heights(ax_pool) == sorted(round(results[k]["fwdbwd_ms"], 6) for k in pool)
    hatched = [p for p in ax_conv.patches if p.get_hatch()]
    assert len(hatched) == sum(bool(results[k]["estimated"]) for k in conv) > 0  # the naive loops
    assert "B: 64 x 64x32x32" in " ".join(t.get_text() for t in ax_conv.get_xticklabels())
    assert f"{peak:.0f} GFLOP/s" in " ".join(t.get_text() for t in ax_peak.texts)


def test_plot_benchmark_shows_a_gpu_column_but_not_its_share_of_the_cpu_peak():
    figures = viz.benchmark_figures()
    cuda = {"estimated": False, "fwd_ms": 0.5, "fwd_best_ms": 0.4, "fwdbwd_ms": 1.5, "fwdbwd_best_ms": 1.4,
            "fwdbwd_peak_mib": 30.0}
    figures["results"]["conv/B/cuda/float32"] = dict(cuda)
    figures["results"]["pool/P2/cuda/float32"] = dict(cuda)
    figures["results"]["conv/A/cython/float32"] = {"error": "RuntimeError: out of memory"}
    without = viz.benchmark_figures()
    fig = viz.plot_benchmark(figures)
    before = viz.plot_benchmark(without)
    n_conv = len(before.axes[0].patches)
    assert len(fig.axes[0].patches) == n_conv  # one cuda bar in, one failed measurement out
    assert 1.5 in _bar_heights(fig.axes[0]) and 1.5 in _bar_heights(fig.axes[2])
    assert len(fig.axes[1].patches) == len(before.axes[1].patches) - 1  # no cuda share; cython A failed
    assert "cuda" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_benchmark_figures_reads_the_first_file_that_exists(tmp_path):
    mine = tmp_path / "results.json"
    mine.write_text('{"results": {}, "gemm_gflops": {"float32": 1.0}, "cases": {}}')
    old = tmp_path / "old.json"
    old.write_text('{"results": {}, "gemm_gflops": {"float32": 1.0}}')  # before the bench recorded its cases
    figures = viz.benchmark_figures(tmp_path / "missing.json", old, mine)
    assert figures["source"] == str(mine) and figures["results"] == {}
    assert f"{old} has no 'cases'" in figures["about"] and "make bench" in figures["about"]
    assert viz.benchmark_figures(old)["source"] == str(viz.BENCHMARK_REFERENCE)
    with pytest.raises(ValueError, match="float16"):
        viz.plot_benchmark(figures, dtype="float16")
    with pytest.raises(ValueError, match="'cases'"):
        viz.plot_benchmark({"results": {}, "gemm_gflops": {}})


def test_benchmark_reference_ships_with_the_package():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["cs_utils"]
    assert any(viz.BENCHMARK_REFERENCE.match(p) for p in patterns), patterns
    assert viz.BENCHMARK_REFERENCE.parent.name == "cs_utils"
