"""Numerical gradients: of known functions, and of the naive layers (whose backward
passes are then independent of torch)."""

import numpy as np
import pytest

from cs_utils import functional as F
from cs_utils.gradcheck import numerical_gradient, rel_error


def test_numerical_gradient_of_a_known_function(rng):
    x = rng.standard_normal((3, 4))
    grad = numerical_gradient(lambda v: np.sum(v**3), x)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-6)


def test_numerical_gradient_with_upstream(rng):
    x = rng.standard_normal(5)
    df = rng.standard_normal(5)
    np.testing.assert_allclose(numerical_gradient(np.sin, x, df), np.cos(x) * df, rtol=1e-7)


def test_numerical_gradient_restores_x(rng):
    x = rng.standard_normal((2, 2))
    before = x.copy()
    numerical_gradient(lambda v: float(np.sum(v**2)), x)
    np.testing.assert_array_equal(x, before)


def test_rel_error():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    assert rel_error(0.0, 0.0) == 0.0
    with pytest.raises(ValueError, match=r"same shape; got a \(2,\) and b \(3,\)"):
        rel_error(np.zeros(2), np.zeros(3))


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, pad",
    [
        ((2, 2, 5, 4), (3, 2, 3, 2), 1, 0),
        ((2, 2, 5, 4), (3, 2, 3, 2), 1, 1),
        ((1, 2, 7, 6), (3, 2, 3, 2), 2, 1),
        ((1, 2, 7, 7), (3, 2, 3, 3), 3, 1),
    ],
)
def test_naive_conv_backward_numerically(x_shape, w_shape, stride, pad, rng):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(3)
    out, cache = F.conv_forward(x, w, b, stride, pad, backend="naive")
    dout = rng.standard_normal(out.shape)
    dx, dw, db = F.conv_backward(dout, cache)

    def forward(_):
        return F.conv_forward(x, w, b, stride, pad, backend="naive")[0]

    assert rel_error(dx, numerical_gradient(forward, x, dout)) < 1e-7
    assert rel_error(dw, numerical_gradient(forward, w, dout)) < 1e-7
    assert rel_error(db, numerical_gradient(forward, b, dout)) < 1e-7


@pytest.mark.parametrize("layer", ["max", "avg"])
@pytest.mark.parametrize("size, stride", [(2, 2), (3, 2), (2, 1)])
def test_naive_pool_backward_numerically(layer, size, stride, rng):
    x = rng.permutation(5 * 5 * 2).reshape(1, 2, 5, 5).astype(np.float64) / 7  # distinct values: no kinks
    if (5 - size) % stride:
        x = x[:, :, :4, :4].copy()
    fwd = getattr(F, f"{layer}_pool_forward")
    bwd = getattr(F, f"{layer}_pool_backward")
    out, cache = fwd(x, size, stride, backend="naive")
    dout = rng.standard_normal(out.shape)
    num = numerical_gradient(lambda v: fwd(v, size, stride, backend="naive")[0], x, dout)
    assert rel_error(bwd(dout, cache), num) < 1e-8


def test_dense_layers_numerically(rng):
    x = rng.standard_normal((4, 3, 2))
    w = rng.standard_normal((6, 5))
    b = rng.standard_normal(5)
    y = np.array([0, 4, 2, 2])

    def loss(_):
        h, _c = F.affine_forward(x, w, b)
        r, _c = F.relu_forward(h)
        return F.softmax_loss(r, y)[0]

    h, hc = F.affine_forward(x, w, b)
    r, rc = F.relu_forward(h)
    _, dr = F.softmax_loss(r, y)
    dx, dw, db = F.affine_backward(F.relu_backward(dr, rc), hc)
    for analytic, param in ((dx, x), (dw, w), (db, b)):
        assert rel_error(analytic, numerical_gradient(loss, param)) < 1e-6
