"""Property-based tests: hypothesis draws valid hyper-parameters; torch is the oracle."""

import numpy as np
import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cs_utils import functional as F
from cs_utils.im2col import HAVE_CYTHON
from cs_utils.shapes import conv_output_size
from conftest import torch_grads

BACKEND_NAMES = ["naive", "numpy", "torch"] + (["cython"] if HAVE_CYTHON else [])
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def conv_problems(draw):
    """A convolution whose filter and stride fit: H = (Ho - 1)*S + HH - 2P for drawn Ho."""
    stride = draw(st.integers(1, 3))
    hh, ww = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    pad = draw(st.integers(0, min(hh, ww) - 1 if min(hh, ww) > 1 else 0))
    ho, wo = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h = (ho - 1) * stride + hh - 2 * pad
    w = (wo - 1) * stride + ww - 2 * pad
    if h < 1 or w < 1:
        h, w, pad = (ho - 1) * stride + hh, (wo - 1) * stride + ww, 0
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    backend = draw(st.sampled_from(BACKEND_NAMES))
    return (n, c, h, w), (f, c, hh, ww), stride, pad, seed, backend


@SETTINGS
@given(conv_problems())
def test_conv_matches_torch(problem):
    x_shape, w_shape, stride, pad, seed, backend = problem
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    out, cache = F.conv_forward(x, w, b, stride, pad, backend=backend)
    assert out.shape[2] == conv_output_size(x_shape[2], w_shape[2], stride, pad)
    dout = rng.standard_normal(out.shape)
    ref, grads = torch_grads(lambda x, w, b: TF.conv2d(x, w, b, stride=stride, padding=pad), (x, w, b), dout)
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9)
    for g, r in zip(F.conv_backward(dout, cache), grads):
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-9)


@st.composite
def pool_problems(draw):
    size, stride = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ho, wo = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), (ho - 1) * stride + size, (wo - 1) * stride + size)
    return shape, size, stride, draw(st.integers(0, 2**31 - 1)), draw(st.sampled_from(BACKEND_NAMES)), draw(st.booleans())


@SETTINGS
@given(pool_problems())
def test_pooling_matches_torch(problem):
    shape, size, stride, seed, backend, with_ties = problem
    rng = np.random.default_rng(seed)
    # with_ties: small integers make equal maxima common, exercising the tie rule
    x = rng.integers(0, 3, shape).astype(np.float64) if with_ties else rng.standard_normal(shape)
    for ours_f, ours_b, theirs in (
        (F.max_pool_forward, F.max_pool_backward, TF.max_pool2d),
        (F.avg_pool_forward, F.avg_pool_backward, TF.avg_pool2d),
    ):
        out, cache = ours_f(x, size, stride, backend=backend)
        dout = rng.standard_normal(out.shape)
        ref, (ref_dx,) = torch_grads(lambda t: theirs(t, size, stride), (x,), dout)
        np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ours_b(dout, cache), ref_dx, rtol=1e-10, atol=1e-12)


@SETTINGS
@given(st.integers(1, 20), st.integers(1, 6), st.integers(1, 3), st.integers(0, 3), st.integers(0, 2**31 - 1))
def test_conv1d_matches_torch(length, k, stride, pad, seed):
    if k > length + 2 * pad or (length - k + 2 * pad) % stride:
        return  # not a valid problem; the error cases are tested in test_bad_input.py
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(length), rng.standard_normal(k)
    ref = TF.conv1d(torch.tensor(x)[None, None], torch.tensor(w)[None, None], stride=stride, padding=pad)[0, 0]
    np.testing.assert_allclose(F.conv1d(x, w, stride, pad), ref.numpy(), rtol=1e-10, atol=1e-12)
