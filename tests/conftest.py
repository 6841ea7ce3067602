"""Shared test helpers.

Oracles live here: torch autograd in float64 computes every reference value;
no test compares a cs_utils function with itself.
"""

import numpy as np
import pytest
import torch

from cs_utils.im2col import HAVE_CYTHON

# Every backend that must give the same answer. The Cython one is skipped (with the
# reason) only where the extension could not be built; `make test` builds it.
BACKENDS = [
    "naive",
    "numpy",
    pytest.param("cython", marks=pytest.mark.skipif(not HAVE_CYTHON, reason="Cython extension not built")),
    "torch",
]
FAST_BACKENDS = [b for b in BACKENDS if b != "naive"]

# CUDA cases run wherever a GPU is present and skip with the reason everywhere else (CI has none).
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine"),
    ),
]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def torch_grads(fn, inputs, dout):
    """Run ``fn(*tensors)`` with autograd in float64; return (out, [grad of each input])."""
    tensors = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in inputs]
    out = fn(*tensors)
    out.backward(torch.tensor(np.asarray(dout, dtype=np.float64)))
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]
