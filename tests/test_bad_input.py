"""Wrong calls get a clear error: the exception type and what the message must say."""

import numpy as np
import pytest
import torch

from cs_utils import functional as F
from cs_utils.gradcheck import numerical_gradient
from cs_utils.im2col import col2im, im2col

x4 = np.zeros((2, 3, 8, 8))
w4 = np.zeros((4, 3, 3, 3))
b4 = np.zeros(4)
_, conv_cache = F.conv_forward(x4, w4, b4)
_, pool_cache = F.max_pool_forward(x4)

BAD_CALLS = [
    # (call, exception, fragment of the message)
    ("3-D x", lambda: F.conv_forward(np.zeros((3, 8, 8)), w4, b4), ValueError,
     "x must be 4-D with shape (N, C, H, W); got shape (3, 8, 8) (3-D); a single image needs a batch axis"),
    ("2-D w", lambda: F.conv_forward(x4, np.zeros((3, 3)), b4), ValueError, "w must be 4-D with shape (F, C, HH, WW); got shape (3, 3)"),
    ("channel mismatch", lambda: F.conv_forward(x4, np.zeros((4, 2, 3, 3)), b4), ValueError,
     "x has C=3 channels but w expects C=2"),
    ("bias length", lambda: F.conv_forward(x4, w4, np.zeros(5)), ValueError, "b must have shape (F,) = (4,)"),
    ("bias 2-D", lambda: F.conv_forward(x4, w4, np.zeros((4, 1))), ValueError, "b must be 1-D with shape (F,)"),
    ("integer x", lambda: F.conv_forward(x4.astype(int), w4, b4), TypeError, "x must have a floating-point dtype; got dtype int64"),
    ("integer w", lambda: F.conv_forward(x4, w4.astype(np.int32), b4), TypeError, "w must have a floating-point dtype"),
    ("stride 0", lambda: F.conv_forward(x4, w4, b4, stride=0), ValueError, "stride must be positive (>= 1); got stride=0"),
    ("negative pad", lambda: F.conv_forward(x4, w4, b4, pad=-1), ValueError, "pad must be non-negative (>= 0); got pad=-1"),
    ("huge stride", lambda: F.conv_forward(x4, w4, b4, stride=10**40), ValueError, "stride must be less than 2**31"),
    ("float stride", lambda: F.conv_forward(x4, w4, b4, stride=1.5), TypeError, "stride must be an integer"),
    ("stride does not fit", lambda: F.conv_forward(x4, w4, b4, stride=2), ValueError,
     "(8 - 3 + 2*0)/2 + 1 = 3.50 is not an integer"),
    ("filter too large", lambda: F.conv_forward(np.zeros((1, 3, 2, 2)), w4, b4), ValueError,
     "filter size f=3 along the height is larger than the padded input"),
    ("list input", lambda: F.conv_forward([[1.0]], w4, b4), TypeError, "x must be a NumPy array or a torch tensor; got list"),
    ("empty x", lambda: F.conv_forward(np.zeros((0, 3, 8, 8)), w4, b4), ValueError, "x must not be empty"),
    ("mixed kinds", lambda: F.conv_forward(torch.zeros(2, 3, 8, 8, dtype=torch.float64), w4, b4), TypeError,
     "x is a torch tensor, w is a NumPy array"),
    ("unknown backend", lambda: F.conv_forward(x4, w4, b4, backend="fast"), ValueError, "backend must be one of"),
    ("dout shape", lambda: F.conv_backward(np.zeros((2, 4, 5, 5)), conv_cache), ValueError,
     "dout must have the shape of the forward output, (2, 4, 6, 6); got (2, 4, 5, 5)"),
    ("wrong cache", lambda: F.conv_backward(np.zeros((2, 4, 6, 6)), pool_cache), TypeError,
     "cache must be the second value returned by conv_forward; got a cache from max_pool_forward"),
    ("tuple cache", lambda: F.conv_backward(np.zeros((2, 4, 6, 6)), (1, 2)), TypeError, "got tuple"),
    ("pool does not tile", lambda: F.max_pool_forward(np.zeros((1, 1, 7, 7)), 2, 2), ValueError,
     "(7 - 2)/2 + 1 = 3.50 is not an integer"),
    ("pool size 0", lambda: F.max_pool_forward(x4, 0, 1), ValueError, "size must be positive"),
    ("pool window too large", lambda: F.avg_pool_forward(np.zeros((1, 1, 2, 2)), 3, 1), ValueError, "size=3 along the height is larger"),
    ("pool 2-D x", lambda: F.avg_pool_forward(np.zeros((8, 8))), ValueError, "a single-channel image needs batch and channel axes"),
    ("pool integer x", lambda: F.max_pool_forward(np.zeros((1, 1, 4, 4), dtype=np.uint8)), TypeError, "floating-point dtype; got dtype uint8"),
    ("affine D mismatch", lambda: F.affine_forward(np.zeros((2, 3, 4)), np.zeros((10, 5)), np.zeros(5)), ValueError,
     "w must have shape (D, M) with D = 3 * 4 = 12 for x of shape (2, 3, 4); got w of shape (10, 5)"),
    ("affine bias", lambda: F.affine_forward(np.zeros((2, 3)), np.zeros((3, 5)), np.zeros(4)), ValueError, "b must have shape (M,) = (5,)"),
    ("affine 1-D x", lambda: F.affine_forward(np.zeros(3), np.zeros((3, 5)), np.zeros(5)), ValueError, "batch axis first"),
    ("softmax labels", lambda: F.softmax_loss(np.zeros((2, 3)), np.array([0, 3])), ValueError, "labels in [0, 3)"),
    ("softmax float labels", lambda: F.softmax_loss(np.zeros((2, 3)), np.array([0.0, 1.0])), TypeError, "y must hold integers"),
    ("softmax y length", lambda: F.softmax_loss(np.zeros((2, 3)), np.array([0, 1, 2])), ValueError, "y must have shape (N,) = (2,)"),
    ("relu int", lambda: F.relu_forward(np.arange(3)), TypeError, "x must have a floating-point dtype"),
    ("conv1d 2-D", lambda: F.conv1d(np.zeros((2, 3)), np.zeros(2)), ValueError, "x must be 1-D with shape (L,)"),
    ("conv1d kernel too long", lambda: F.conv1d(np.zeros(3), np.zeros(5)), ValueError, "f=5 is larger than the padded input"),
    ("convolve1d mode", lambda: F.convolve1d(np.zeros(3), np.zeros(2), mode="circular"), ValueError, "mode must be 'valid', 'same' or 'full'"),
    ("conv2d 3-D image", lambda: F.conv2d(np.zeros((3, 4, 4)), np.zeros((3, 3))), ValueError, "image must be 2-D with shape (H, W)"),
    ("im2col 3-D", lambda: im2col(np.zeros((3, 4, 4)), 2, 2), ValueError, "x must be 4-D"),
    ("col2im shape", lambda: col2im(np.zeros((9, 5)), (1, 1, 4, 4), 3, 3), ValueError,
     "cols must have shape (C*fh*fw, N*Ho*Wo) = (9, 4)"),
    ("gradcheck int x", lambda: numerical_gradient(np.sum, np.arange(3)), TypeError, "x must be a floating-point NumPy array"),
]


@pytest.mark.parametrize("label, call, exc, fragment", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_call(label, call, exc, fragment):
    with pytest.raises(exc) as info:
        call()
    assert fragment in str(info.value), f"message was: {info.value}"
