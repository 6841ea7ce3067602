"""The fast Cython path: its kernels, its chunking and its threads.

The layer tests in test_functional_vs_torch.py run the "cython" backend on small
shapes, which take the single-threaded, single-chunk road. Here the thresholds
are lowered so that the same oracles (torch autograd in float64) check the
roads that large layers take: many chunks with a short last one, several
threads sharing them, more threads than cores. The kernels themselves are
checked against NumPy definitions and the adjoint identity.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from numpy.lib.stride_tricks import sliding_window_view

from cs_utils import _fast, functional as F
from cs_utils.im2col import HAVE_CYTHON
from conftest import check_conv_against_torch, torch_grads

pytestmark = pytest.mark.skipif(not HAVE_CYTHON, reason="Cython extension not built")


@pytest.fixture
def ops():
    from cs_utils import _fastops

    return _fastops


@pytest.fixture(params=[200, 2048, 50_000], ids=["bands", "small-chunks", "images"])
def threads_used(request, monkeypatch):
    """Force chunks and threads on small inputs; record how many threads each call used.

    The chunk sizes make the convolution cut images into bands of output rows (200
    bytes), take about one image per chunk, or several images per chunk.
    """
    monkeypatch.setattr(_fast, "PARALLEL_MIN_MACS", 0)
    monkeypatch.setattr(_fast, "CHUNK_BYTES", request.param)
    monkeypatch.setattr(_fast, "POOL_PARALLEL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(_fast, "POOL_CHUNK_ELEMENTS", 64)
    monkeypatch.setattr(_fast._recycler, "min_bytes", 0)  # small arrays recycled too
    monkeypatch.setenv("CS_UTILS_NUM_THREADS", "3")  # more threads than this machine's cores
    used = []
    real_run = _fast._parallel.run

    def spy(chunks, work, worth_it=True, blas=False):
        results = real_run(chunks, work, worth_it, blas)
        used.append(len(results))
        return results

    monkeypatch.setattr(_fast._parallel, "run", spy)
    return used


# (N, C, H, W), (F, HH, WW), stride, pad
CONV_CASES = [
    ((7, 3, 9, 9), (4, 3, 3), 1, 1),
    ((5, 2, 8, 11), (3, 3, 5), 1, 2),  # non-square image and kernel
    ((6, 4, 11, 7), (5, 5, 3), 2, 1),
    ((5, 3, 13, 13), (2, 5, 5), 3, 2),
    ((9, 5, 6, 6), (3, 1, 1), 1, 0),  # 1x1
    ((4, 2, 5, 5), (3, 1, 1), 1, 2),  # padding wider than the kernel: whole fields of zeros
    ((5, 1, 11, 11), (2, 2, 2), 3, 0),  # stride > kernel: inputs no field covers
    ((3, 3, 7, 7), (2, 7, 7), 1, 3),
    ((1, 6, 12, 12), (8, 3, 3), 1, 1),  # one image
    ((11, 3, 4, 4), (2, 3, 3), 1, 0),  # 2x2 outputs: many images per chunk
]


@pytest.mark.parametrize("x_shape, w_spec, stride, pad", CONV_CASES)
def test_chunked_threaded_conv_matches_torch(x_shape, w_spec, stride, pad, threads_used, rng):
    out, dx, dw, _ = check_conv_against_torch(x_shape, w_spec, stride, pad, "cython", rng)
    assert out.flags.c_contiguous and dx.flags.c_contiguous and dw.flags.c_contiguous
    f, hh, ww = w_spec
    n, _, h, w_ = x_shape
    ho, wo = (h + 2 * pad - hh) // stride + 1, (w_ + 2 * pad - ww) // stride + 1
    blocks, _ = _fast._plan(n, ho, wo, x_shape[1] * hh * ww, 8)
    if sum(len(block) for block in blocks) > 1:  # more than one chunk: more than one thread
        assert max(threads_used) > 1, f"the threaded road was not taken: {threads_used}"


def test_float32_agrees_with_float64(threads_used, rng):
    x = rng.standard_normal((6, 8, 12, 12))
    w = rng.standard_normal((5, 8, 3, 3)) * 0.2
    b = rng.standard_normal(5)
    out64, c64 = F.conv_forward(x, w, b, 1, 1, backend="cython")
    out32, c32 = F.conv_forward(*(a.astype(np.float32) for a in (x, w, b)), 1, 1, backend="cython")
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-4)
    dout = rng.standard_normal(out64.shape)
    for g32, g64 in zip(F.conv_backward(dout.astype(np.float32), c32), F.conv_backward(dout, c64)):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-3)


def test_threaded_results_are_reproducible(threads_used, monkeypatch, rng):
    """The filter gradient sums chunk results in a fixed order, whatever thread ran which chunk."""
    x = rng.standard_normal((24, 3, 8, 8))
    w = rng.standard_normal((4, 3, 3, 3))
    out, cache = F.conv_forward(x, w, np.zeros(4), 1, 1, backend="cython")
    dout = rng.standard_normal(out.shape)
    first = F.conv_backward(dout, cache)
    for threads in ("1", "2", "3", "5"):
        monkeypatch.setenv("CS_UTILS_NUM_THREADS", threads)
        for _ in range(3):
            for got, want in zip(F.conv_backward(dout, cache), first):
                np.testing.assert_array_equal(got, want)


def test_threaded_cache_holds_copies(threads_used, rng):
    x = rng.standard_normal((6, 3, 8, 8))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    out, cache = F.conv_forward(x, w, b, 1, 1, backend="cython")
    dout = rng.standard_normal(out.shape)
    expected = F.conv_backward(dout, cache)
    x[...] = 7.0
    w[...] = -3.0
    for got, want in zip(F.conv_backward(dout, cache), expected):
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------
# The recycler: memory of arrays nobody holds is used again, and only that
# ---------------------------------------------------------------------------


@pytest.fixture
def recycler():
    """A recycler of its own (1 KiB and up, at most 64 KiB kept) for a test."""
    return _fast._Recycler(max_bytes=64 << 10, min_bytes=1 << 10)


def _holders():
    """Ways a caller can keep an array alive: the array, a view, a slice, a torch tensor, a memoryview."""
    return {
        "array": lambda a: a,
        "reshaped view": lambda a: a.reshape(-1),
        "slice of a view": lambda a: a[1:][::2].T,
        "torch.from_numpy": torch.from_numpy,
        "memoryview": memoryview,
    }


@pytest.mark.parametrize("holder", list(_holders()))
def test_recycler_never_hands_out_memory_still_held(recycler, holder):
    a = recycler.empty((4, 64), np.float64)
    a[...] = 1.0
    kept = _holders()[holder](a)
    del a
    b = recycler.empty((4, 64), np.float64)
    b[...] = -1.0
    assert np.all(np.asarray(kept) == 1.0), f"memory held through a {holder} was handed out again"


def test_recycler_reuses_memory_nobody_holds(recycler):
    a = recycler.empty((8, 32), np.float32)
    address = a.ctypes.data
    del a
    b = recycler.empty((16, 16), np.float32)  # same size, another shape: the same block
    assert b.ctypes.data == address and b.shape == (16, 16) and b.dtype == np.float32
    assert b.flags.c_contiguous and b.flags.writeable
    c = recycler.empty((8, 32), np.float32)  # b still held: a new block
    assert c.ctypes.data != address
    assert recycler.held_bytes() == 2 * 1024


def test_recycler_stays_within_its_limits(recycler):
    small = recycler.empty((100,), np.uint8)  # under min_bytes: a plain array, not kept
    big = recycler.empty((70 << 10,), np.uint8)  # over max_bytes: a plain array, not kept
    assert small.base is None and big.base is None and recycler.held_bytes() == 0
    held = [recycler.empty((16 << 10,), np.uint8) for _ in range(4)]  # 64 KiB: the limit
    assert recycler.held_bytes() == 64 << 10
    extra = recycler.empty((16 << 10,), np.uint8)  # nothing free to let go: a plain array
    assert extra.base is None and recycler.held_bytes() == 64 << 10
    del held[:2]
    other = recycler.empty((32 << 10,), np.uint8)  # room made by letting go of the two free blocks
    assert other.base is not None and recycler.held_bytes() == 64 << 10
    del other
    assert recycler.release() == 32 << 10 and recycler.held_bytes() == 32 << 10


def test_recycler_without_reference_counts_never_reuses(monkeypatch):
    monkeypatch.delattr(sys, "getrefcount")  # as on PyPy
    recycler = _fast._Recycler(max_bytes=64 << 10, min_bytes=1 << 10)
    a = recycler.empty((4, 64), np.float64)
    assert a.base is None and recycler.held_bytes() == 0


def test_recycled_conv_memory_keeps_earlier_results(monkeypatch, rng):
    """Outputs and caches of earlier calls stay intact while later calls reuse freed memory."""
    monkeypatch.setattr(_fast._recycler, "min_bytes", 0)
    x1, x2 = rng.standard_normal((2, 4, 3, 9, 9))
    w = rng.standard_normal((5, 3, 3, 3))
    b = rng.standard_normal(5)
    out1, cache1 = F.conv_forward(x1, w, b, 1, 1, backend="cython")
    dout = rng.standard_normal(out1.shape)
    ref_out1, ref_grads1 = torch_grads(lambda x, w, b: TF.conv2d(x, w, b, padding=1), (x1, w, b), dout)
    for _ in range(3):  # free memory of its own is reused by every call after the first
        out2, cache2 = F.conv_forward(x2, w, b, 1, 1, backend="cython")
        grads2 = F.conv_backward(dout, cache2)
        del out2, cache2, grads2
    np.testing.assert_allclose(out1, ref_out1, rtol=1e-10, atol=1e-10)
    for got, want in zip(F.conv_backward(dout, cache1), ref_grads1):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_float16_falls_back_to_numpy(rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float16)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float16)
    b = rng.standard_normal(2).astype(np.float16)
    out, cache = F.conv_forward(x, w, b, 1, 1, backend="cython")
    ref, _ = F.conv_forward(x, w, b, 1, 1, backend="numpy")
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, ref)
    dx, dw, db = F.conv_backward(np.ones_like(out), cache)
    assert dx.shape == x.shape and dw.shape == w.shape
    xp = rng.standard_normal((2, 3, 6, 6)).astype(np.float16)
    pooled, pcache = F.max_pool_forward(xp, 2, 2, backend="cython")
    np.testing.assert_array_equal(pooled, F.max_pool_forward(xp, 2, 2, backend="numpy")[0])
    assert F.max_pool_backward(np.ones_like(pooled), pcache).shape == xp.shape


# --------------------------------------------------------------------------
# Pooling on several threads
# --------------------------------------------------------------------------

POOL_CASES = [((5, 3, 8, 8), 2, 2), ((4, 3, 9, 9), 3, 2), ((3, 2, 9, 5), 3, 1), ((3, 2, 8, 8), 2, 3)]


@pytest.mark.parametrize("x_shape, size, stride", POOL_CASES)
def test_threaded_max_pool_matches_torch(x_shape, size, stride, threads_used, rng):
    x = rng.integers(-3, 4, size=x_shape).astype(np.float64)  # small integers: many ties
    out, cache = F.max_pool_forward(x, size, stride, backend="cython")
    dout = rng.standard_normal(out.shape)
    ref_out, (ref_dx,) = torch_grads(lambda x: TF.max_pool2d(x, size, stride), (x,), dout)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_allclose(F.max_pool_backward(dout, cache), ref_dx, rtol=1e-12, atol=1e-12)
    assert max(threads_used) > 1


@pytest.mark.parametrize("x_shape, size, stride", POOL_CASES)
def test_threaded_avg_pool_matches_torch(x_shape, size, stride, threads_used, rng):
    x = rng.standard_normal(x_shape)
    out, cache = F.avg_pool_forward(x, size, stride, backend="cython")
    dout = rng.standard_normal(out.shape)
    ref_out, (ref_dx,) = torch_grads(lambda x: TF.avg_pool2d(x, size, stride), (x,), dout)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.avg_pool_backward(dout, cache), ref_dx, rtol=1e-12, atol=1e-12)
    assert max(threads_used) > 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_nan_wins_its_window_as_in_torch(dtype, rng):
    x = rng.standard_normal((2, 2, 6, 6)).astype(dtype)
    x[0, 0, 1, 1] = np.nan  # window (0, 0)
    x[1, 1, 4, 5] = np.nan  # window (2, 2)
    out, cache = F.max_pool_forward(x, 2, 2, backend="cython")
    xt = torch.tensor(x, requires_grad=True)
    ref = TF.max_pool2d(xt, 2, 2)
    np.testing.assert_array_equal(out, ref.detach().numpy())  # NaN positions agree too
    dout = rng.standard_normal(out.shape).astype(dtype)
    ref.backward(torch.tensor(dout))
    np.testing.assert_allclose(F.max_pool_backward(dout, cache), xt.grad.numpy(), rtol=1e-6)


def test_max_pool_two_nans_in_a_window_like_the_numpy_backend(rng):
    """With two NaNs in one window the first one (row-major) takes the gradient, as np.argmax
    decides in the NumPy backend (torch's CPU kernel happens to pick the last one)."""
    x = rng.standard_normal((1, 1, 4, 4))
    x[0, 0, 2, 3] = x[0, 0, 3, 2] = np.nan
    dout = rng.standard_normal((1, 1, 2, 2))
    got = F.max_pool_backward(dout, F.max_pool_forward(x, 2, 2, backend="cython")[1])
    want = F.max_pool_backward(dout, F.max_pool_forward(x, 2, 2, backend="numpy")[1])
    np.testing.assert_array_equal(got, want)
    assert got[0, 0, 2, 3] == dout[0, 0, 1, 1] and got[0, 0, 3, 2] == 0


# --------------------------------------------------------------------------
# The kernels against NumPy definitions
# --------------------------------------------------------------------------


def _im2row_definition(x, fh, fw, stride, pad):
    """rows[n*P + ho*Wo + wo, (i*fw + j)*C + c] = xpad[n, c, ho*stride + i, wo*stride + j]."""
    n, c = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, (fh, fw), axis=(2, 3))[:, :, ::stride, ::stride]  # (N, C, Ho, Wo, fh, fw)
    return win.transpose(0, 2, 3, 4, 5, 1).reshape(n * win.shape[2] * win.shape[3], fh * fw * c)


