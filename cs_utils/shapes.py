"""Output-size arithmetic for convolution and pooling, with errors that teach.

The one formula of the course::

    W2 = (W1 - F + 2P) / S + 1

W1 is the input size along one axis, F the filter size, P the zero padding on
each side and S the stride. When the division does not come out even, the
filter does not tile the padded input and we refuse with the arithmetic
written out, e.g. ``(7 - 3 + 2*0)/3 + 1 = 2.33 is not an integer``.

Every shape question in cs_utils (the layers, im2col, the architecture
summaries) is answered here and nowhere else.
"""

from __future__ import annotations

import numbers

__all__ = [
    "conv_output_size",
    "pool_output_size",
    "same_padding",
    "conv_output_shape",
    "pool_output_shape",
]


def _check_int(name: str, value, minimum: int) -> int:
    """Return ``value`` as an int, or raise naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {value!r} of type {type(value).__name__}")
    value = int(value)
    if value < minimum:
        rule = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {rule} (>= {minimum}); got {name}={value}")
    return value


def conv_output_size(n: int, f: int, stride: int = 1, pad: int = 0, *, axis: str = "") -> int:
    """Output size of a convolution along one axis: ``(n - f + 2*pad)/stride + 1``.

    Args:
        n: input size (height or width), >= 1.
        f: filter size along the same axis, >= 1.
        stride: step between neighbouring windows, >= 1.
        pad: zeros added on each side, >= 0.
        axis: optional name of the axis ("height", "width") used in messages.

    Raises:
        ValueError: if the filter is larger than the padded input or the stride
            does not tile it; the message shows the arithmetic.
    """
    n = _check_int("n", n, 1)
    f = _check_int("f", f, 1)
    stride = _check_int("stride", stride, 1)
    pad = _check_int("pad", pad, 0)
    where = f" along the {axis}" if axis else ""
    if f > n + 2 * pad:
        raise ValueError(
            f"filter size f={f}{where} is larger than the padded input "
            f"n + 2*pad = {n} + 2*{pad} = {n + 2 * pad}: the filter does not fit even once"
        )
    span = n - f + 2 * pad
    if span % stride:
        raise ValueError(
            f"({n} - {f} + 2*{pad})/{stride} + 1 = {span / stride + 1:.2f} is not an integer: "
            f"stride={stride}{where} does not tile the padded input. Pick a stride that divides "
            f"n - f + 2*pad = {span}, or change the padding."
        )
    return span // stride + 1


def pool_output_size(n: int, f: int, stride: int, *, axis: str = "") -> int:
    """Output size of a pooling window along one axis: ``(n - f)/stride + 1``.

    Pooling uses no padding. Raises ``ValueError`` showing the arithmetic when
    the windows do not tile the input, e.g. ``(7 - 2)/2 + 1 = 3.50 is not an integer``.
    """
    n = _check_int("n", n, 1)
    f = _check_int("size", f, 1)
    stride = _check_int("stride", stride, 1)
    where = f" along the {axis}" if axis else ""
    if f > n:
        raise ValueError(f"pooling window size={f}{where} is larger than the input n={n}")
    span = n - f
    if span % stride:
        raise ValueError(
            f"({n} - {f})/{stride} + 1 = {span / stride + 1:.2f} is not an integer: "
            f"a {f}-wide pooling window with stride={stride}{where} does not tile an input of size {n}."
        )
    return span // stride + 1


def same_padding(f: int) -> int:
    """Zero padding that keeps the size at stride 1: ``P = (F - 1)/2``.

    Only odd filters have such a symmetric padding; an even one raises ``ValueError``.
    """
    f = _check_int("f", f, 1)
    if f % 2 == 0:
        raise ValueError(
            f"same_padding(f={f}): keeping the size needs (n - {f} + 2P)/1 + 1 = n, "
            f"i.e. P = ({f} - 1)/2 = {(f - 1) / 2}, which is not an integer; use an odd filter size"
        )
    return (f - 1) // 2


def conv_output_shape(x_shape, w_shape, stride: int = 1, pad: int = 0) -> tuple[int, int, int, int]:
    """``(N, F, Ho, Wo)`` of a convolution of images ``(N, C, H, W)`` with filters ``(F, C, HH, WW)``."""
    n, _, h, w = x_shape
    f, _, hh, ww = w_shape
    return (
        int(n),
        int(f),
        conv_output_size(h, hh, stride, pad, axis="height"),
        conv_output_size(w, ww, stride, pad, axis="width"),
    )


def pool_output_shape(x_shape, size: int, stride: int) -> tuple[int, int, int, int]:
    """``(N, C, Ho, Wo)`` of pooling images ``(N, C, H, W)`` with a ``size`` x ``size`` window."""
    n, c, h, w = x_shape
    return (
        int(n),
        int(c),
        pool_output_size(h, size, stride, axis="height"),
        pool_output_size(w, size, stride, axis="width"),
    )
