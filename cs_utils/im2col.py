"""im2col and col2im: turn a convolution into one matrix product.

Every receptive field of the (zero-padded) input becomes one column of a
matrix, so that a convolution with ``F`` filters is ``w.reshape(F, -1) @ cols``.

Layout (a contract that the lectures draw and the assignments fill in)::

    cols.shape == (C*fh*fw, N*Ho*Wo)
    row    = c*fh*fw + i*fw + j      channel c, filter row i, filter column j
    column = n*Ho*Wo + ho*Wo + wo    image n, output row ho, output column wo

``col2im`` is the adjoint: it adds every column back where it came from, so
overlapping receptive fields (stride < filter size) sum up, which is exactly
the gradient of ``im2col``.

The compiled Cython kernels run when they are built (``HAVE_CYTHON``); the
NumPy fallback uses stride tricks and gives the same answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cs_utils import _backend
from cs_utils._backend import HAVE_CYTHON
from cs_utils._checks import check_floating, check_hyper, check_ndim
from cs_utils.shapes import conv_output_size

__all__ = ["im2col", "col2im", "HAVE_CYTHON"]


def _output_hw(h: int, w: int, fh: int, fw: int, stride: int, pad: int) -> tuple[int, int]:
    return (
        conv_output_size(h, fh, stride, pad, axis="height"),
        conv_output_size(w, fw, stride, pad, axis="width"),
    )


def _pick(backend: str, x: Any) -> str:
    """im2col has no naive flavour of its own: 'naive' means the readable NumPy code."""
    name = _backend.resolve_backend(backend, x)
    return "numpy" if name == "naive" else name


def im2col(x, fh: int, fw: int, stride: int = 1, pad: int = 0, backend: str = "auto"):
    """Columns of receptive fields.

    Args:
        x: images, shape (N, C, H, W), floating point (NumPy array or torch tensor).
        fh, fw: filter height and width.
        stride, pad: as in the convolution.
        backend: "auto", "numpy", "cython" or "torch".

    Returns:
        cols of shape (C*fh*fw, N*Ho*Wo), same kind and dtype as ``x``.
    """
    check_ndim("x", x, 4, "(N, C, H, W)")
    check_floating("x", x)
    fh, fw, stride, pad = check_hyper(fh=fh, fw=fw, stride=stride, pad=pad)
    n, c, h, w = (int(s) for s in x.shape)
    ho, wo = _output_hw(h, w, fh, fw, stride, pad)
    name = _pick(backend, x)
    like = _backend.Like(x)
    (xs,) = _backend.for_backend(name, x)
    if name == "torch":
        import torch.nn.functional as F

        # unfold gives (N, C*fh*fw, Ho*Wo) with the same row order as ours.
        cols = F.unfold(xs, (fh, fw), stride=stride, padding=pad).permute(1, 0, 2).reshape(c * fh * fw, n * ho * wo)
        return like.restore(cols.contiguous())
    cols = np.empty((c * fh * fw, n * ho * wo), dtype=xs.dtype)
    if name == "cython":
        _backend.fastops().im2col(xs, fh, fw, stride, pad, cols)
    else:
        xp = np.pad(xs, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        # windows[n, c, ho, wo, i, j] = xp[n, c, ho*stride + i, wo*stride + j]  (a view, no copy)
        windows = sliding_window_view(xp, (fh, fw), axis=(2, 3))[:, :, ::stride, ::stride]
        cols[...] = windows.transpose(1, 4, 5, 0, 2, 3).reshape(c * fh * fw, n * ho * wo)
    return like.restore(cols)


def col2im(cols, x_shape, fh: int, fw: int, stride: int = 1, pad: int = 0, backend: str = "auto"):
    """Add the columns back into an image-shaped array (the adjoint of :func:`im2col`).

    Args:
        cols: shape (C*fh*fw, N*Ho*Wo).
        x_shape: (N, C, H, W) of the images the columns came from.

    Returns:
        dx of shape ``x_shape``; where receptive fields overlap, their values add up.
    """
    check_ndim("cols", cols, 2, "(C*fh*fw, N*Ho*Wo)")
    check_floating("cols", cols)
    if len(x_shape) != 4:
        raise ValueError(f"x_shape must be (N, C, H, W); got {tuple(x_shape)}")
    fh, fw, stride, pad = check_hyper(fh=fh, fw=fw, stride=stride, pad=pad)
    n, c, h, w = (int(s) for s in x_shape)
    ho, wo = _output_hw(h, w, fh, fw, stride, pad)
    expected = (c * fh * fw, n * ho * wo)
    if tuple(cols.shape) != expected:
        raise ValueError(
            f"cols must have shape (C*fh*fw, N*Ho*Wo) = {expected} for x_shape={tuple(x_shape)}, "
            f"fh={fh}, fw={fw}, stride={stride}, pad={pad}; got {tuple(cols.shape)}"
        )
    name = _pick(backend, cols)
    like = _backend.Like(cols)
    (cs,) = _backend.for_backend(name, cols)
    if name == "torch":
        import torch.nn.functional as F

        folded = cs.reshape(c * fh * fw, n, ho * wo).permute(1, 0, 2)
        return like.restore(F.fold(folded, (h, w), (fh, fw), stride=stride, padding=pad))
    if name == "cython":
        dx = np.zeros((n, c, h, w), dtype=cs.dtype)
        _backend.fastops().col2im(cs, fh, fw, stride, pad, dx)
        return like.restore(dx)
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cs.dtype)
    cols6 = cs.reshape(c, fh, fw, n, ho, wo).transpose(3, 0, 1, 2, 4, 5)  # (N, C, fh, fw, Ho, Wo)
    for i in range(fh):
        for j in range(fw):
            dxp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride] += cols6[:, :, i, j]
    return like.restore(np.ascontiguousarray(dxp[:, :, pad : pad + h, pad : pad + w]))
