"""Gradient checking: compare an analytic gradient with a numerical one.

    rel_error(dx, dx_num) < 1e-7   float64, smooth function: the gradient is right
    around 1e-2 or more             something is wrong (or a kink such as ReLU at 0 was crossed)
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from cs_utils._backend import is_tensor, tensor_to_numpy
from cs_utils._checks import check_array

__all__ = ["rel_error", "numerical_gradient"]


def _to_numpy(name: str, a: Any) -> np.ndarray:
    if np.isscalar(a):
        return np.asarray(a, dtype=np.float64)
    check_array(name, a)
    return tensor_to_numpy(a, name) if is_tensor(a) else np.asarray(a)


def rel_error(a, b) -> float:
    """Largest element-wise relative error ``|a - b| / max(1e-8, |a| + |b|)``.

    a and b are arrays (NumPy or torch) or numbers of the same shape.
    """
    a64 = _to_numpy("a", a).astype(np.float64)
    b64 = _to_numpy("b", b).astype(np.float64)
    if a64.shape != b64.shape:
        raise ValueError(f"a and b must have the same shape; got a {a64.shape} and b {b64.shape}")
    if a64.size == 0:
        return 0.0
    return float(np.max(np.abs(a64 - b64) / np.maximum(1e-8, np.abs(a64) + np.abs(b64))))


def numerical_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray, df=None, h: float = 1e-5) -> np.ndarray:
    """Centered-difference gradient of ``f`` at ``x``.

    For a scalar-valued ``f`` this is d f / d x. For an array-valued ``f`` pass the
    upstream gradient ``df`` (same shape as ``f(x)``): the result is the gradient of
    ``sum(f(x) * df)``, i.e. what a backward pass returns for that ``dout``.
    Without ``df`` an array-valued ``f`` is summed.

    ``x`` (a floating NumPy array) is changed in place while probing and restored
    afterwards; ``f`` must read it, not a copy made earlier.

    Returns:
        grad with the shape of ``x``.
    """
    check_array("x", x)
    if is_tensor(x) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must be a floating-point NumPy array (it is perturbed in place); got {type(x).__name__} {getattr(x, 'dtype', '')}")
    if h <= 0:
        raise ValueError(f"h must be positive; got h={h}")
    grad = np.zeros_like(x, dtype=np.float64)
    upstream = None if df is None else _to_numpy("df", df).astype(np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    for _ in it:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        plus = _to_numpy("f(x)", f(x)).astype(np.float64)
        x[ix] = old - h
        minus = _to_numpy("f(x)", f(x)).astype(np.float64)
        x[ix] = old
        diff = plus - minus
        if upstream is not None:
            if upstream.shape != diff.shape:
                raise ValueError(f"df must have the shape of f(x), {diff.shape}; got {upstream.shape}")
            diff = diff * upstream
        grad[ix] = diff.sum() / (2 * h)
    return grad.astype(x.dtype, copy=False)
