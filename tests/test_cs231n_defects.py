"""The defects measured in CS231n's fast layers, each shown absent here."""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from cs_utils import functional as F
from conftest import BACKENDS, torch_grads

ROOT = Path(__file__).resolve().parents[1]


def test_extension_is_built_with_cython_3():
    import Cython

    assert int(Cython.__version__.split(".")[0]) >= 3
    from cs_utils.im2col import HAVE_CYTHON

    assert HAVE_CYTHON


def test_build_does_not_need_distutils():
    # distutils is gone in Python 3.12; the build goes through setuptools only.
    for name in ("setup.py", "pyproject.toml"):
        assert "distutils" not in (ROOT / name).read_text().replace("without distutils", "")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("hh, ww", [(3, 5), (5, 3), (1, 4), (4, 2)])
def test_non_square_kernels(backend, hh, ww, rng):
    x = rng.standard_normal((2, 3, 9, 10))
    w = rng.standard_normal((4, 3, hh, ww))
    b = rng.standard_normal(4)
    out, cache = F.conv_forward(x, w, b, 1, 1, backend=backend)
    dout = rng.standard_normal(out.shape)
    ref, grads = torch_grads(lambda x, w, b: TF.conv2d(x, w, b, padding=1), (x, w, b), dout)
    np.testing.assert_allclose(out, ref, atol=1e-10)
    for g, r in zip(F.conv_backward(dout, cache), grads):
        np.testing.assert_allclose(g, r, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_overlapping_pool_3x3_stride_2(backend, rng):
    x = rng.standard_normal((2, 4, 9, 9))
    out, cache = F.max_pool_forward(x, 3, 2, backend=backend)
    dout = rng.standard_normal(out.shape)
    ref, (ref_dx,) = torch_grads(lambda t: TF.max_pool2d(t, 3, 2), (x,), dout)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_allclose(F.max_pool_backward(dout, cache), ref_dx, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stride_that_does_not_fit_is_a_teaching_error(backend):
    with pytest.raises(ValueError, match=r"\(10 - 3 \+ 2\*1\)/2 \+ 1 = 5\.50 is not an integer"):
        F.conv_forward(np.zeros((1, 1, 10, 10)), np.zeros((1, 1, 3, 3)), np.zeros(1), 2, 1, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_warnings(backend, dtype, rng):
    # Under nbgrader any stderr output in a test cell scores zero.
    x = rng.standard_normal((2, 3, 6, 6)).astype(dtype)
    w = rng.standard_normal((2, 3, 3, 3)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, cache = F.conv_forward(x, w, np.zeros(2, dtype=dtype), 1, 1, backend=backend)
        F.conv_backward(np.ones_like(out), cache)
        for fwd, bwd in ((F.max_pool_forward, F.max_pool_backward), (F.avg_pool_forward, F.avg_pool_backward)):
            p, c = fwd(x, 3, 1, backend=backend)
            bwd(np.ones_like(p), c)


def test_nothing_on_stderr():
    script = (
        "import numpy as np; from cs_utils import functional as F\n"
        "for be in ['naive', 'numpy', 'cython', 'torch']:\n"
        "    x = np.random.rand(2, 3, 8, 8).astype(np.float32)\n"
        "    o, c = F.conv_forward(x, np.random.rand(4, 3, 3, 3).astype(np.float32), np.zeros(4, np.float32), 1, 1, backend=be)\n"
        "    F.conv_backward(o, c)\n"
        "    p, c = F.max_pool_forward(x, 2, 2, backend=be); F.max_pool_backward(p, c)\n"
    )
    result = subprocess.run([sys.executable, "-W", "default", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("backend", BACKENDS)
def test_changing_inputs_after_forward_does_not_change_backward(backend, rng):
    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    dout = rng.standard_normal((2, 4, 6, 6))
    _, clean_cache = F.conv_forward(x.copy(), w.copy(), b.copy(), 1, 1, backend=backend)
    expected = F.conv_backward(dout, clean_cache)

    out, cache = F.conv_forward(x, w, b, 1, 1, backend=backend)
    x += 100.0  # e.g. an in-place update between forward and backward
    w *= -3.0
    for got, exp in zip(F.conv_backward(dout, cache), expected):
        np.testing.assert_array_equal(got, exp)

    xp = rng.standard_normal((1, 2, 6, 6))
    _, pc = F.max_pool_forward(xp, 2, 2, backend=backend)
    expected_dx = F.max_pool_backward(np.ones((1, 2, 3, 3)), pc)
    _, pc2 = F.max_pool_forward(xp, 2, 2, backend=backend)
    xp[...] = rng.standard_normal(xp.shape)
    np.testing.assert_array_equal(F.max_pool_backward(np.ones((1, 2, 3, 3)), pc2), expected_dx)


def test_changing_tensor_inputs_after_forward_does_not_change_backward(rng):
    x = torch.tensor(rng.standard_normal((1, 2, 5, 5)))
    w = torch.tensor(rng.standard_normal((3, 2, 3, 3)))
    b = torch.zeros(3, dtype=torch.float64)
    out, cache = F.conv_forward(x, w, b, 1, 1, backend="torch")
    expected = [g.clone() for g in F.conv_backward(torch.ones_like(out), cache)]
    out, cache = F.conv_forward(x, w, b, 1, 1, backend="torch")
    x.add_(5.0)
    w.mul_(2.0)
    for got, exp in zip(F.conv_backward(torch.ones_like(out), cache), expected):
        assert torch.equal(got, exp)
