"""The torch backend: the same layers with torch's kernels, on the tensors' device.

Backward passes call the aten backward kernels directly (no autograd graph is
kept between forward and backward), so they run wherever the tensors live,
CPU or CUDA, without a round trip through the host.
"""

import torch
import torch.nn.functional as F


@torch.no_grad()
def conv_forward(x, w, b, stride, pad):
    out = F.conv2d(x, w, b, stride=stride, padding=pad)
    # clones: changing x or w after the forward pass must not change the backward
    return out, (x.detach().clone(), w.detach().clone(), stride, pad)


@torch.no_grad()
def conv_backward(dout, cache):
    x, w, stride, pad = cache
    dx, dw, db = torch.ops.aten.convolution_backward(
        dout.contiguous(), x, w, [w.shape[0]], [stride, stride], [pad, pad], [1, 1], False, [0, 0], 1, [True, True, True]
    )
    return dx, dw, db


@torch.no_grad()
def max_pool_forward(x, size, stride):
    out, indices = torch.ops.aten.max_pool2d_with_indices(x, [size, size], [stride, stride])
    return out, (x.detach(), size, stride, indices)  # only x's shape is read later


@torch.no_grad()
def max_pool_backward(dout, cache):
    x, size, stride, indices = cache
    return torch.ops.aten.max_pool2d_with_indices_backward(
        dout.contiguous(), x, [size, size], [stride, stride], [0, 0], [1, 1], False, indices
    )


@torch.no_grad()
def avg_pool_forward(x, size, stride):
    return F.avg_pool2d(x, size, stride), (x.detach(), size, stride)  # only x's shape is read later


@torch.no_grad()
def avg_pool_backward(dout, cache):
    x, size, stride = cache
    return torch.ops.aten.avg_pool2d_backward(dout.contiguous(), x, [size, size], [stride, stride], [0, 0], False, True, None)
