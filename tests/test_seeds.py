"""The worked examples of the seed lectures, computed with cs_utils."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from cs_utils import functional as F
from cs_utils.kernels import CLASSIC_KERNELS
from conftest import BACKENDS

# Seed 004, module 11.1: a noisy position sensor smoothed by a 7-tap weighted average.
SENSOR_X = np.array([1.00, 1.10, 1.20, 1.40, 1.70, 1.80, 1.90, 2.10, 2.20, 2.40, 2.50, 2.70])
SENSOR_W = np.array([0.01, 0.01, 0.02, 0.02, 0.04, 0.4, 0.5])  # w_{-6}, ..., w_0
SENSOR_S_PRINTED = [1.80, 1.96, 2.11, 2.16, 2.28, 2.42]  # the seed's row, rounded by hand


def sensor_formula():
    """s_t = sum_{a=0}^{6} x_{t-a} w_{-a}, for every t where the window fits (t = 6..11)."""
    w_minus = {a: SENSOR_W[6 - a] for a in range(7)}
    return np.array([sum(SENSOR_X[t - a] * w_minus[a] for a in range(7)) for t in range(6, len(SENSOR_X))])


def test_sensor_smoothing_row():
    s = F.conv1d(SENSOR_X, SENSOR_W)
    np.testing.assert_allclose(s, sensor_formula(), rtol=1e-12)
    assert s.shape == (6,)
    # The seed's first three values agree with the arithmetic to its rounding (+-0.015);
    # from s_9 on the printed row (2.16, 2.28, 2.42) is off: the weights give 2.269, 2.413, 2.588.
    np.testing.assert_allclose(s[:3], SENSOR_S_PRINTED[:3], atol=0.015)
    assert abs(s[3] - SENSOR_S_PRINTED[3]) > 0.1


def test_sensor_is_a_true_convolution_with_the_flipped_kernel():
    # s = x * w with w indexed w_0, w_{-1}, ...: true convolution with the reversed array.
    np.testing.assert_allclose(F.convolve1d(SENSOR_X, SENSOR_W[::-1]), sensor_formula(), rtol=1e-12)


@pytest.mark.parametrize("mode", ["valid", "same", "full"])
@pytest.mark.parametrize("lengths", [(12, 7), (10, 4), (5, 5), (3, 6)])
def test_convolve1d_matches_numpy(mode, lengths, rng):
    x, w = rng.standard_normal(lengths[0]), rng.standard_normal(lengths[1])
    if mode == "valid" and lengths[1] > lengths[0]:
        with pytest.raises(ValueError, match="larger than the padded input"):
            F.convolve1d(x, w, mode)
        return
    np.testing.assert_allclose(F.convolve1d(x, w, mode), np.convolve(x, w, mode), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride, pad", [(1, 0), (2, 0), (3, 0), (2, 1), (1, 3)])
def test_conv1d_matches_torch(stride, pad, rng):
    x, w = rng.standard_normal(10), rng.standard_normal(4)
    ref = TF.conv1d(torch.tensor(x)[None, None], torch.tensor(w)[None, None], stride=stride, padding=pad)[0, 0]
    np.testing.assert_allclose(F.conv1d(x, w, stride, pad), ref.numpy(), rtol=1e-12)


# Seed 004, max pooling: a 4x4 feature map, 2x2 windows at stride 2.
POOL_IN = np.array([[1, 4, 2, 1], [5, 8, 3, 4], [7, 6, 4, 5], [1, 3, 1, 2]], dtype=np.float64)
POOL_OUT = np.array([[8, 4], [7, 5]], dtype=np.float64)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_4x4_example(backend):
    out, cache = F.max_pool_forward(POOL_IN[None, None], 2, 2, backend=backend)
    np.testing.assert_array_equal(out[0, 0], POOL_OUT)
    dx = F.max_pool_backward(np.ones((1, 1, 2, 2)), cache)[0, 0]
    # the gradient lands on the four winners: 8 at (1,1), 4 at (1,3), 7 at (2,0), 5 at (2,3)
    expected = np.zeros((4, 4))
    expected[1, 1] = expected[1, 3] = expected[2, 0] = expected[2, 3] = 1
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_7x7_input_3x3_filter_strides(backend):
    x = np.arange(49, dtype=np.float64).reshape(1, 1, 7, 7)
    w = np.ones((1, 1, 3, 3))
    assert F.conv_forward(x, w, np.zeros(1), stride=1, backend=backend)[0].shape == (1, 1, 5, 5)
    assert F.conv_forward(x, w, np.zeros(1), stride=2, backend=backend)[0].shape == (1, 1, 3, 3)
    with pytest.raises(ValueError, match=r"\(7 - 3 \+ 2\*0\)/3 \+ 1 = 2\.33 is not an integer"):
        F.conv_forward(x, w, np.zeros(1), stride=3, backend=backend)


def test_32x32x3_ten_5x5_filters_pad_2(rng):
    x = rng.standard_normal((1, 3, 32, 32))
    w = rng.standard_normal((10, 3, 5, 5))
    b = rng.standard_normal(10)
    out, _ = F.conv_forward(x, w, b, stride=1, pad=2)
    assert out.shape == (1, 10, 32, 32)
    assert w.size + b.size == 760  # each filter 5*5*3 + 1 bias = 76 parameters, times 10


def test_alexnet_first_layer(rng):
    x = rng.standard_normal((1, 3, 227, 227)).astype(np.float32)
    w = rng.standard_normal((96, 3, 11, 11)).astype(np.float32) * 0.05
    b = rng.standard_normal(96).astype(np.float32)
    out, _ = F.conv_forward(x, w, b, stride=4, pad=0)
    assert out.shape == (1, 96, 55, 55)
    assert w.size + b.size == 34_944
    ref = TF.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=4).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_classic_kernels_on_an_image(backend, rng):
    image = rng.random((9, 8))
    # identity with same padding leaves the image as it is
    np.testing.assert_allclose(F.conv2d(image, CLASSIC_KERNELS["identity"], pad=1, backend=backend), image, atol=1e-15)
    # blurs average: a constant image stays constant in the interior
    flat = np.full((6, 6), 0.7)
    for name in ("box blur", "Gaussian blur"):
        np.testing.assert_allclose(F.conv2d(flat, CLASSIC_KERNELS[name], backend=backend), 0.7, rtol=1e-12)
    # edge detectors and sharpen: weights sum to 0 (edges) or 1 (sharpen) -> flat stays 0 / itself
    for name in ("edge (diagonal)", "edge (4-neighbour Laplacian)", "edge (8-neighbour Laplacian)"):
        np.testing.assert_allclose(F.conv2d(flat, CLASSIC_KERNELS[name], backend=backend), 0.0, atol=1e-12)
    np.testing.assert_allclose(F.conv2d(flat, CLASSIC_KERNELS["sharpen"], backend=backend), 0.7, rtol=1e-12)
    # against torch on the random image
    for k in CLASSIC_KERNELS.values():
        ref = TF.conv2d(torch.tensor(image)[None, None], torch.tensor(k)[None, None], padding=1)[0, 0].numpy()
        np.testing.assert_allclose(F.conv2d(image, k, pad=1, backend=backend), ref, rtol=1e-12, atol=1e-12)