KERNEL_CASES = [((2, 3, 7, 7), 3, 3, 1, 1), ((2, 5, 8, 6), 3, 5, 1, 2), ((3, 2, 9, 11), 5, 3, 2, 1),
                ((2, 4, 6, 6), 1, 1, 1, 2), ((1, 3, 15, 15), 11, 11, 4, 0), ((2, 2, 9, 9), 2, 2, 3, 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, fh, fw, stride, pad", KERNEL_CASES)
def test_im2row_and_row2im(ops, dtype, x_shape, fh, fw, stride, pad, rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    n, c, h, w = x_shape
    xh = np.empty((n, h, w, c), dtype=dtype)
    ops.to_channels_last(x, 0, n, xh)
    np.testing.assert_array_equal(xh, x.transpose(0, 2, 3, 1))
    expected = _im2row_definition(x, fh, fw, stride, pad)
    ho = (h + 2 * pad - fh) // stride + 1
    wo = expected.shape[0] // (n * ho)
    rows = np.full(expected.shape, np.nan, dtype=dtype)  # every entry must be written
    ops.im2row(xh, 0, n, 0, ho, fh, fw, stride, pad, rows)
    np.testing.assert_array_equal(rows, expected)
    # a chunk of images 1..n-1, and a band of output rows of the last image
    part = np.full((ho * wo * (n - 1), expected.shape[1]), np.nan, dtype=dtype)
    ops.im2row(xh, 1, n, 0, ho, fh, fw, stride, pad, part)
    np.testing.assert_array_equal(part, expected[ho * wo :])
    h0, h1 = ho // 3, max(ho // 3 + 1, 2 * ho // 3)
    band = np.full(((h1 - h0) * wo, expected.shape[1]), np.nan, dtype=dtype)
    ops.im2row(xh, n - 1, n, h0, h1, fh, fw, stride, pad, band)
    np.testing.assert_array_equal(band, expected[((n - 1) * ho + h0) * wo : ((n - 1) * ho + h1) * wo])
    # row2im is the adjoint of im2row: <im2row(x), r> == <x, row2im(r)>
    r = rng.standard_normal(expected.shape).astype(dtype)
    work = np.empty(h * w * c, dtype=dtype)
    dx = np.full(x.shape, np.nan, dtype=dtype)  # row2im overwrites, np.empty is enough
    ops.row2im(r, 0, n, 0, ho, fh, fw, stride, pad, work, dx)
    lhs = np.vdot(expected.astype(np.float64), r.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), dx.astype(np.float64))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4 if dtype == np.float32 else 1e-10)
    # the same image in bands of one output row, in order through one buffer
    banded = np.full(x.shape, np.nan, dtype=dtype)
    for i in range(n):
        for h0 in range(ho):
            start = (i * ho + h0) * wo
            ops.row2im(np.ascontiguousarray(r[start : start + wo]), i, i + 1, h0, h0 + 1, fh, fw, stride, pad, work, banded)
    np.testing.assert_allclose(banded, dx, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c, hw", [(64, (32, 32)), (3, (31, 31)), (1000, (3, 5)), (9, (1, 1)), (17, (9, 70))])
def test_to_channels_last_and_store(ops, dtype, c, hw, rng):
    x = rng.standard_normal((2, c, *hw)).astype(dtype)
    xh = np.empty((2, *hw, c), dtype=dtype)
    ops.to_channels_last(x, 1, 2, xh)  # image 1 only
    np.testing.assert_array_equal(xh[1], x[1].transpose(1, 2, 0))
    p = hw[0] * hw[1]
    prod = rng.standard_normal((2 * p, c)).astype(dtype)  # (nb*P, F) with F = c
    b = rng.standard_normal(c).astype(dtype)
    out = np.zeros((3, c, p), dtype=dtype)
    ops.store_rows_out(prod, b, out, 1, 0, p)
    np.testing.assert_allclose(out[1:], prod.reshape(2, p, c).transpose(0, 2, 1) + b[:, None], rtol=1e-6)
    assert not out[0].any()
    # a band: pixels p0..p0+mp-1 of image 0
    p0, mp = p // 3, p - p // 3
    band = rng.standard_normal((mp, c)).astype(dtype)
    ops.store_rows_out(band, b, out, 0, p0, mp)
    np.testing.assert_allclose(out[0, :, p0:], band.T + b[:, None], rtol=1e-6)
    assert not out[0, :, :p0].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_channels_last_is_an_exact_copy(ops, dtype, rng):
    """Signed zeros, infinities and denormals come through bit for bit (no arithmetic on the way)."""
    x = rng.standard_normal((1, 21, 6, 7)).astype(dtype)
    x.flat[::5] = -0.0
    x.flat[1::7] = np.inf
    x.flat[2::11] = np.finfo(dtype).smallest_subnormal
    xh = np.empty((1, 6, 7, 21), dtype=dtype)
    ops.to_channels_last(x, 0, 1, xh)
    assert xh.tobytes() == np.ascontiguousarray(x.transpose(0, 2, 3, 1)).tobytes()


PORTABLE_CHECK = """
import numpy as np, sys
sys.path.insert(0, sys.argv[1])
import _fastops as ops
assert ops.__file__.startswith(sys.argv[1]), ops.__file__
rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    for c, h, w in [(64, 8, 8), (3, 31, 31), (17, 9, 7), (5, 1, 1)]:
        x = rng.standard_normal((2, c, h, w)).astype(dtype)
        xh = np.empty((2, h, w, c), dtype=dtype)
        ops.to_channels_last(x, 0, 2, xh)
        assert (xh == x.transpose(0, 2, 3, 1)).all()
        p = h * w
        prod = rng.standard_normal((p, c)).astype(dtype)
        b = rng.standard_normal(c).astype(dtype)
        out = np.zeros((1, c, p), dtype=dtype)
        ops.store_rows_out(prod, b, out, 0, 0, p)
        np.testing.assert_allclose(out[0], prod.T + b[:, None], rtol=1e-6)
print("portable transposes ok")
"""


def test_portable_transposes_without_simd(tmp_path):
    """The plain-C blocks of _transpose.h (ARM and other non-x86 machines), built and checked here.

    The extension is compiled a second time with CS_TRANSPOSE_NO_SIMD into a scratch folder
    and imported from there in a fresh interpreter.
    """
    pyx = Path(_fast.__file__).with_name("_fastops.pyx")
    build = f"""
import sys
from setuptools import Extension, setup
from Cython.Build import cythonize
ext = Extension("_fastops", [{str(pyx)!r}], include_dirs=[{str(pyx.parent)!r}],
                define_macros=[("CS_TRANSPOSE_NO_SIMD", "1")], extra_compile_args=["-O1"])
setup(ext_modules=cythonize([ext], language_level=3, build_dir={str(tmp_path / "c")!r}, quiet=True),
      script_args=["build_ext", "--build-lib", {str(tmp_path / "lib")!r}, "--build-temp", {str(tmp_path / "tmp")!r}])
"""
    done = subprocess.run([sys.executable, "-c", build], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    check = subprocess.run([sys.executable, "-c", PORTABLE_CHECK, str(tmp_path / "lib")],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr[-3000:]
    assert "portable transposes ok" in check.stdout


# --------------------------------------------------------------------------
# Threads: BLAS limits, torch in the same process, fork
# --------------------------------------------------------------------------


def test_respects_a_one_thread_blas_limit(monkeypatch, rng):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(_fast, "PARALLEL_MIN_MACS", 0)
    monkeypatch.delenv("CS_UTILS_NUM_THREADS", raising=False)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert _fast._parallel.threads() == 1


def test_blas_is_held_to_one_thread_inside_matrix_work(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.setenv("CS_UTILS_NUM_THREADS", "2")

    def blas_threads(chunks):
        list(chunks)
        return max(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")

    for worth_it in (False, True):  # on the calling thread alone, and on two threads
        assert set(_fast._parallel.run([1, 2, 3, 4], blas_threads, worth_it, blas=True)) == {1}


def test_blas_thread_count_is_restored(monkeypatch, rng):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(_fast, "PARALLEL_MIN_MACS", 0)
    monkeypatch.setattr(_fast, "CHUNK_BYTES", 2048)
    monkeypatch.setenv("CS_UTILS_NUM_THREADS", "2")
    before = [(i["filepath"], i["num_threads"]) for i in threadpoolctl.threadpool_info()]
    x = rng.standard_normal((4, 3, 8, 8))
    out, cache = F.conv_forward(x, rng.standard_normal((2, 3, 3, 3)), np.zeros(2), 1, 1, backend="cython")
    F.conv_backward(np.ones_like(out), cache)
    assert [(i["filepath"], i["num_threads"]) for i in threadpoolctl.threadpool_info()] == before


def test_an_error_in_one_thread_stops_the_others(monkeypatch):
    monkeypatch.setenv("CS_UTILS_NUM_THREADS", "2")
    done = []

    def work(chunks):
        for i in chunks:
            if i == 3:
                raise KeyboardInterrupt  # what a notebook's stop button raises
            done.append(i)
            time.sleep(0.01)
        return "finished"

    with pytest.raises(KeyboardInterrupt):
        _fast._parallel.run(list(range(200)), work)
    assert len(done) < 20, "the other thread went on through the whole batch"
    results = _fast._parallel.run(list(range(10)), lambda chunks: list(chunks))  # and it still works
    assert len(results) == 2 and sorted(i for r in results for i in r) == list(range(10))


def _run_script(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="error")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.parametrize("torch_first", [True, False])
def test_torch_and_cython_threads_in_one_process(torch_first):
    """torch's OpenMP pool and our threads take turns without a crash, a hang or a warning."""
    imports = ["import torch", "from cs_utils import functional as F"]
    code = "\n".join(imports if torch_first else imports[::-1]) + """
import threading
import numpy as np
import torch.nn.functional as TF
threads_before = torch.get_num_threads()
rng = np.random.default_rng(0)
x = rng.standard_normal((16, 32, 16, 16)).astype(np.float32)
w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
b = rng.standard_normal(32).astype(np.float32)
ref = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=1).numpy()
def run():
    for _ in range(3):
        out, cache = F.conv_forward(x, w, b, 1, 1, backend="cython")
        F.conv_backward(np.ones_like(out), cache)
        F.max_pool_backward(np.ones((16, 32, 8, 8), np.float32), F.max_pool_forward(x, 2, 2, backend="cython")[1])
        TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1)
        assert np.allclose(out, ref, atol=1e-3), abs(out - ref).max()
run()
side = threading.Thread(target=run)  # a second caller at the same time
side.start(); run(); side.join()
assert torch.get_num_threads() == threads_before
print("ok")
"""
    proc = _run_script(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok" and proc.stderr == ""


def test_forked_child_can_use_the_threads():
    code = """
    import multiprocessing as mp
    import numpy as np
    from cs_utils import functional as F

    x = np.random.default_rng(0).standard_normal((16, 16, 16, 16)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((16, 16, 3, 3)).astype(np.float32)

    def job(_):
        out, cache = F.conv_forward(x, w, np.zeros(16, np.float32), 1, 1, backend="cython")
        return float(F.conv_backward(np.ones_like(out), cache)[1].sum())

    parent = job(0)  # starts the thread pool in the parent
    with mp.get_context("fork").Pool(2) as pool:
        child = pool.map(job, range(2))
    assert np.allclose(child, parent), (child, parent)
    print("ok")
    """
    proc = _run_script(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
