"""The fast CPU layers: convolution as im2col + one matrix product, and pooling.

``backend`` is "numpy" (stride tricks, no compiled code) or "cython" (the
kernels in cs_utils._fastops). Both share the GEMM formulation:

    forward:  out  = W @ cols + b          W = w.reshape(F, C*HH*WW)
    backward: dW   = dout @ cols.T         db = sum of dout
              dcols = W.T @ dout           dx = col2im(dcols)
"""

import numpy as np

from cs_utils import _backend
from cs_utils.im2col import col2im, im2col
from cs_utils.shapes import conv_output_shape, pool_output_shape


def conv_forward(x, w, b, stride, pad, backend):
    """x (N, C, H, W), w (F, C, HH, WW), b (F,) -> out (N, F, Ho, Wo)."""
    N, F, Ho, Wo = conv_output_shape(x.shape, w.shape, stride, pad)
    HH, WW = w.shape[2:]
    cols = im2col(x, HH, WW, stride, pad, backend=backend)  # (C*HH*WW, N*Ho*Wo), a fresh array
    w_rows = w.reshape(F, -1).copy()  # a copy: changing w after the forward pass must not change the backward
    out = (w_rows @ cols + b[:, None]).reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(out), (x.shape, w.shape, w_rows, cols, stride, pad, backend)


def conv_backward(dout, cache):
    x_shape, w_shape, w_rows, cols, stride, pad, backend = cache
    F = w_shape[0]
    dout_rows = dout.transpose(1, 0, 2, 3).reshape(F, -1)  # (F, N*Ho*Wo)
    db = dout.sum(axis=(0, 2, 3))
    dw = (dout_rows @ cols.T).reshape(w_shape)
    dcols = w_rows.T @ dout_rows
    dx = col2im(dcols, x_shape, w_shape[2], w_shape[3], stride, pad, backend=backend)
    return dx, dw, db


def _pool_columns(x, size, stride, backend):
    """Every window as a column: (size*size, N*C*Ho*Wo), channels treated as separate images."""
    N, C, H, W = x.shape
    return im2col(x.reshape(N * C, 1, H, W), size, size, stride, 0, backend=backend)


def max_pool_forward(x, size, stride, backend):
    """x (N, C, H, W) -> out (N, C, Ho, Wo), remembering where each maximum was."""
    out_shape = pool_output_shape(x.shape, size, stride)
    if backend == "cython":
        out = np.empty(out_shape, dtype=x.dtype)
        argmax = np.empty(out_shape, dtype=np.intp)
        _backend.fastops().max_pool_forward(x, size, stride, out, argmax)
        return out, (x.shape, size, stride, argmax, backend)
    cols = _pool_columns(x, size, stride, backend)
    argmax = np.argmax(cols, axis=0)  # first maximum in row-major window order
    out = cols[argmax, np.arange(cols.shape[1])].reshape(out_shape)
    return out, (x.shape, size, stride, argmax, backend)


def max_pool_backward(dout, cache):
    x_shape, size, stride, argmax, backend = cache
    if backend == "cython":
        dx = np.zeros(x_shape, dtype=dout.dtype)
        _backend.fastops().max_pool_backward(dout, argmax, dx)
        return dx
    N, C, H, W = x_shape
    dcols = np.zeros((size * size, dout.size), dtype=dout.dtype)
    dcols[argmax, np.arange(dout.size)] = dout.ravel()
    return col2im(dcols, (N * C, 1, H, W), size, size, stride, 0, backend=backend).reshape(x_shape)


def avg_pool_forward(x, size, stride, backend):
    """x (N, C, H, W) -> out (N, C, Ho, Wo), the mean of each window."""
    out_shape = pool_output_shape(x.shape, size, stride)
    if backend == "cython":
        out = np.empty(out_shape, dtype=x.dtype)
        _backend.fastops().avg_pool_forward(x, size, stride, out)
    else:
        out = _pool_columns(x, size, stride, backend).mean(axis=0).reshape(out_shape).astype(x.dtype, copy=False)
    return out, (x.shape, size, stride, backend)


def avg_pool_backward(dout, cache):
    x_shape, size, stride, backend = cache
    if backend == "cython":
        dx = np.zeros(x_shape, dtype=dout.dtype)
        _backend.fastops().avg_pool_backward(dout, size, stride, dx)
        return dx
    N, C, H, W = x_shape
    dcols = np.broadcast_to(dout.reshape(1, -1) / (size * size), (size * size, dout.size))
    dcols = np.ascontiguousarray(dcols, dtype=dout.dtype)
    return col2im(dcols, (N * C, 1, H, W), size, size, stride, 0, backend=backend).reshape(x_shape)
