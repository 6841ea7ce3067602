"""The one place that decides which backend runs a layer, and converts arrays for it.

``backend="auto"`` picks torch for torch tensors (on whatever device they
live), the compiled Cython kernels for NumPy input when they are built, and
the NumPy fallback otherwise. A forced backend converts its inputs (a torch
tensor given to a NumPy backend is copied to the host, and the result copied
back to the tensor's device), so every backend answers every input.

Set the environment variable ``CS_UTILS_NO_CYTHON=1`` before importing
cs_utils to pretend the extension is not built (the tests use this to run
the fallback).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

try:
    if os.environ.get("CS_UTILS_NO_CYTHON"):
        raise ImportError("disabled by CS_UTILS_NO_CYTHON")
    from cs_utils import _fastops  # type: ignore[attr-defined]

    HAVE_CYTHON = True
except ImportError:  # not built: the NumPy fallback serves
    _fastops = None
    HAVE_CYTHON = False

BACKENDS = ("auto", "naive", "numpy", "cython", "torch")
_NUMPY_FLOATS = ("torch.float16", "torch.float32", "torch.float64")  # torch dtypes NumPy also has


def is_tensor(a: Any) -> bool:
    """True for a torch.Tensor, without importing torch when nobody else has."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(a, torch.Tensor)


def resolve_backend(backend: str, x: Any) -> str:
    """Name of the backend that will run for input ``x`` when ``backend`` is asked for."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; got backend={backend!r}")
    if backend == "auto":
        if is_tensor(x):
            return "torch"
        return "cython" if HAVE_CYTHON else "numpy"
    if backend == "cython" and not HAVE_CYTHON:
        raise RuntimeError(
            "backend='cython' was requested but the extension cs_utils._fastops is not built "
            "(run `make setup`, or use backend='numpy')"
        )
    return backend


def fastops():
    """The compiled kernels module; only call after resolve_backend() said 'cython'."""
    return _fastops


class Like:
    """Remembers what kind of array the caller passed, to hand results back the same way."""

    __slots__ = ("is_torch", "device")

    def __init__(self, template: Any):
        self.is_torch = is_tensor(template)
        self.device = template.device if self.is_torch else None

    def restore(self, a: Any) -> Any:
        """Return ``a`` as the caller's kind: a NumPy array, or a tensor on the caller's device."""
        if a is None:
            return None
        if self.is_torch:
            import torch

            if isinstance(a, torch.Tensor):
                return a.to(self.device)
            return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
        if is_tensor(a):
            return a.detach().cpu().numpy()
        return a


def for_backend(backend: str, *arrays: Any, device: Any = None) -> list[Any]:
    """Convert ``arrays`` to what ``backend`` computes on: tensors for torch, NumPy otherwise.

    NumPy arrays bound for torch go to ``device``, else to the device of the first tensor
    among ``arrays``, else to the CPU.
    """
    if backend == "torch":
        import torch

        if device is None:
            device = next((a.device for a in arrays if is_tensor(a)), torch.device("cpu"))
        return [a if is_tensor(a) else torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays]
    return [tensor_to_numpy(a, f"backend={backend!r}") if is_tensor(a) else np.ascontiguousarray(a) for a in arrays]


def tensor_to_numpy(t: Any, who: str) -> np.ndarray:
    """A tensor's values as a NumPy array on the host; ``who`` names the caller in errors."""
    if t.device.type == "meta":
        raise ValueError(f"tensors on the 'meta' device hold no values; {who} needs real data")
    if t.is_floating_point() and str(t.dtype) not in _NUMPY_FLOATS:
        raise TypeError(f"{who} computes with NumPy, which has no {t.dtype}; convert the tensor with .float()")
    return np.ascontiguousarray(t.detach().cpu().numpy())
