"""The readable reference: every layer as plain nested loops over NumPy arrays.

This is the code the lectures show. It is slow on purpose: one output number
per loop iteration, exactly as the formulas are written on the slides. The
public entry points (with checks and backend choice) are in cs_utils.functional.
"""

import numpy as np

from cs_utils.shapes import conv_output_shape, pool_output_shape


def conv_forward(x, w, b, stride, pad):
    """out[n, f, i, j] = sum over (c, p, q) of xpad[n, c, i*S + p, j*S + q] * w[f, c, p, q] + b[f].

    x (N, C, H, W), w (F, C, HH, WW), b (F,) -> out (N, F, Ho, Wo).
    """
    N, F, Ho, Wo = conv_output_shape(x.shape, w.shape, stride, pad)
    HH, WW = w.shape[2:]
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xpad[n, :, i * stride : i * stride + HH, j * stride : j * stride + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out, (x.copy(), w.copy(), stride, pad)


def conv_backward(dout, cache):
    """Each output touched one window: send dout back to that window (dx) and its weights (dw)."""
    x, w, stride, pad = cache
    N, F, Ho, Wo = dout.shape
    HH, WW = w.shape[2:]
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    rows = slice(i * stride, i * stride + HH)
                    cols = slice(j * stride, j * stride + WW)
                    dxpad[n, :, rows, cols] += w[f] * dout[n, f, i, j]
                    dw[f] += xpad[n, :, rows, cols] * dout[n, f, i, j]
    dx = dxpad[:, :, pad : pad + x.shape[2], pad : pad + x.shape[3]]
    return np.ascontiguousarray(dx), dw, db


def _pool_windows(x, size, stride, reduce):
    """out[n, c, i, j] = reduce(the size x size window at (i*S, j*S)). x (N, C, H, W) -> (N, C, Ho, Wo)."""
    N, C, Ho, Wo = pool_output_shape(x.shape, size, stride)
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    out[n, c, i, j] = reduce(x[n, c, i * stride : i * stride + size, j * stride : j * stride + size])
    return out


def max_pool_forward(x, size, stride):
    """out[n, c, i, j] = max of the size x size window at (i*S, j*S). x (N, C, H, W) -> (N, C, Ho, Wo)."""
    return _pool_windows(x, size, stride, np.max), (x.copy(), size, stride)


def max_pool_backward(dout, cache):
    """The gradient of a max goes to the winner alone: the first maximum of the window in
    row-major order (np.argmax), as torch does. Overlapping windows add up."""
    x, size, stride = cache
    N, C, Ho, Wo = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = x[n, c, i * stride : i * stride + size, j * stride : j * stride + size]
                    p, q = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * stride + p, j * stride + q] += dout[n, c, i, j]
    return dx


def avg_pool_forward(x, size, stride):
    """out[n, c, i, j] = mean of the size x size window at (i*S, j*S)."""
    return _pool_windows(x, size, stride, np.mean), (x.shape, size, stride)


def avg_pool_backward(dout, cache):
    """Every input of a window gets 1/size**2 of that window's gradient; overlaps add up."""
    x_shape, size, stride = cache
    N, C, Ho, Wo = dout.shape
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    dx[n, c, i * stride : i * stride + size, j * stride : j * stride + size] += dout[n, c, i, j] / size**2
    return dx
