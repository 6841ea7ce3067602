"""Every forward and backward, every backend, against torch autograd in float64."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from cs_utils import functional as F
from conftest import BACKENDS, DEVICES, check_conv_against_torch, torch_grads

# (N, C, H, W), (F, HH, WW), stride, pad: non-square images and kernels, 1x1 kernels,
# N=1, C=1, odd channel counts, strides 1-3, pads 0-2.
CONV_CASES = [
    ((2, 3, 7, 7), (4, 3, 3), 1, 1),
    ((1, 1, 5, 5), (1, 3, 3), 1, 0),
    ((2, 3, 8, 6), (5, 3, 5), 1, 2),  # 3x5 kernel (CS231n's gives wrong results)
    ((2, 3, 6, 8), (5, 5, 3), 1, 2),  # 5x3 kernel (CS231n's corrupts memory)
    ((3, 5, 9, 9), (2, 3, 3), 2, 1),
    ((2, 2, 10, 7), (3, 4, 1), 3, 0),
    ((2, 7, 6, 6), (3, 1, 1), 1, 0),  # 1x1 convolution
    ((1, 3, 13, 13), (2, 5, 5), 3, 2),
    ((4, 1, 4, 4), (6, 2, 2), 2, 0),
    ((2, 3, 7, 7), (2, 3, 3), 2, 0),  # the seed's 7x7 input, 3x3 filter, stride 2
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("x_shape, w_spec, stride, pad", CONV_CASES)
def test_conv_forward_backward(backend, x_shape, w_spec, stride, pad, rng):
    check_conv_against_torch(x_shape, w_spec, stride, pad, backend, rng)


# (N, C, H, W), size, stride: tiling, overlapping (stride < size), non-square, gaps (stride > size)
POOL_CASES = [
    ((2, 3, 4, 4), 2, 2),
    ((2, 3, 7, 7), 3, 2),  # overlapping: gradients add up
    ((1, 2, 9, 5), 3, 1),
    ((2, 1, 6, 8), 2, 2),
    ((3, 2, 7, 7), 1, 2),
    ((1, 1, 8, 8), 2, 3),  # stride > size: some inputs belong to no window
    ((2, 3, 33, 33), 3, 2),  # the benchmark's 3x3 stride 2 (CS231n's crashes with NameError)
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("x_shape, size, stride", POOL_CASES)
def test_max_pool(backend, x_shape, size, stride, rng):
    x = rng.standard_normal(x_shape)
    out, cache = F.max_pool_forward(x, size, stride, backend=backend)
    dout = rng.standard_normal(out.shape)
    ref_out, (ref_dx,) = torch_grads(lambda x: TF.max_pool2d(x, size, stride), (x,), dout)
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=0)
    np.testing.assert_allclose(F.max_pool_backward(dout, cache), ref_dx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("x_shape, size, stride", POOL_CASES)
def test_avg_pool(backend, x_shape, size, stride, rng):
    x = rng.standard_normal(x_shape)
    out, cache = F.avg_pool_forward(x, size, stride, backend=backend)
    dout = rng.standard_normal(out.shape)
    ref_out, (ref_dx,) = torch_grads(lambda x: TF.avg_pool2d(x, size, stride), (x,), dout)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.avg_pool_backward(dout, cache), ref_dx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_ties_go_to_the_first_maximum(backend):
    # Rule we grade against: when several inputs tie for the maximum, the first one in
    # row-major order of the window gets the whole gradient (torch does the same).
    x = np.array([[[[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, 3.0, 3.0], [5.0, 5.0, 1.0, 1.0], [5.0, 5.0, 1.0, 1.0]]]])
    out, cache = F.max_pool_forward(x, 2, 2, backend=backend)
    dx = F.max_pool_backward(np.ones_like(out), cache)
    _, (ref_dx,) = torch_grads(lambda t: TF.max_pool2d(t, 2, 2), (x,), np.ones_like(out))
    np.testing.assert_array_equal(dx, ref_dx)
    assert dx.sum() == 4 and dx[0, 0, 0, 1] == 1 and dx[0, 0, 0, 2] == 1 and dx[0, 0, 2, 0] == 1 and dx[0, 0, 2, 2] == 1


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4, 4), (7,)])
def test_relu(shape, rng):
    x = rng.standard_normal(shape)
    out, cache = F.relu_forward(x)
    dout = rng.standard_normal(shape)
    ref_out, (ref_dx,) = torch_grads(TF.relu, (x,), dout)
    np.testing.assert_allclose(out, ref_out)
    np.testing.assert_allclose(F.relu_backward(dout, cache), ref_dx)


@pytest.mark.parametrize("x_shape, m", [((4, 10), 3), ((2, 3, 4, 4), 5), ((1, 6), 1)])
def test_affine(x_shape, m, rng):
    x = rng.standard_normal(x_shape)
    d = int(np.prod(x_shape[1:]))
    w = rng.standard_normal((d, m))
    b = rng.standard_normal(m)
    out, cache = F.affine_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    # torch.nn.functional.linear takes the weight as (M, D)
    ref_out, (ref_dx, ref_wt, ref_db) = torch_grads(
        lambda x, wt, b: TF.linear(x.reshape(x.shape[0], -1), wt, b), (x, w.T, b), dout
    )
    np.testing.assert_allclose(out, ref_out, rtol=1e-12)
    dx, dw, db = F.affine_backward(dout, cache)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12)
    np.testing.assert_allclose(dw, ref_wt.T, rtol=1e-12)
    np.testing.assert_allclose(db, ref_db, rtol=1e-12)


@pytest.mark.parametrize("n, k", [(5, 3), (1, 10), (16, 2)])
def test_softmax_loss(n, k, rng):
    scores = rng.standard_normal((n, k)) * 3
    y = rng.integers(0, k, size=n)
    loss, dscores = F.softmax_loss(scores, y)
    s = torch.tensor(scores, requires_grad=True)
    ref = TF.cross_entropy(s, torch.tensor(y))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(dscores, s.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_softmax_loss_is_stable_for_huge_scores():
    scores = np.array([[1000.0, 0.0, -1000.0]])
    loss, dscores = F.softmax_loss(scores, np.array([0]))
    assert np.isfinite(loss) and loss == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.isfinite(dscores))


# ---------------------------------------------------------------------------
# The torch path on every device: tensors in, tensors out on the same device
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_tensor_input_stays_on_its_device(device, backend, rng):
    x = torch.tensor(rng.standard_normal((2, 3, 6, 5)), device=device)
    w = torch.tensor(rng.standard_normal((4, 3, 3, 2)), device=device)
    b = torch.tensor(rng.standard_normal(4), device=device)
    out, cache = F.conv_forward(x, w, b, 1, 1, backend=backend)
    assert isinstance(out, torch.Tensor) and out.device.type == device
    dout = torch.ones_like(out)
    grads = F.conv_backward(dout, cache)
    ref_out, ref_grads = torch_grads(
        lambda x, w, b: TF.conv2d(x, w, b, padding=1), (x.cpu(), w.cpu(), b.cpu()), dout.cpu()
    )
    np.testing.assert_allclose(out.cpu().numpy(), ref_out, rtol=1e-10, atol=1e-10)
    for g, ref in zip(grads, ref_grads):
        assert isinstance(g, torch.Tensor) and g.device.type == device
        np.testing.assert_allclose(g.cpu().numpy(), ref, rtol=1e-10, atol=1e-10)
    pooled, pcache = F.max_pool_forward(x, 2, 1, backend=backend)
    dx = F.max_pool_backward(torch.ones_like(pooled), pcache)
    assert pooled.device.type == device and dx.device.type == device
    _, (ref_dx,) = torch_grads(lambda t: TF.max_pool2d(t, 2, 1), (x.cpu(),), np.ones(pooled.shape))
    np.testing.assert_allclose(dx.cpu().numpy(), ref_dx)


@pytest.mark.parametrize("device", DEVICES)
def test_dense_layers_on_device(device, rng):
    x = torch.tensor(rng.standard_normal((4, 2, 3)), device=device)
    w = torch.tensor(rng.standard_normal((6, 5)), device=device)
    b = torch.tensor(rng.standard_normal(5), device=device)
    out, cache = F.affine_forward(x, w, b)
    r, rcache = F.relu_forward(out)
    y = torch.tensor([0, 4, 2, 1], device=device)
    loss, dscores = F.softmax_loss(r, y)
    dr = F.relu_backward(dscores, rcache)
    dx, dw, db = F.affine_backward(dr, cache)
    assert all(t.device.type == device for t in (out, r, dscores, dx, dw, db))
    xt, wt, bt = (t.detach().cpu().clone().requires_grad_() for t in (x, w, b))
    ref = TF.cross_entropy(TF.relu(xt.reshape(4, -1) @ wt + bt), y.cpu())
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    for g, t in ((dx, xt), (dw, wt), (db, bt)):
        np.testing.assert_allclose(g.cpu().numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(backend, dtype, rng):
    x = rng.standard_normal((2, 3, 5, 5)).astype(dtype)
    w = rng.standard_normal((2, 3, 3, 3)).astype(dtype)
    b = np.zeros(2, dtype=dtype)
    out, cache = F.conv_forward(x, w, b, 1, 1, backend=backend)
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in F.conv_backward(np.ones_like(out), cache))
    pooled, pcache = F.max_pool_forward(x, 2, 1, backend=backend)
    assert pooled.dtype == dtype and F.max_pool_backward(np.ones_like(pooled), pcache).dtype == dtype


def test_mixed_precision_promotes_to_float64(rng):
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3))
    out, _ = F.conv_forward(x, w, np.zeros(3), backend="numpy")
    assert out.dtype == np.float64


@pytest.mark.parametrize("device", DEVICES)
def test_numpy_dout_for_a_tensor_forward(device, rng):
    # The upstream gradient may arrive as a NumPy array; it must follow the forward's tensors.
    x = torch.tensor(rng.standard_normal((1, 2, 5, 5)), device=device)
    w = torch.tensor(rng.standard_normal((3, 2, 3, 3)), device=device)
    b = torch.zeros(3, dtype=torch.float64, device=device)
    out, cache = F.conv_forward(x, w, b, 1, 1)
    dout = rng.standard_normal(tuple(out.shape))
    dx, dw, db = F.conv_backward(dout, cache)
    assert dx.device.type == device
    _, (ref_dx, _, _) = torch_grads(lambda x, w, b: TF.conv2d(x, w, b, padding=1), (x.cpu(), w.cpu(), b.cpu()), dout)
    np.testing.assert_allclose(dx.cpu().numpy(), ref_dx, rtol=1e-10, atol=1e-10)
