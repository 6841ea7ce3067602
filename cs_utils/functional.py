"""The layers of a CNN, forward and backward, as plain functions.

Conventions (as in CS231n and PyTorch): images ``x`` are (N, C, H, W), filters
``w`` are (F, C, HH, WW), biases ``b`` are (F,). Every ``*_forward`` returns
``(out, cache)`` and the matching ``*_backward`` takes ``(dout, cache)``.

NumPy arrays in give NumPy arrays out; torch tensors in (CPU or CUDA) give
tensors out on the same device. ``backend`` chooses the implementation:

=========  ================================================================
"auto"     torch for tensors, else "cython" when built, else "numpy"
"naive"    nested loops, one output number at a time (cs_utils._naive)
"numpy"    im2col with NumPy stride tricks + one matrix product
"cython"   compiled im2col/col2im and pooling kernels + one matrix product
"torch"    torch's kernels, on the tensors' device
=========  ================================================================

All inputs are checked here, once, before any backend runs: a mistake gets an
error naming the parameter, the shape expected and the shape given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cs_utils import _backend, _fast, _naive
from cs_utils._backend import Like, is_tensor
from cs_utils._checks import (
    check_array,
    check_floating,
    check_hyper,
    check_integer,
    check_ndim,
    check_same_kind,
    common_float,
)
from cs_utils.shapes import conv_output_shape, conv_output_size, pool_output_shape

__all__ = [
    "conv1d",
    "convolve1d",
    "conv2d",
    "conv_forward",
    "conv_backward",
    "max_pool_forward",
    "max_pool_backward",
    "avg_pool_forward",
    "avg_pool_backward",
    "relu_forward",
    "relu_backward",
    "affine_forward",
    "affine_backward",
    "softmax_loss",
]


# ----------------------------------------------------------------------------
# The filters of the first lectures: one signal, one kernel
# ----------------------------------------------------------------------------


def _as_signal(name: str, a: Any, ndim: int, layout: str) -> np.ndarray:
    """A list becomes a float64 array; an array must already be floating point."""
    if isinstance(a, (list, tuple)):
        a = np.asarray(a, dtype=np.float64)
    check_ndim(name, a, ndim, layout)
    check_floating(name, a)
    return a


def conv1d(x, w, stride: int = 1, pad: int = 0) -> np.ndarray:
    """1-D cross-correlation (what deep learning calls convolution).

    ``out[i] = sum_k xpad[i*stride + k] * w[k]`` with ``pad`` zeros on each side.

    Args:
        x: signal, shape (L,).
        w: kernel, shape (K,).

    Returns:
        out of shape ((L - K + 2*pad)/stride + 1,).
    """
    x = _as_signal("x", x, 1, "(L,)")
    w = _as_signal("w", w, 1, "(K,)")
    (stride, pad) = check_hyper(stride=stride, pad=pad)
    conv_output_size(len(x), len(w), stride, pad)  # raises if the kernel does not fit
    xpad = np.pad(x, pad)
    windows = sliding_window_view(xpad, len(w))[::stride]  # (Lo, K), one window per row
    return windows @ w


def convolve1d(x, w, mode: str = "valid") -> np.ndarray:
    """True convolution: the kernel is flipped before it slides, ``out[t] = sum_a x[t - a] * w[a]``.

    Args:
        x: signal, shape (L,).
        w: kernel, shape (K,).
        mode: "valid" (only where the kernel fits, L - K + 1 values), "full" (every
            overlap, L + K - 1 values) or "same" (L values, centred as np.convolve does).
    """
    x = _as_signal("x", x, 1, "(L,)")
    w = _as_signal("w", w, 1, "(K,)")
    if mode not in ("valid", "same", "full"):
        raise ValueError(f"mode must be 'valid', 'same' or 'full'; got mode={mode!r}")
    k = len(w)
    if mode == "valid":
        return conv1d(x, w[::-1])
    full = conv1d(x, w[::-1], pad=k - 1)
    if mode == "full":
        return full
    start = (min(k, len(x)) - 1) // 2
    return full[start : start + max(len(x), k)]


def conv2d(image, kernel, stride: int = 1, pad: int = 0, backend: str = "auto"):
    """2-D cross-correlation of one single-channel image with one kernel.

    Args:
        image: shape (H, W).
        kernel: shape (kh, kw).

    Returns:
        out of shape ((H - kh + 2*pad)/stride + 1, (W - kw + 2*pad)/stride + 1),
        the same kind (NumPy or torch) as ``image``.
    """
    if isinstance(image, (list, tuple)):
        image = np.asarray(image, dtype=np.float64)
    if isinstance(kernel, (list, tuple)):
        kernel = np.asarray(kernel, dtype=np.float64)
    check_ndim("image", image, 2, "(H, W)")
    check_ndim("kernel", kernel, 2, "(kh, kw)")
    bias = kernel.new_zeros(1) if is_tensor(kernel) else np.zeros(1, dtype=kernel.dtype)
    out, _ = conv_forward(image[None, None], kernel[None, None], bias, stride, pad, backend=backend)
    return out[0, 0]


# ----------------------------------------------------------------------------
# Layers with a backend choice
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerCache:
    """What a forward pass keeps for its backward pass. Treat it as opaque."""

    layer: str
    backend: str
    out_shape: tuple
    like: Like
    data: tuple

    def __repr__(self) -> str:  # keep notebooks readable: never print the arrays inside
        return f"LayerCache(layer={self.layer!r}, backend={self.backend!r}, out_shape={self.out_shape})"


def _implementation(backend: str):
    if backend == "naive":
        return _naive
    if backend == "torch":
        from cs_utils import _torch_ops

        return _torch_ops
    return _fast


def _forward(layer: str, backend: str, like_of, arrays: list, *hyper):
    impl = _implementation(backend)
    args = _backend.for_backend(backend, *arrays)
    extra = (backend,) if impl is _fast else ()
    out, data = getattr(impl, f"{layer}_forward")(*args, *hyper, *extra)
    like = Like(like_of)
    return like.restore(out), LayerCache(layer, backend, tuple(int(s) for s in out.shape), like, data)


def _backward(layer: str, dout, cache):
    if not isinstance(cache, LayerCache) or cache.layer != layer:
        got = f"a cache from {cache.layer}_forward" if isinstance(cache, LayerCache) else type(cache).__name__
        raise TypeError(f"cache must be the second value returned by {layer}_forward; got {got}")
    check_array("dout", dout)
    check_floating("dout", dout)
    if tuple(int(s) for s in dout.shape) != cache.out_shape:
        raise ValueError(
            f"dout must have the shape of the forward output, {cache.out_shape}; got {tuple(dout.shape)}"
        )
    # a NumPy dout for a forward pass on a GPU goes to that GPU, where the cached tensors are
    (d,) = _backend.for_backend(cache.backend, dout, device=cache.like.device)
    grads = getattr(_implementation(cache.backend), f"{layer}_backward")(d, cache.data)
    if isinstance(grads, tuple):
        return tuple(cache.like.restore(g) for g in grads)
    return cache.like.restore(grads)


def conv_forward(x, w, b, stride: int = 1, pad: int = 0, backend: str = "auto"):
    """Convolutional layer, forward.

    Args:
        x: images, shape (N, C, H, W).
        w: filters, shape (F, C, HH, WW).
        b: biases, shape (F,).
        stride: step of the filter, >= 1; pad: zeros on each side, >= 0.
        backend: "auto", "naive", "numpy", "cython" or "torch".

    Returns:
        out: shape (N, F, Ho, Wo) with Ho = (H - HH + 2*pad)/stride + 1 (likewise Wo).
        cache: for conv_backward.
    """
    check_ndim("x", x, 4, "(N, C, H, W)")
    check_ndim("w", w, 4, "(F, C, HH, WW)")
    check_ndim("b", b, 1, "(F,)")
    check_same_kind(x=x, w=w, b=b)
    for name, a in (("x", x), ("w", w), ("b", b)):
        check_floating(name, a)
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"x has C={x.shape[1]} channels but w expects C={w.shape[1]}: w must have shape "
            f"(F, {x.shape[1]}, HH, WW) for x of shape {tuple(x.shape)}; got w of shape {tuple(w.shape)}"
        )
    if b.shape[0] != w.shape[0]:
        raise ValueError(f"b must have shape (F,) = ({w.shape[0]},), one bias per filter of w; got {tuple(b.shape)}")
    stride, pad = check_hyper(stride=stride, pad=pad)
    conv_output_shape(x.shape, w.shape, stride, pad)  # a filter or stride that does not fit raises here
    backend = _backend.resolve_backend(backend, x)
    return _forward("conv", backend, x, common_float(x, w, b), stride, pad)


def conv_backward(dout, cache):
    """Convolutional layer, backward.

    Args:
        dout: upstream gradient, shape (N, F, Ho, Wo).
        cache: from conv_forward.

    Returns:
        dx (N, C, H, W), dw (F, C, HH, WW), db (F,).
    """
    return _backward("conv", dout, cache)


def _check_pool(x, size, stride):
    check_ndim("x", x, 4, "(N, C, H, W)")
    check_floating("x", x)
    size, stride = check_hyper(size=size, stride=stride)
    pool_output_shape(x.shape, size, stride)  # windows that do not tile the input raise here
    return size, stride


def max_pool_forward(x, size: int = 2, stride: int = 2, backend: str = "auto"):
    """Max pooling, forward: the largest value of each ``size`` x ``size`` window.

    Args:
        x: shape (N, C, H, W).
        size: window height and width; stride: step between windows (stride < size overlaps).

    Returns:
        out: shape (N, C, (H - size)/stride + 1, (W - size)/stride + 1); cache.
    """
    size, stride = _check_pool(x, size, stride)
    backend = _backend.resolve_backend(backend, x)
    return _forward("max_pool", backend, x, [x], size, stride)


def max_pool_backward(dout, cache):
    """Max pooling, backward: each window's gradient goes to its maximum (the first one
    in row-major order when several tie); where windows overlap, gradients add up.

    Returns dx of shape (N, C, H, W).
    """
    return _backward("max_pool", dout, cache)


def avg_pool_forward(x, size: int = 2, stride: int = 2, backend: str = "auto"):
    """Average pooling, forward: the mean of each ``size`` x ``size`` window. Shapes as max_pool_forward."""
    size, stride = _check_pool(x, size, stride)
    backend = _backend.resolve_backend(backend, x)
    return _forward("avg_pool", backend, x, [x], size, stride)


def avg_pool_backward(dout, cache):
    """Average pooling, backward: each window's gradient is spread evenly over its
    size*size inputs; overlaps add up. Returns dx of shape (N, C, H, W)."""
    return _backward("avg_pool", dout, cache)


# ----------------------------------------------------------------------------
# Element-wise and dense layers: one formula, NumPy or torch
# ----------------------------------------------------------------------------


def _copy(a):
    return a.detach().clone() if is_tensor(a) else a.copy()


def relu_forward(x):
    """ReLU, forward: ``max(0, x)`` element-wise. x of any shape -> out of the same shape; cache."""
    check_array("x", x)
    check_floating("x", x)
    out = x.clamp(min=0) if is_tensor(x) else np.maximum(x, 0)
    return out, _copy(x)


def relu_backward(dout, cache):
    """ReLU, backward: the gradient passes where the input was positive. Returns dx."""
    x = cache
    check_array("dout", dout)
    if tuple(dout.shape) != tuple(x.shape):
        raise ValueError(f"dout must have the shape of x, {tuple(x.shape)}; got {tuple(dout.shape)}")
    return dout * (x > 0)


def affine_forward(x, w, b):
    """Fully connected layer, forward: ``out = x.reshape(N, D) @ w + b``.

    Args:
        x: shape (N, d1, ..., dk) with D = d1*...*dk.
        w: shape (D, M).
        b: shape (M,).

    Returns:
        out of shape (N, M); cache.
    """
    for name, a in (("x", x), ("w", w), ("b", b)):
        check_array(name, a)
    check_same_kind(x=x, w=w, b=b)
    if x.ndim < 2:
        raise ValueError(f"x must have shape (N, d1, ..., dk) with a batch axis first; got shape {tuple(x.shape)}")
    if 0 in tuple(x.shape):
        raise ValueError(f"x must not be empty: expected shape (N, d1, ..., dk) with every size >= 1; got {tuple(x.shape)}")
    check_ndim("w", w, 2, "(D, M)")
    check_ndim("b", b, 1, "(M,)")
    for name, a in (("x", x), ("w", w), ("b", b)):
        check_floating(name, a)
    n = x.shape[0]
    d = int(np.prod(x.shape[1:]))
    if w.shape[0] != d:
        raise ValueError(
            f"w must have shape (D, M) with D = {' * '.join(str(s) for s in x.shape[1:])} = {d} "
            f"for x of shape {tuple(x.shape)}; got w of shape {tuple(w.shape)}"
        )
    if b.shape[0] != w.shape[1]:
        raise ValueError(f"b must have shape (M,) = ({w.shape[1]},) to match w {tuple(w.shape)}; got {tuple(b.shape)}")
    x, w, b = common_float(x, w, b)
    out = x.reshape(n, d) @ w + b
    return out, (_copy(x), _copy(w))


def affine_backward(dout, cache):
    """Fully connected layer, backward.

    Args:
        dout: shape (N, M).

    Returns:
        dx (N, d1, ..., dk), dw (D, M), db (M,).
    """
    x, w = cache
    check_array("dout", dout)
    expected = (x.shape[0], w.shape[1])
    if tuple(dout.shape) != tuple(expected):
        raise ValueError(f"dout must have shape (N, M) = {tuple(expected)}; got {tuple(dout.shape)}")
    x_rows = x.reshape(x.shape[0], -1)
    dx = (dout @ w.T).reshape(x.shape)
    dw = x_rows.T @ dout
    db = dout.sum(0)
    return dx, dw, db


def softmax_loss(scores, y):
    """Softmax cross-entropy, averaged over the batch.

    Args:
        scores: class scores, shape (N, K).
        y: labels, shape (N,), integers in [0, K).

    Returns:
        loss (a Python float) and dscores of shape (N, K).
    """
    check_ndim("scores", scores, 2, "(N, K)")
    check_floating("scores", scores)
    check_ndim("y", y, 1, "(N,)")
    n, k = (int(s) for s in scores.shape)
    if int(y.shape[0]) != n:
        raise ValueError(f"y must have shape (N,) = ({n},), one label per row of scores; got {tuple(y.shape)}")
    check_same_kind(scores=scores, y=y)
    check_integer("y", y)
    if int(y.min()) < 0 or int(y.max()) >= k:
        raise ValueError(f"y must hold labels in [0, {k}) for scores with K={k} classes; got labels from {int(y.min())} to {int(y.max())}")
    if is_tensor(scores):
        import torch

        scores = scores.detach()  # a loss value and its gradient, not a node of an autograd graph
        shifted = scores - scores.amax(dim=1, keepdim=True)
        log_probs = shifted - torch.logsumexp(shifted, dim=1, keepdim=True)
        rows = torch.arange(n, device=scores.device)
        loss = -log_probs[rows, y].mean()
        dscores = log_probs.exp()
        dscores[rows, y] -= 1
        return float(loss), dscores / n
    y = np.asarray(y)
    shifted = scores - scores.max(axis=1, keepdims=True)  # for numerical stability; softmax is unchanged
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(n), y].mean()
    dscores = np.exp(log_probs)
    dscores[np.arange(n), y] -= 1
    return float(loss), dscores / n
