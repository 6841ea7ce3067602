"""im2col/col2im against an explicit loop, adjointness, and Cython vs NumPy fallback."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from cs_utils import functional as F
from cs_utils.im2col import HAVE_CYTHON, col2im, im2col
from conftest import FAST_BACKENDS

CASES = [
    ((2, 3, 5, 5), 3, 3, 1, 1),
    ((1, 2, 7, 6), 3, 5, 1, 2),
    ((2, 1, 7, 7), 3, 3, 2, 0),
    ((3, 2, 9, 8), 2, 1, 1, 0),
    ((1, 4, 4, 4), 1, 1, 1, 0),
    ((2, 3, 10, 10), 4, 4, 3, 0),
]


def loop_im2col(x, fh, fw, stride, pad):
    """The definition, written as directly as possible (the oracle)."""
    n_, c_, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho = (h + 2 * pad - fh) // stride + 1
    wo = (w + 2 * pad - fw) // stride + 1
    cols = np.zeros((c_ * fh * fw, n_ * ho * wo))
    for n in range(n_):
        for a in range(ho):
            for b in range(wo):
                patch = xp[n, :, a * stride : a * stride + fh, b * stride : b * stride + fw]
                cols[:, n * ho * wo + a * wo + b] = patch.reshape(-1)  # row = c*fh*fw + i*fw + j
    return cols


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("x_shape, fh, fw, stride, pad", CASES)
def test_im2col_matches_definition(backend, x_shape, fh, fw, stride, pad, rng):
    x = rng.standard_normal(x_shape)
    np.testing.assert_array_equal(im2col(x, fh, fw, stride, pad, backend=backend), loop_im2col(x, fh, fw, stride, pad))


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("x_shape, fh, fw, stride, pad", CASES)
def test_col2im_is_the_adjoint(backend, x_shape, fh, fw, stride, pad, rng):
    # <im2col(x), c> == <x, col2im(c)> for all x, c: col2im sums overlapping patches.
    x = rng.standard_normal(x_shape)
    cols = rng.standard_normal(loop_im2col(x, fh, fw, stride, pad).shape)
    lhs = np.sum(loop_im2col(x, fh, fw, stride, pad) * cols)
    rhs = np.sum(x * col2im(cols, x_shape, fh, fw, stride, pad, backend=backend))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_col2im_counts_overlaps():
    # A 3x3 window at stride 1 over a 4x4 image: the centre pixels sit in 4 windows, corners in 1.
    cols = np.ones((9, 4))
    counts = col2im(cols, (1, 1, 4, 4), 3, 3, 1, 0)[0, 0]
    np.testing.assert_array_equal(counts, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cython_and_numpy_agree(dtype, rng):
    if not HAVE_CYTHON:
        pytest.skip("Cython extension not built")
    x = rng.standard_normal((3, 4, 11, 9)).astype(dtype)
    a = im2col(x, 3, 5, 2, 1, backend="cython")
    b = im2col(x, 3, 5, 2, 1, backend="numpy")
    assert a.dtype == b.dtype == dtype
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(
        col2im(a, x.shape, 3, 5, 2, 1, backend="cython"), col2im(b, x.shape, 3, 5, 2, 1, backend="numpy"), rtol=1e-6
    )


def test_torch_tensor_in_tensor_out(rng):
    x = torch.tensor(rng.standard_normal((2, 3, 6, 6)))
    cols = im2col(x, 3, 3, 1, 1)
    assert isinstance(cols, torch.Tensor)
    np.testing.assert_allclose(cols.numpy(), loop_im2col(x.numpy(), 3, 3, 1, 1))


def test_make_test_built_the_extension():
    # `make test` builds the extension first; if this fails, the Cython path was silently lost.
    if os.environ.get("CS_UTILS_NO_CYTHON"):
        pytest.skip("fallback forced by CS_UTILS_NO_CYTHON")
    assert HAVE_CYTHON, "cs_utils._fastops is not importable: run `make setup` (needs Cython and a C compiler)"


FALLBACK_SCRIPT = """
import numpy as np, torch, torch.nn.functional as TF
from cs_utils import functional as F
from cs_utils.im2col import HAVE_CYTHON
from cs_utils._backend import resolve_backend
assert HAVE_CYTHON is False
assert resolve_backend("auto", np.zeros(1)) == "numpy"
try:
    F.conv_forward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)), np.zeros(1), backend="cython")
except RuntimeError as e:
    assert "not built" in str(e)
else:
    raise AssertionError("backend='cython' without the extension must raise")
rng = np.random.default_rng(0)
x, w, b = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
out, cache = F.conv_forward(x, w, b, 2, 1)
ref = TF.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=2, padding=1).numpy()
assert np.allclose(out, ref)
pooled, pc = F.max_pool_forward(x, 3, 2)
assert np.allclose(pooled, TF.max_pool2d(torch.tensor(x), 3, 2).numpy())
print("fallback ok")
"""


def test_numpy_fallback_when_extension_is_missing():
    env = dict(os.environ, CS_UTILS_NO_CYTHON="1")
    result = subprocess.run([sys.executable, "-c", FALLBACK_SCRIPT], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "fallback ok" in result.stdout
