"""Fuzzing the public cs_utils functions with malformed input.

Each test starts from a valid call, lets hypothesis break one or two things
(wrong number of dimensions, wrong dtype, NaN/inf, empty axes, huge or
non-integer hyper-parameters, non-contiguous memory, lists, tensors on another
device) and accepts exactly two outcomes:

- the documented ``ValueError`` / ``TypeError``, or
- a result of the shape the output-size formula predicts (written out here,
  independently of cs_utils.shapes).

Anything else (IndexError, AttributeError, a Cython or torch RuntimeError, a
result of another shape) fails the test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cs_utils import functional as F
from cs_utils import gradcheck, shapes
from cs_utils.im2col import HAVE_CYTHON, col2im, im2col

BACKENDS = ["auto", "naive", "numpy", "torch"] + (["cython"] if HAVE_CYTHON else [])
DOCUMENTED = (ValueError, TypeError)
# NaN and inf inputs make NumPy warn ("invalid value encountered"): expected here.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

DTYPES = ["float64", "float32", "float16", "int64", "int8", "uint8", "bool", "complex128", "object"]
HYPER = st.one_of(
    st.integers(-3, 6),
    st.sampled_from([2**31, 10**12, 10**40, 1.5, 2.0, "2", None, True]),
)


def _mutate_array(draw, a: np.ndarray):
    """One way of breaking (or keeping) an array."""
    how = draw(st.sampled_from(
        ["keep", "dtype", "nan", "inf", "ndim+", "ndim-", "empty", "strided", "transposed", "list", "torch", "meta", "scalar"]
    ))
    if how == "dtype":
        dt = draw(st.sampled_from(DTYPES))
        return a.astype(dt) if dt != "object" else a.astype(object)
    if how in ("nan", "inf") and a.size:
        a = a.astype(np.float64)  # (a copy; NaN needs a floating dtype)
        a.flat[draw(st.integers(0, a.size - 1))] = np.nan if how == "nan" else -np.inf
        return a
    if how == "ndim+":
        return a[None]
    if how == "ndim-" and a.ndim:
        return a[0]
    if how == "empty" and a.ndim:
        axis = draw(st.integers(0, a.ndim - 1))
        return np.take(a, [], axis=axis)
    if how == "strided" and a.ndim:
        # same shape, every other element of a twice-as-large buffer: not contiguous
        big = np.repeat(a, 2, axis=-1)
        return big[..., ::2]
    if how == "transposed" and a.ndim >= 2:
        return np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)  # Fortran-like strides
    if how == "list":
        return a.tolist()
    if how == "torch":
        return torch.from_numpy(np.ascontiguousarray(a))
    if how == "meta":
        return torch.empty(a.shape, dtype=torch.float64, device="meta")
    if how == "scalar":
        return 3.0
    return a


def _shape(a):
    return tuple(int(s) for s in a.shape)


def _run(call):
    """Call; return the result, or None after one of the documented exceptions."""
    try:
        return call()
    except DOCUMENTED:
        return None


def _conv_out(n, f, s, p):
    span = n + 2 * p - f
    assert span >= 0 and span % s == 0, "a call that should have been refused returned a result"
    return span // s + 1


@st.composite
def conv_calls(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, c, h, w = (draw(st.integers(1, 3)) for _ in range(4))
    f, hh, ww = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    x = rng.standard_normal((n, c, h + 2, w + 2))
    wt = rng.standard_normal((f, c, hh, ww))
    b = rng.standard_normal(f)
    which = draw(st.sets(st.sampled_from(["x", "w", "b", "stride", "pad"]), min_size=1, max_size=2))
    args = {"x": x, "w": wt, "b": b, "stride": 1, "pad": 0}
    for name in which:
        args[name] = draw(HYPER) if name in ("stride", "pad") else _mutate_array(draw, args[name])
    return args, draw(st.sampled_from(BACKENDS))


@FUZZ
@given(conv_calls())
def test_conv_forward_and_backward(call):
    args, backend = call
    result = _run(lambda: F.conv_forward(**args, backend=backend))
    if result is None:
        return
    out, cache = result
    x, w = args["x"], args["w"]
    expected = (
        _shape(x)[0],
        _shape(w)[0],
        _conv_out(_shape(x)[2], _shape(w)[2], args["stride"], args["pad"]),
        _conv_out(_shape(x)[3], _shape(w)[3], args["stride"], args["pad"]),
    )
    assert _shape(out) == expected
    grads = F.conv_backward(out * 0 + 1, cache)
    assert [_shape(g) for g in grads] == [_shape(x), _shape(w), (_shape(w)[0],)]
    # a malformed upstream gradient is refused, never broadcast
    bad = out[..., :-1] if out.shape[-1] > 1 else out[None]
    with pytest.raises(DOCUMENTED):
        F.conv_backward(bad, cache)


@st.composite
def pool_calls(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((draw(st.integers(1, 2)), draw(st.integers(1, 3)), 6, draw(st.integers(4, 7))))
    args = {"x": x, "size": 2, "stride": 2}
    for name in draw(st.sets(st.sampled_from(["x", "size", "stride"]), min_size=1, max_size=2)):
        args[name] = _mutate_array(draw, x) if name == "x" else draw(HYPER)
    return args, draw(st.sampled_from(BACKENDS)), draw(st.sampled_from(["max", "avg"]))


@FUZZ
@given(pool_calls())
def test_pooling(call):
    args, backend, kind = call
    forward = getattr(F, f"{kind}_pool_forward")
    backward = getattr(F, f"{kind}_pool_backward")
    result = _run(lambda: forward(**args, backend=backend))
    if result is None:
        return
    out, cache = result
    n, c, h, w = _shape(args["x"])
    assert _shape(out) == (n, c, _conv_out(h, args["size"], args["stride"], 0), _conv_out(w, args["size"], args["stride"], 0))
    assert _shape(backward(out * 0 + 1, cache)) == (n, c, h, w)
    with pytest.raises(DOCUMENTED):
        backward(out[:, :, :, :0] if out.shape[-1] else out[None], cache)


@st.composite
def dense_calls(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, d1, d2, m = (draw(st.integers(1, 4)) for _ in range(4))
    args = {"x": rng.standard_normal((n, d1, d2)), "w": rng.standard_normal((d1 * d2, m)), "b": rng.standard_normal(m)}
    for name in draw(st.sets(st.sampled_from(["x", "w", "b"]), min_size=0, max_size=2)):
        args[name] = _mutate_array(draw, args[name])
    labels = _mutate_array(draw, rng.integers(0, m, size=n)) if draw(st.booleans()) else rng.integers(0, m, size=n)
    return args, labels


@FUZZ
@given(dense_calls())
def test_affine_relu_softmax(call):
    args, labels = call
    result = _run(lambda: F.affine_forward(**args))
    if result is not None:
        out, cache = result
        x, w = args["x"], args["w"]
        assert _shape(out) == (_shape(x)[0], _shape(w)[1])
        dx, dw, db = F.affine_backward(out * 0 + 1, cache)
        assert (_shape(dx), _shape(dw), _shape(db)) == (_shape(x), _shape(w), (_shape(w)[1],))
        scores = out
    else:
        scores = args["x"]
    relu = _run(lambda: F.relu_forward(scores))
    if relu is not None:
        r, rcache = relu
        assert _shape(r) == _shape(scores)
        assert _shape(F.relu_backward(r * 0 + 1, rcache)) == _shape(scores)
    loss = _run(lambda: F.softmax_loss(scores, labels))
    if loss is not None:
        value, dscores = loss
        assert isinstance(value, float)
        assert _shape(dscores) == _shape(scores)


@st.composite
def im2col_calls(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((draw(st.integers(1, 2)), draw(st.integers(1, 2)), 5, 5))
    args = {"x": x, "fh": 3, "fw": 3, "stride": 1, "pad": 1}
    for name in draw(st.sets(st.sampled_from(list(args)), min_size=1, max_size=2)):
        args[name] = _mutate_array(draw, x) if name == "x" else draw(HYPER)
    return args, draw(st.sampled_from(["auto", "numpy", "torch"] + (["cython"] if HAVE_CYTHON else [])))


@FUZZ
@given(im2col_calls())
def test_im2col_col2im(call):
    args, backend = call
    cols = _run(lambda: im2col(**args, backend=backend))
    if cols is None:
        return
    n, c, h, w = _shape(args["x"])
    ho = _conv_out(h, args["fh"], args["stride"], args["pad"])
    wo = _conv_out(w, args["fw"], args["stride"], args["pad"])
    assert _shape(cols) == (c * args["fh"] * args["fw"], n * ho * wo)
    back = col2im(cols, (n, c, h, w), args["fh"], args["fw"], args["stride"], args["pad"], backend=backend)
    assert _shape(back) == (n, c, h, w)
    with pytest.raises(DOCUMENTED):
        col2im(cols[:, 1:], (n, c, h, w), args["fh"], args["fw"], args["stride"], args["pad"], backend=backend)


@st.composite
def signal_calls(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    args = {"x": rng.standard_normal(draw(st.integers(1, 12))), "w": rng.standard_normal(draw(st.integers(1, 5)))}
    for name in draw(st.sets(st.sampled_from(["x", "w"]), min_size=0, max_size=2)):
        args[name] = _mutate_array(draw, args[name])
    return args, draw(HYPER), draw(HYPER), draw(st.sampled_from(["valid", "same", "full", "circular", 3]))


@FUZZ
@given(signal_calls())
def test_one_dimensional_filters(call):
    args, stride, pad, mode = call
    out = _run(lambda: F.conv1d(args["x"], args["w"], stride, pad))
    if out is not None:
        assert _shape(out) == (_conv_out(len(args["x"]), len(args["w"]), stride, pad),)
    out = _run(lambda: F.convolve1d(args["x"], args["w"], mode))
    if out is not None:
        lx, lw = len(args["x"]), len(args["w"])
        assert _shape(out) == ({"valid": lx - lw + 1, "full": lx + lw - 1, "same": max(lx, lw)}[mode],)
    image = np.outer(args["x"], args["x"]) if isinstance(args["x"], np.ndarray) and args["x"].ndim == 1 else args["x"]
    kernel = np.outer(args["w"], args["w"]) if isinstance(args["w"], np.ndarray) and args["w"].ndim == 1 else args["w"]
    out = _run(lambda: F.conv2d(image, kernel, stride, pad))
    if out is not None:
        (h, w), (kh, kw) = _shape(image), _shape(kernel)
        assert _shape(out) == (_conv_out(h, kh, stride, pad), _conv_out(w, kw, stride, pad))


@FUZZ
@given(HYPER, HYPER, HYPER, HYPER)
def test_shape_arithmetic(n, f, stride, pad):
    for call, expected in (
        (lambda: shapes.conv_output_size(n, f, stride, pad), lambda: _conv_out(n, f, stride, pad)),
        (lambda: shapes.pool_output_size(n, f, stride), lambda: _conv_out(n, f, stride, 0)),
        (lambda: shapes.same_padding(f), lambda: (f - 1) // 2),
    ):
        got = _run(call)
        if got is not None:
            assert got == expected() and isinstance(got, int)


@st.composite
def gradcheck_calls(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = rng.standard_normal((2, 3))
    return _mutate_array(draw, a), _mutate_array(draw, a.copy()), draw(st.sampled_from([1e-5, 0.0, -1.0, 1e-3]))


@FUZZ
@given(gradcheck_calls())
def test_gradcheck(call):
    a, b, h = call
    err = _run(lambda: gradcheck.rel_error(a, b))
    if err is not None:
        assert isinstance(err, float)
    grad = _run(lambda: gradcheck.numerical_gradient(lambda v: np.sum(v**2), a, h=h))
    if grad is not None:
        assert _shape(grad) == _shape(a)
