"""Input checks shared by the public functions: each error names the parameter,
what was expected and what was given."""

from __future__ import annotations

from typing import Any

import numpy as np

from cs_utils._backend import is_tensor
from cs_utils.shapes import _check_int

_MINIMUM = {"stride": 1, "pad": 0, "size": 1, "fh": 1, "fw": 1}
_LIMIT = 2**31  # far beyond any real layer; keeps sizes inside the compiled kernels' integers


def check_array(name: str, a: Any) -> None:
    """``a`` must be a NumPy array or a torch tensor."""
    if not (isinstance(a, np.ndarray) or is_tensor(a)):
        raise TypeError(
            f"{name} must be a NumPy array or a torch tensor; got {type(a).__name__} "
            f"(wrap a list with np.asarray({name}, dtype=float))"
        )


def check_ndim(name: str, a: Any, ndim: int, layout: str) -> None:
    """``a`` must be an array with ``ndim`` dimensions laid out as ``layout``, none of them empty."""
    check_array(name, a)
    shape = tuple(int(s) for s in a.shape)
    if len(shape) != ndim:
        hint = ""
        if ndim == 4 and len(shape) == 3:
            hint = f"; a single image needs a batch axis: {name}[None] has shape {(1,) + shape}"
        elif ndim == 4 and len(shape) == 2:
            hint = f"; a single-channel image needs batch and channel axes: {name}[None, None]"
        raise ValueError(f"{name} must be {ndim}-D with shape {layout}; got shape {shape} ({len(shape)}-D){hint}")
    if 0 in shape:
        raise ValueError(f"{name} must not be empty: expected shape {layout} with every size >= 1; got {shape}")


def check_floating(name: str, a: Any) -> None:
    """``a`` must hold floating-point numbers (float16/32/64)."""
    if is_tensor(a):
        ok = a.is_floating_point()
    else:
        ok = np.issubdtype(a.dtype, np.floating)
    if not ok:
        raise TypeError(
            f"{name} must have a floating-point dtype; got dtype {a.dtype} "
            f"(convert it, e.g. {name}.astype(np.float64) or {name}.double())"
        )


def check_integer(name: str, a: Any) -> None:
    """``a`` must hold integers (class labels, indices)."""
    if is_tensor(a):
        import torch

        ok = not (a.is_floating_point() or a.is_complex() or a.dtype == torch.bool)
    else:
        ok = np.issubdtype(a.dtype, np.integer)
    if not ok:
        raise TypeError(f"{name} must hold integers; got dtype {a.dtype}")


def check_hyper(**params: Any) -> tuple[int, ...]:
    """Integers for stride (>= 1), pad (>= 0), window sizes (>= 1), in the order given."""
    values = tuple(_check_int(name, value, _MINIMUM[name]) for name, value in params.items())
    for name, value in zip(params, values):
        if value >= _LIMIT:
            raise ValueError(f"{name} must be less than 2**31; got {name}={value}")
    return values


def check_same_kind(**arrays: Any) -> None:
    """All arrays are NumPy, or all are torch tensors on one device."""
    kinds = {name: ("torch", str(a.device)) if is_tensor(a) else ("numpy", "cpu") for name, a in arrays.items()}
    if len({k for k, _ in kinds.values()}) > 1:
        described = ", ".join(f"{n} is a {'torch tensor' if k == 'torch' else 'NumPy array'}" for n, (k, _) in kinds.items())
        raise TypeError(f"pass all arrays as NumPy arrays or all as torch tensors; {described}")
    devices = {d for _, d in kinds.values()}
    if len(devices) > 1:
        described = ", ".join(f"{n} on {d}" for n, (_, d) in kinds.items())
        raise ValueError(f"all tensors must be on one device; got {described}")


def common_float(*arrays: Any) -> list[Any]:
    """Cast arrays to their common floating dtype (float32 with float64 gives float64)."""
    if is_tensor(arrays[0]):
        import torch

        dtype = arrays[0].dtype
        for a in arrays[1:]:
            dtype = torch.promote_types(dtype, a.dtype)
        return [a.to(dtype) for a in arrays]
    dtype = np.result_type(*[a.dtype for a in arrays])
    return [a.astype(dtype, copy=False) for a in arrays]
