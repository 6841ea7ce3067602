"""Architecture specs: layer by layer shapes, parameters, memory and multiply-adds.

A network is written as a list of small, immutable layer specs::

    from cs_utils.arch import Conv, Pool, FC, ReLU, summarize

    layers = [Conv(96, 11, stride=4, name="conv1"), ReLU(), Pool(3, 2), FC(10)]
    s = summarize((3, 227, 227), layers)
    print(s)                 # a fixed-width table
    s.to_markdown()          # the same table as markdown (Jupyter renders it)
    s["conv1"].params        # 34944 = 96*(11*11*3) + 96
    s.total_params, s.total_macs, s.bytes_per_image

Layer specs: :class:`Conv`, :class:`Pool`, :class:`FC`, :class:`ReLU`, :class:`Tanh`, :class:`LRN`,
:class:`BatchNorm`, :class:`Dropout`, :class:`Softmax`, :class:`Flatten`, :class:`GlobalAvgPool`,
:class:`PositionBias`, and the blocks :class:`Inception`, :class:`Residual`, :class:`BasicBlock`,
:class:`Bottleneck` (``summarize(..., expand=True)`` lists their parts).

The named case studies (``lenet5()``, ``alexnet()``, ``zfnet()``, ``vgg16()``, ``vgg19()``,
``googlenet()``, ``resnet18()``, ``resnet34()``, ``resnet50()``, ``alphago_policy()``) return an
:class:`Architecture`: input shape, layers, reference, modelling notes, and the figures that the
papers and the course seeds state (:class:`Claim`), so a lecture can put the published number
next to the arithmetic (:meth:`Architecture.check_claims`). ``cs_utils.models`` builds torch
modules from the very same specs.

Conventions (read these before quoting a number)
------------------------------------------------
* Shapes are per image, in PyTorch order: ``(C, H, W)`` for feature maps, ``(D,)`` for vectors.
  The printed tables write them as the seeds do, ``H x W x C`` (``55x55x96``).
* **params** counts every trainable number: weights, biases, batch-norm scale and shift.
  **weights** counts only the weights of conv and FC layers (the seeds' tables often say
  "not counting biases"; compare those with ``weights``).
* **multiply-adds** (MACs) counts the multiply-accumulates of conv and FC weights only:
  ``Ho*Wo*K*(C/groups)*F*F`` for a conv, ``D_in*D_out`` for an FC layer. Bias additions,
  ReLU, pooling, normalisation and residual additions count 0. This is the convention of the
  GoogLeNet ("ops") and ResNet ("FLOPs") tables, which are multiply-add counts.
* **memory** is forward activation memory for one image: the input plus every tensor a layer
  creates, in values. ReLU, Dropout and Flatten are counted as working in place (they add
  nothing: Caffe runs ReLU and Dropout in place, Dropout is the identity at inference, and
  Flatten is a view). A block (Inception, residual) counts every tensor it creates inside.
  ``bytes_per_image`` is that count times 4 (float32); training needs roughly twice as much
  again for the gradients of the same tensors, plus the optimiser's state.

Padding and rounding
--------------------
All output sizes come from :mod:`cs_utils.shapes`, which refuses hyper-parameters that do not
tile the input. Published nets sometimes rely on a framework rounding for them. We model that
explicitly, never silently:

* ``pad=(lo, hi)`` pads ``lo`` zeros before and ``hi`` after (top/left and bottom/right);
  ``hi`` may be negative: that many trailing rows and columns are cropped, i.e. never read.
* ``rounding="floor"`` (PyTorch's and Caffe's convolution, PyTorch's default pooling):
  windows that would run past the padded input are dropped. With symmetric ``pad=p`` that is
  exactly the asymmetric padding ``(p, p - r)``, ``r = (n + 2p - f) mod s``: the last ``r`` rows
  are never reached. Example: torchvision's AlexNet at 224, ``(224 - 11 + 2*2)/4 + 1 = 55.25``
  -> effective padding ``(2, 1)``: ``(224 + 2 + 1 - 11)/4 + 1 = 55``.
* ``rounding="ceil"`` (Caffe pooling, GoogLeNet; ``ceil_mode=True`` in torch): one more window
  is kept and runs into extra padding that never wins a max: ``(p, p + r)``,
  ``r = (-(n + 2p - f)) mod s``. Example: GoogLeNet's pool at 112, ``(112 - 3)/2 + 1 = 55.5``
  -> padding ``(0, 1)``: ``(112 + 0 + 1 - 3)/2 + 1 = 56``.

The effective padding is shown in each row's description, so a table never hides it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Iterable, Sequence

from .shapes import conv_output_size, pool_output_size, same_padding

# The functions below that return an Architecture, by name; cs_utils.models builds a torch
# model of each under the same name.
SPEC_FUNCTIONS: tuple[str, ...] = (
    "lenet5", "alexnet", "zfnet", "vgg", "vgg16", "vgg19", "googlenet", "resnet", "resnet18", "resnet34",
    "resnet50", "alphago_policy",
)

__all__ = [
    # layer specs
    "Layer",
    "Conv",
    "Pool",
    "FC",
    "ReLU",
    "Tanh",
    "LRN",
    "BatchNorm",
    "Dropout",
    "Softmax",
    "Flatten",
    "GlobalAvgPool",
    "PositionBias",
    "Inception",
    "Residual",
    "BasicBlock",
    "Bottleneck",
    # summaries
    "Row",
    "Summary",
    "summarize",
    "effective_padding",
    "fmt_shape",
    "human",
    "human_bytes",
    "BYTES_PER_VALUE",
    # case studies
    "Claim",
    "ClaimCheck",
    "Architecture",
    "check_claims",
    "claims_table",
    *SPEC_FUNCTIONS,
    "SPEC_FUNCTIONS",
    "CASE_STUDIES",
    "case_study",
]

Shape = tuple[int, ...]
BYTES_PER_VALUE = 4  # float32
ROUNDINGS = ("exact", "floor", "ceil")


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------


def _int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {name}={value}")
    return int(value)


def _numel(shape: Shape) -> int:
    return math.prod(shape)


def fmt_shape(shape: Shape) -> str:
    """``(96, 55, 55)`` -> ``"55x55x96"`` (the seeds' H x W x C); ``(4096,)`` -> ``"4096"``."""
    if len(shape) == 3:
        c, h, w = shape
        return f"{h}x{w}x{c}"
    return "x".join(str(s) for s in shape)


def human(n: float) -> str:
    """Short form with 3 significant digits: 34944 -> '34.9K', 138357544 -> '138M', 3.66e9 -> '3.66G'."""
    n = float(n)
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            v = n / scale
            text = f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
            return text + unit
    return f"{n:.0f}" if n == int(n) else f"{n:.3g}"


def human_bytes(b: float) -> str:
    """Bytes in decimal units with the binary value beside: '61.0 MB (58.1 MiB)'."""
    for unit, scale, bunit, bscale in (("GB", 1e9, "GiB", 2**30), ("MB", 1e6, "MiB", 2**20), ("KB", 1e3, "KiB", 2**10)):
        if b >= scale:
            return f"{b / scale:.1f} {unit} ({b / bscale:.1f} {bunit})"
    return f"{b:.0f} bytes"


def _need_map(layer: "Layer", in_shape: Shape) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise ValueError(
            f"{type(layer).__name__} needs a feature map (C, H, W); got a vector of shape {in_shape}. "
            "Convolution and pooling must come before the first FC/Flatten layer."
        )
    return in_shape  # type: ignore[return-value]


def _check_pad(pad) -> int | tuple[int, int] | str:
    if isinstance(pad, str):
        if pad != "same":
            raise ValueError(f"pad must be an int, a pair (lo, hi) or 'same'; got pad={pad!r}")
        return pad
    if isinstance(pad, tuple):
        if len(pad) != 2:
            raise ValueError(f"pad as a tuple must be (lo, hi); got pad={pad!r}")
        lo = _int("pad[0] (padding before)", pad[0], 0)
        if isinstance(pad[1], bool) or not isinstance(pad[1], numbers.Integral):
            raise TypeError(f"pad[1] (padding after) must be an integer; got {pad[1]!r}")
        return (lo, int(pad[1]))
    return _int("pad", pad, 0)


def effective_padding(n: int, f: int, stride: int, pad=0, rounding: str = "exact") -> tuple[int, int]:
    """Padding ``(lo, hi)`` actually used along one axis, with the rounding made explicit.

    ``rounding="exact"`` returns the padding as given (``p`` -> ``(p, p)``); ``"floor"`` crops
    the ``r = (n + 2p - f) mod stride`` trailing rows that no window reaches: ``(p, p - r)``;
    ``"ceil"`` adds ``r = (-(n + 2p - f)) mod stride`` rows so that one more window fits:
    ``(p, p + r)``. The output size itself always comes from :func:`cs_utils.shapes.conv_output_size`
    applied to the effectively padded input.

    >>> effective_padding(224, 11, 4, 2, "floor")   # torchvision AlexNet conv1
    (2, 1)
    >>> effective_padding(112, 3, 2, 0, "ceil")     # GoogLeNet pool1
    (0, 1)
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}; got rounding={rounding!r}")
    if pad == "same":
        pad = same_padding(f)
    if isinstance(pad, tuple):
        if rounding != "exact":
            raise ValueError(
                f"an explicit pad=(lo, hi)={pad} already fixes the rounding; use rounding='exact', "
                f"not {rounding!r}"
            )
        return pad
    if rounding == "exact":
        return (pad, pad)
    span = n + 2 * pad - f
    if span < 0:  # let shapes explain that the filter does not fit at all
        conv_output_size(n, f, stride, pad)
    r = span % stride if rounding == "floor" else (-span) % stride
    return (pad, pad - r) if rounding == "floor" else (pad, pad + r)


def _spatial(n: int, f: int, stride: int, lo: int, hi: int, axis: str, pool: bool) -> int:
    """Output size along one axis, always through cs_utils.shapes."""
    if lo == hi:
        if pool and lo == 0:
            return pool_output_size(n, f, stride, axis=axis)
        if not pool:
            return conv_output_size(n, f, stride, lo, axis=axis)
    padded = n + lo + hi
    if padded < 1:
        raise ValueError(f"padding ({lo}, {hi}) crops the whole {axis} of size {n}")
    if pool:
        return pool_output_size(padded, f, stride, axis=axis)
    return conv_output_size(padded, f, stride, 0, axis=axis)


def _pad_describe(layer, in_shape, always: bool) -> str:
    """', pad 1', ', pad 3/2 (floor)' (rounding named only where it changed the padding)."""
    if in_shape is None:
        given = f", pad {layer.pad}" if (layer.pad or always) else ""
        return given + (f" ({layer.rounding})" if layer.rounding != "exact" else "")
    lo, hi = layer.padding(in_shape)
    if lo == hi:
        return f", pad {lo}" if (lo or always) else ""
    changed = layer.rounding != "exact"
    return f", pad {lo}/{hi}" + (f" ({layer.rounding})" if changed else "")


# ----------------------------------------------------------------------------------------------
# rows and analysis records
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of a summary.

    Attributes:
        name: unique name; inside a block ``block/branch/layer`` (``inception3a/3x3/reduce``).
        kind: ``"conv"``, ``"pool"``, ``"fc"``, ``"relu"``, ``"inception"``, ...
        description: the hyper-parameters, e.g. ``"conv 11x11/4, 96, pad 0"``.
        input_shape, output_shape: per image, ``(C, H, W)`` or ``(D,)``.
        params: trainable numbers (weights + biases + batch-norm scale/shift).
        weights: conv/FC weights only (no biases).
        activations: values in the output tensor.
        memory: values this layer adds to forward memory (0 for in-place layers; a block's
            whole internal footprint).
        macs: multiply-adds of conv/FC weights.
        depth: 0 for a top-level layer, 1 inside a block, ...
        leaf: True unless the row is a block whose parts follow as deeper rows.
        inplace: counted as working in place (ReLU, Dropout, Flatten).
    """

    name: str
    kind: str
    description: str
    input_shape: Shape
    output_shape: Shape
    params: int
    weights: int
    activations: int
    memory: int
    macs: int
    depth: int = 0
    leaf: bool = True
    inplace: bool = False

    @property
    def biases(self) -> int:
        """Trainable numbers that are not conv/FC weights (biases, batch-norm scale/shift)."""
        return self.params - self.weights

    def as_dict(self) -> dict:
        """Plain dict (shapes as tuples), e.g. for ``pandas.DataFrame(summary.records())``."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "input_shape": self.input_shape,
            "output_shape": self.output_shape,
            "params": self.params,
            "weights": self.weights,
            "activations": self.activations,
            "memory": self.memory,
            "macs": self.macs,
            "depth": self.depth,
        }


@dataclass
class _Trace:
    out: Shape
    params: int = 0
    weights: int = 0
    macs: int = 0
    memory: int = 0
    rows: list = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# layer specs
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """Base class of the specs. Subclasses define ``output_shape`` and, where they have them,
    ``params``/``weights``/``macs``. ``name`` (keyword only) labels the row and the torch module."""

    kind: ClassVar[str] = "layer"
    inplace: ClassVar[bool] = False

    name: str | None = field(default=None, kw_only=True)

    def output_shape(self, in_shape: Shape) -> Shape:
        raise NotImplementedError

    def params(self, in_shape: Shape) -> int:
        return 0

    def weights(self, in_shape: Shape) -> int:
        return 0

    def macs(self, in_shape: Shape) -> int:
        return 0

    def describe(self, in_shape: Shape | None = None) -> str:
        return self.kind

    def trace(self, in_shape: Shape, path: str, depth: int) -> _Trace:
        """Analyse the layer on ``in_shape``; composite blocks override this."""
        out = self.output_shape(in_shape)
        memory = 0 if self.inplace else _numel(out)
        t = _Trace(out, self.params(in_shape), self.weights(in_shape), self.macs(in_shape), memory)
        t.rows.append(
            Row(path, self.kind, self.describe(in_shape), tuple(in_shape), out, t.params, t.weights,
                _numel(out), memory, t.macs, depth, True, self.inplace)
        )
        return t


def _square_padding(layer: "Conv | Pool", in_shape: Shape) -> tuple[int, int]:
    """Effective ``(lo, hi)`` padding of a window layer (``f``, ``stride``, ``pad``, ``rounding``)
    on a ``(C, H, W)`` input; the same for height and width, or ValueError."""
    _, h, w = _need_map(layer, in_shape)
    pads = {effective_padding(n, layer.f, layer.stride, layer.pad, layer.rounding) for n in (h, w)}
    if len(pads) > 1:
        raise ValueError(f"non-square input {h}x{w} needs different paddings {sorted(pads)}")
    return pads.pop()


@dataclass(frozen=True)
class Conv(Layer):
    """``k`` filters of size ``f x f`` (and full input depth), stride ``stride``, zero padding ``pad``.

    Input ``(C, H, W)`` -> output ``(k, Ho, Wo)`` with ``Ho = (H - f + 2*pad)/stride + 1``.
    Parameters ``k*(C/groups)*f*f`` weights plus ``k`` biases (``bias=False``: none, as before
    batch norm). ``groups=2`` splits input and output channels in two halves that do not talk
    to each other (AlexNet's two GPUs). ``pad`` is an int, ``"same"`` or ``(lo, hi)``;
    ``rounding`` is ``"exact"``, ``"floor"`` or ``"ceil"`` (see the module docstring).
    """

    kind: ClassVar[str] = "conv"

    k: int
    f: int
    stride: int = 1
    pad: int | tuple[int, int] | str = 0
    bias: bool = True
    groups: int = 1
    rounding: str = "exact"

    def __post_init__(self):
        _int("k (number of filters)", self.k, 1)
        _int("f (filter size)", self.f, 1)
        _int("stride", self.stride, 1)
        _check_pad(self.pad)
        _int("groups", self.groups, 1)
        if self.k % self.groups:
            raise ValueError(f"groups={self.groups} must divide the number of filters k={self.k}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}; got rounding={self.rounding!r}")

    def padding(self, in_shape: Shape) -> tuple[int, int]:
        """Effective ``(lo, hi)`` padding on this input (same for height and width)."""
        return _square_padding(self, in_shape)

    def _in_channels(self, in_shape: Shape) -> int:
        c, _, _ = _need_map(self, in_shape)
        if c % self.groups:
            raise ValueError(
                f"groups={self.groups} must divide the input depth C={c} (input shape {fmt_shape(in_shape)})"
            )
        return c

    def output_shape(self, in_shape: Shape) -> Shape:
        self._in_channels(in_shape)
        _, h, w = in_shape
        lo, hi = self.padding(in_shape)
        return (
            self.k,
            _spatial(h, self.f, self.stride, lo, hi, "height", pool=False),
            _spatial(w, self.f, self.stride, lo, hi, "width", pool=False),
        )

    def weights(self, in_shape: Shape) -> int:
        return self.k * (self._in_channels(in_shape) // self.groups) * self.f * self.f

    def params(self, in_shape: Shape) -> int:
        return self.weights(in_shape) + (self.k if self.bias else 0)

    def macs(self, in_shape: Shape) -> int:
        _, ho, wo = self.output_shape(in_shape)
        return ho * wo * self.weights(in_shape)

    def describe(self, in_shape: Shape | None = None) -> str:
        text = f"conv {self.f}x{self.f}/{self.stride}, {self.k}"
        text += _pad_describe(self, in_shape, always=True)
        if self.groups > 1:
            text += f", groups {self.groups}"
        if not self.bias:
            text += ", no bias"
        return text


@dataclass(frozen=True)
class Pool(Layer):
    """``f x f`` pooling window at ``stride`` (default ``f``: windows that do not overlap).

    ``kind`` is ``"max"`` or ``"avg"``. No parameters. Input ``(C, H, W)`` -> ``(C, Ho, Wo)`` with
    ``Ho = (H - f)/stride + 1``. Padding (``pad``/``rounding``) never wins a max and is left out
    of an average.
    """

    kind: ClassVar[str] = "pool"

    f: int
    stride: int | None = None
    kind_: str = field(default="max", kw_only=True, repr=False)
    pad: int | tuple[int, int] = 0
    rounding: str = "exact"

    def __init__(self, f: int, stride: int | None = None, kind: str = "max", pad=0,
                 rounding: str = "exact", *, name: str | None = None):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "f", _int("f (window size)", f, 1))
        object.__setattr__(self, "stride", self.f if stride is None else _int("stride", stride, 1))
        if kind not in ("max", "avg"):
            raise ValueError(f"kind must be 'max' or 'avg'; got kind={kind!r}")
        object.__setattr__(self, "kind_", kind)
        object.__setattr__(self, "pad", _check_pad(pad))
        if pad == "same":
            raise ValueError("pad='same' is for convolutions; give the pooling padding as an int")
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}; got rounding={rounding!r}")
        object.__setattr__(self, "rounding", rounding)

    @property
    def mode(self) -> str:
        """``"max"`` or ``"avg"``."""
        return self.kind_

    def __repr__(self) -> str:
        extra = "" if self.kind_ == "max" else f", kind={self.kind_!r}"
        extra += f", pad={self.pad!r}" if self.pad else ""
        extra += f", rounding={self.rounding!r}" if self.rounding != "exact" else ""
        extra += f", name={self.name!r}" if self.name else ""
        return f"Pool({self.f}, {self.stride}{extra})"

    def padding(self, in_shape: Shape) -> tuple[int, int]:
        """Effective ``(lo, hi)`` padding on this input (same for height and width)."""
        return _square_padding(self, in_shape)

    def output_shape(self, in_shape: Shape) -> Shape:
        c, h, w = _need_map(self, in_shape)
        lo, hi = self.padding(in_shape)
        return (
            c,
            _spatial(h, self.f, self.stride, lo, hi, "height", pool=True),
            _spatial(w, self.f, self.stride, lo, hi, "width", pool=True),
        )

    def describe(self, in_shape: Shape | None = None) -> str:
        text = f"{self.kind_} pool {self.f}x{self.f}/{self.stride}"
        text += _pad_describe(self, in_shape, always=False)
        return text


@dataclass(frozen=True)
class FC(Layer):
    """Fully connected layer with ``n`` outputs. A feature map input ``(C, H, W)`` is flattened
    first (row-major, as torch's ``flatten(1)``). Parameters ``D_in*n + n`` (``bias=False``: no ``+ n``)."""

    kind: ClassVar[str] = "fc"

    n: int
    bias: bool = True

    def __post_init__(self):
        _int("n (number of outputs)", self.n, 1)

    def output_shape(self, in_shape: Shape) -> Shape:
        return (self.n,)

    def weights(self, in_shape: Shape) -> int:
        return _numel(in_shape) * self.n

    def params(self, in_shape: Shape) -> int:
        return self.weights(in_shape) + (self.n if self.bias else 0)

    def macs(self, in_shape: Shape) -> int:
        return self.weights(in_shape)

    def describe(self, in_shape: Shape | None = None) -> str:
        flat = "" if in_shape is None or len(in_shape) == 1 else f" (from {_numel(in_shape)})"
        return f"fc {self.n}{flat}"


@dataclass(frozen=True)
class _SameShape(Layer):
    """A layer whose output has its input's shape (elementwise functions, normalisations)."""

    def output_shape(self, in_shape: Shape) -> Shape:
        return tuple(in_shape)


@dataclass(frozen=True)
class ReLU(_SameShape):
    """``max(0, x)`` elementwise; same shape; no parameters; counted as in place."""

    kind: ClassVar[str] = "relu"
    inplace: ClassVar[bool] = True


@dataclass(frozen=True)
class Tanh(_SameShape):
    """``tanh(x)`` elementwise (LeNet-5's squashing function); same shape; no parameters."""

    kind: ClassVar[str] = "tanh"


@dataclass(frozen=True)
class LRN(Layer):
    """Local response normalisation across ``size`` neighbouring channels (AlexNet, GoogLeNet).

    ``b_c = a_c / (k + alpha * sum_{c' near c} a_{c'}^2) ** beta`` with the AlexNet paper's
    constants (size 5, alpha 1e-4, beta 0.75, k 2). ``alpha`` is the paper's (the sum is not
    divided by ``size``; torch's ``LocalResponseNorm`` divides, so models.py passes
    ``alpha*size``). No parameters; shape unchanged.
    """

    kind: ClassVar[str] = "norm"

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0

    def __post_init__(self):
        _int("size", self.size, 1)

    def output_shape(self, in_shape: Shape) -> Shape:
        _need_map(self, in_shape)
        return tuple(in_shape)

    def describe(self, in_shape: Shape | None = None) -> str:
        return f"LRN size {self.size}"


@dataclass(frozen=True)
class BatchNorm(_SameShape):
    """Batch normalisation: per channel scale and shift, ``2*C`` parameters (the running
    mean and variance are statistics, not parameters). Shape unchanged."""

    kind: ClassVar[str] = "bn"

    eps: float = 1e-5

    def params(self, in_shape: Shape) -> int:
        return 2 * in_shape[0]

    def describe(self, in_shape: Shape | None = None) -> str:
        return "batch norm"


@dataclass(frozen=True)
class Dropout(_SameShape):
    """Zero each value with probability ``p`` while training (scale the rest by ``1/(1-p)``);
    the identity at inference. No parameters; counted as in place."""

    kind: ClassVar[str] = "dropout"
    inplace: ClassVar[bool] = True

    p: float = 0.5

    def __post_init__(self):
        if not 0.0 <= float(self.p) < 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1); got p={self.p}")

    def describe(self, in_shape: Shape | None = None) -> str:
        return f"dropout {self.p:g}"


@dataclass(frozen=True)
class Softmax(_SameShape):
    """Softmax over the channels (over the vector for a ``(D,)`` input). Shape unchanged."""

    kind: ClassVar[str] = "softmax"


@dataclass(frozen=True)
class Flatten(Layer):
    """``(C, H, W)`` -> ``(C*H*W,)``, row-major; a view, so counted as in place."""

    kind: ClassVar[str] = "flatten"
    inplace: ClassVar[bool] = True

    def output_shape(self, in_shape: Shape) -> Shape:
        return (_numel(in_shape),)


@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    """Average of each channel over the whole map: ``(C, H, W)`` -> ``(C, 1, 1)``. No parameters."""

    kind: ClassVar[str] = "global_pool"

    def output_shape(self, in_shape: Shape) -> Shape:
        c, _, _ = _need_map(self, in_shape)
        return (c, 1, 1)

    def describe(self, in_shape: Shape | None = None) -> str:
        return "global avg pool"


@dataclass(frozen=True)
class PositionBias(_SameShape):
    """A learned bias for every position of the map, ``C*H*W`` parameters (AlphaGo's policy
    network ends with a 1x1 conv "with a different bias for each position")."""

    kind: ClassVar[str] = "position_bias"

    def params(self, in_shape: Shape) -> int:
        return _numel(in_shape)

    def describe(self, in_shape: Shape | None = None) -> str:
        return "bias per position"


# ----------------------------------------------------------------------------------------------
# running a list of layers, composite blocks
# ----------------------------------------------------------------------------------------------


def _auto_names(layers: Sequence[Layer], where: str) -> list[tuple[str, Layer]]:
    """Pair each layer with its name: the given one, or ``kind`` + running count per kind."""
    counts: dict[str, int] = {}
    named = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(
                f"{where}[{i}] must be a layer spec (Conv, Pool, FC, ...); got {layer!r} of type "
                f"{type(layer).__name__}"
            )
        counts[layer.kind] = counts.get(layer.kind, 0) + 1
        name = layer.name if layer.name is not None else f"{layer.kind}{counts[layer.kind]}"
        if not name or "/" in name or "." in name:
            raise ValueError(f"layer name {name!r} must be non-empty and contain neither '/' nor '.'")
        named.append((name, layer))
    seen = set()
    for name, _ in named:
        if name in seen:
            raise ValueError(f"two layers in {where} are both named {name!r}; names must be unique")
        seen.add(name)
    return named


def _run(named: Sequence[tuple[str, Layer]], in_shape: Shape, prefix: str, depth: int) -> _Trace:
    total = _Trace(tuple(in_shape))
    shape = tuple(in_shape)
    for name, layer in named:
        path = f"{prefix}/{name}" if prefix else name
        try:
            t = layer.trace(shape, path, depth)
        except (ValueError, TypeError) as exc:
            if getattr(exc, "_cs_layer", False):
                raise
            desc = layer.describe()
            new = type(exc)(f"layer '{path}' ({desc}) on input {fmt_shape(shape)} {shape}: {exc}")
            new._cs_layer = True  # type: ignore[attr-defined]
            raise new from exc
        total.params += t.params
        total.weights += t.weights
        total.macs += t.macs
        total.memory += t.memory
        total.rows.extend(t.rows)
        shape = t.out
    total.out = shape
    return total


class _Block(Layer):
    """A layer made of named parts; its row sums them, deeper rows list them."""

    def parts(self, in_shape: Shape) -> list[tuple[str, list[Layer]]]:
        raise NotImplementedError

    def output_shape(self, in_shape: Shape) -> Shape:
        return self.trace(in_shape, "block", 0).out

    def params(self, in_shape: Shape) -> int:
        return self.trace(in_shape, "block", 0).params

    def weights(self, in_shape: Shape) -> int:
        return self.trace(in_shape, "block", 0).weights

    def macs(self, in_shape: Shape) -> int:
        return self.trace(in_shape, "block", 0).macs

    def _finish(self, in_shape, path, depth, out, traces, extra_rows, extra_memory) -> _Trace:
        t = _Trace(out)
        for bt in traces:
            t.params += bt.params
            t.weights += bt.weights
            t.macs += bt.macs
            t.memory += bt.memory
        t.memory += extra_memory
        head = Row(path, self.kind, self.describe(in_shape), tuple(in_shape), out, t.params, t.weights,
                   _numel(out), t.memory, t.macs, depth, False, False)
        t.rows = [head] + [r for bt in traces for r in bt.rows] + extra_rows
        return t


@dataclass(frozen=True)
class Inception(_Block):
    """GoogLeNet's Inception module (with dimension reductions), the columns of the paper's table.

    Four branches on the same input, concatenated along the channels:
    ``1x1`` conv (``n1x1``); ``1x1`` reduce (``n3x3_reduce``) then ``3x3`` pad 1 (``n3x3``);
    ``1x1`` reduce (``n5x5_reduce``) then ``5x5`` pad 2 (``n5x5``); ``3x3`` max pool stride 1
    pad 1 then ``1x1`` projection (``pool_proj``). Every conv is followed by a ReLU.
    Output ``(n1x1 + n3x3 + n5x5 + pool_proj, H, W)``.
    """

    kind: ClassVar[str] = "inception"

    n1x1: int
    n3x3_reduce: int
    n3x3: int
    n5x5_reduce: int
    n5x5: int
    pool_proj: int

    def __post_init__(self):
        for f in ("n1x1", "n3x3_reduce", "n3x3", "n5x5_reduce", "n5x5", "pool_proj"):
            _int(f, getattr(self, f), 1)

    def parts(self, in_shape: Shape) -> list[tuple[str, list[Layer]]]:
        return [
            ("1x1", [Conv(self.n1x1, 1, name="conv"), ReLU(name="relu")]),
            ("3x3", [Conv(self.n3x3_reduce, 1, name="reduce"), ReLU(name="relu_reduce"),
                     Conv(self.n3x3, 3, pad=1, name="conv"), ReLU(name="relu")]),
            ("5x5", [Conv(self.n5x5_reduce, 1, name="reduce"), ReLU(name="relu_reduce"),
                     Conv(self.n5x5, 5, pad=2, name="conv"), ReLU(name="relu")]),
            ("pool", [Pool(3, 1, pad=1, name="pool"), Conv(self.pool_proj, 1, name="proj"),
                      ReLU(name="relu")]),
        ]

    @property
    def out_channels(self) -> int:
        return self.n1x1 + self.n3x3 + self.n5x5 + self.pool_proj

    def describe(self, in_shape: Shape | None = None) -> str:
        return (f"inception {self.n1x1}, {self.n3x3_reduce}>{self.n3x3}, "
                f"{self.n5x5_reduce}>{self.n5x5}, pool>{self.pool_proj}")

    def trace(self, in_shape: Shape, path: str, depth: int) -> _Trace:
        _need_map(self, in_shape)
        traces = [_run(_auto_names(layers, f"{path}/{b}"), in_shape, f"{path}/{b}", depth + 1)
                  for b, layers in self.parts(in_shape)]
        maps = {bt.out[1:] for bt in traces}
        if len(maps) != 1:
            raise ValueError(f"the branches of {path} give different map sizes {sorted(maps)}")
        out = (sum(bt.out[0] for bt in traces),) + traces[0].out[1:]
        concat = Row(f"{path}/concat", "concat", "concatenate channels", tuple(in_shape), out, 0, 0,
                     _numel(out), _numel(out), 0, depth + 1, True, False)
        return self._finish(in_shape, path, depth, out, traces, [concat], _numel(out))


class _ResidualBase(_Block):
    """``relu(body(x) + shortcut(x))``; an empty shortcut is the identity."""

    kind: ClassVar[str] = "residual"

    def body_and_shortcut(self, in_shape: Shape) -> tuple[list[Layer], list[Layer]]:
        raise NotImplementedError

    def parts(self, in_shape: Shape) -> list[tuple[str, list[Layer]]]:
        body, shortcut = self.body_and_shortcut(in_shape)
        return [("body", body), ("shortcut", shortcut)]

    def trace(self, in_shape: Shape, path: str, depth: int) -> _Trace:
        body, shortcut = self.body_and_shortcut(in_shape)
        bt = _run(_auto_names(body, f"{path}/body"), in_shape, f"{path}/body", depth + 1)
        st = _run(_auto_names(shortcut, f"{path}/shortcut"), in_shape, f"{path}/shortcut", depth + 1)
        if bt.out != st.out:
            raise ValueError(
                f"the body of {path} gives {fmt_shape(bt.out)} {bt.out} but the shortcut gives "
                f"{fmt_shape(st.out)} {st.out}: they must match to be added. With a stride or a "
                "change of depth the shortcut needs a projection (1x1 conv with that stride)."
            )
        out = bt.out
        n = _numel(out)
        extra = [
            Row(f"{path}/add", "add", "add shortcut", out, out, 0, 0, n, n, 0, depth + 1, True, False),
            Row(f"{path}/relu", "relu", "relu", out, out, 0, 0, n, 0, 0, depth + 1, True, True),
        ]
        return self._finish(in_shape, path, depth, out, [bt, st], extra, n)


@dataclass(frozen=True)
class Residual(_ResidualBase):
    """A generic residual block: ``relu(body(x) + shortcut(x))``.

    ``body`` and ``shortcut`` are sequences of layer specs; an empty ``shortcut`` is the identity,
    which needs the body to keep the shape.
    """

    body: tuple = ()
    shortcut: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "body", tuple(self.body))
        object.__setattr__(self, "shortcut", tuple(self.shortcut))
        if not self.body:
            raise ValueError("a residual block needs a non-empty body")

    def body_and_shortcut(self, in_shape):
        return list(self.body), list(self.shortcut)

    def describe(self, in_shape: Shape | None = None) -> str:
        return f"residual ({len(self.body)} layers{', projection' if self.shortcut else ''})"


def _projection(k: int, c: int, stride: int) -> list[Layer]:
    """The ResNet paper's option B: a 1x1 conv (with the block's stride) + BN when shapes change."""
    if stride == 1 and c == k:
        return []
    return [Conv(k, 1, stride=stride, bias=False, rounding="floor", name="proj"), BatchNorm(name="proj_bn")]


@dataclass(frozen=True)
class BasicBlock(_ResidualBase):
    """ResNet-18/34 block: ``3x3 conv(k, stride) - BN - ReLU - 3x3 conv(k) - BN``, plus the
    shortcut, then ReLU. The shortcut is the identity unless the stride or the depth changes;
    then a 1x1 conv with the stride and BN (option B). Convs have no bias (BN follows).
    A stride-2 3x3 conv with pad 1 uses torch's floor rounding."""

    kind: ClassVar[str] = "basic_block"

    k: int
    stride: int = 1

    def __post_init__(self):
        _int("k", self.k, 1)
        _int("stride", self.stride, 1)

    def body_and_shortcut(self, in_shape):
        c, _, _ = _need_map(self, in_shape)
        body = [
            Conv(self.k, 3, self.stride, 1, bias=False, rounding="floor", name="conv1"), BatchNorm(name="bn1"),
            ReLU(name="relu1"),
            Conv(self.k, 3, 1, 1, bias=False, name="conv2"), BatchNorm(name="bn2"),
        ]
        return body, _projection(self.k, c, self.stride)

    def describe(self, in_shape: Shape | None = None) -> str:
        s = f"/{self.stride}" if self.stride != 1 else ""
        return f"[3x3, {self.k}]x2 block{s}"


@dataclass(frozen=True)
class Bottleneck(_ResidualBase):
    """ResNet-50/101/152 block: ``1x1 conv(width) - 3x3 conv(width) - 1x1 conv(width*expansion)``,
    each with BN (ReLU after the first two), plus the shortcut, then ReLU.

    ``stride_on="1x1"`` puts the stride on the first 1x1 conv, as in the paper's original
    (Caffe) models; ``"3x3"`` puts it on the 3x3 conv, as torchvision's "ResNet v1.5" does.
    Parameters are the same; the multiply-adds differ (ResNet-50: about 3.9G vs 4.1G).
    """

    kind: ClassVar[str] = "bottleneck"

    width: int
    stride: int = 1
    expansion: int = 4
    stride_on: str = "1x1"

    def __post_init__(self):
        _int("width", self.width, 1)
        _int("stride", self.stride, 1)
        _int("expansion", self.expansion, 1)
        if self.stride_on not in ("1x1", "3x3"):
            raise ValueError(f"stride_on must be '1x1' or '3x3'; got stride_on={self.stride_on!r}")

    @property
    def out_channels(self) -> int:
        return self.width * self.expansion

    def body_and_shortcut(self, in_shape):
        c, _, _ = _need_map(self, in_shape)
        s1, s3 = (self.stride, 1) if self.stride_on == "1x1" else (1, self.stride)
        body = [
            Conv(self.width, 1, s1, bias=False, rounding="floor", name="conv1"), BatchNorm(name="bn1"),
            ReLU(name="relu1"),
            Conv(self.width, 3, s3, 1, bias=False, rounding="floor", name="conv2"), BatchNorm(name="bn2"),
            ReLU(name="relu2"),
            Conv(self.out_channels, 1, bias=False, name="conv3"), BatchNorm(name="bn3"),
        ]
        return body, _projection(self.out_channels, c, self.stride)

    def describe(self, in_shape: Shape | None = None) -> str:
        s = f"/{self.stride}" if self.stride != 1 else ""
        return f"[1x1 {self.width}, 3x3 {self.width}, 1x1 {self.out_channels}] block{s}"


# ----------------------------------------------------------------------------------------------
# summaries
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """The result of :func:`summarize`: rows, totals and renderings.

    ``rows`` are the top-level layers (and, with ``expand=True``, the parts of each block after
    it). Totals always add up the top-level rows. ``s["conv1"]`` finds a row by name (block parts
    too: ``s["inception3a/3x3/reduce"]``). ``print(s)`` prints a text table; in Jupyter the
    summary renders as a markdown table.
    """

    name: str
    input_shape: Shape
    output_shape: Shape
    all_rows: tuple[Row, ...]
    expand: bool = False
    bytes_per_value: int = BYTES_PER_VALUE

    @property
    def rows(self) -> list[Row]:
        return [r for r in self.all_rows if self.expand or r.depth == 0]

    @property
    def top_rows(self) -> list[Row]:
        return [r for r in self.all_rows if r.depth == 0]

    @property
    def leaf_rows(self) -> list[Row]:
        """Rows that are single layers (blocks replaced by their parts)."""
        return [r for r in self.all_rows if r.leaf]

    def __getitem__(self, name: str) -> Row:
        for r in self.all_rows:
            if r.name == name:
                return r
        raise KeyError(f"no layer named {name!r}; layers: {', '.join(r.name for r in self.top_rows)}")

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    # totals -------------------------------------------------------------------------------
    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.top_rows)

    @property
    def total_weights(self) -> int:
        return sum(r.weights for r in self.top_rows)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.top_rows)

    @property
    def input_values(self) -> int:
        return _numel(self.input_shape)

    @property
    def total_activations(self) -> int:
        """Forward memory in values: the input plus every tensor the layers create."""
        return self.input_values + sum(r.memory for r in self.top_rows)

    @property
    def bytes_per_image(self) -> int:
        """Forward activation memory of one image in bytes (float32 unless told otherwise)."""
        return self.total_activations * self.bytes_per_value

    @property
    def param_bytes(self) -> int:
        return self.total_params * self.bytes_per_value

    @property
    def num_weight_layers(self) -> int:
        """Conv and FC layers (block parts included): the "depth" the papers count."""
        return sum(1 for r in self.leaf_rows if r.kind in ("conv", "fc"))

    def totals(self) -> dict:
        return {
            "params": self.total_params,
            "weights": self.total_weights,
            "macs": self.total_macs,
            "activations": self.total_activations,
            "bytes_per_image": self.bytes_per_image,
            "param_bytes": self.param_bytes,
            "weight_layers": self.num_weight_layers,
        }

    def by_kind(self) -> dict[str, dict[str, int]]:
        """Params, weights, MACs and memory added up per layer kind, over single layers
        (block parts counted as their own kinds): where the parameters and the work live."""
        out: dict[str, dict[str, int]] = {}
        for r in self.leaf_rows:
            d = out.setdefault(r.kind, {"params": 0, "weights": 0, "macs": 0, "memory": 0, "layers": 0})
            d["params"] += r.params
            d["weights"] += r.weights
            d["macs"] += r.macs
            d["memory"] += r.memory
            d["layers"] += 1
        return out

    def value(self, quantity: str) -> float:
        """A number by name, as :class:`Claim` uses it.

        ``"params"``, ``"weights"``, ``"macs"``, ``"activations"``, ``"bytes"``, ``"weight_layers"``;
        ``"row:NAME:FIELD"`` (FIELD one of params, weights, macs, activations, memory, biases);
        ``"kind:KIND:FIELD"`` (summed over single layers of that kind, e.g. ``kind:fc:params``).
        """
        totals = {
            "params": self.total_params,
            "weights": self.total_weights,
            "macs": self.total_macs,
            "activations": self.total_activations,
            "bytes": self.bytes_per_image,
            "weight_layers": self.num_weight_layers,
        }
        if quantity in totals:
            return totals[quantity]
        parts = quantity.split(":")
        if len(parts) == 3 and parts[0] == "row":
            return getattr(self[parts[1]], parts[2])
        if len(parts) == 3 and parts[0] == "kind":
            return self.by_kind().get(parts[1], {}).get(parts[2], 0)
        raise ValueError(
            f"unknown quantity {quantity!r}; use one of {sorted(totals)}, 'row:NAME:FIELD' or 'kind:KIND:FIELD'"
        )

    def records(self) -> list[dict]:
        """The rows as plain dicts (``pandas.DataFrame(s.records())`` if you like pandas)."""
        return [r.as_dict() for r in self.rows]

    # rendering -----------------------------------------------------------------------------
    def _table(self) -> tuple[list[str], list[list[str]]]:
        header = ["layer", "type", "output", "params", "memory", "multiply-adds"]
        body = [["input", "", fmt_shape(self.input_shape), "0", f"{self.input_values:,}", "0"]]
        for r in self.rows:
            indent = "  " * r.depth
            mem = "in place" if r.inplace else f"{r.memory:,}"
            body.append([indent + r.name, r.description, fmt_shape(r.output_shape), f"{r.params:,}", mem,
                         f"{r.macs:,}"])
        body.append(["total", "", "", f"{self.total_params:,}", f"{self.total_activations:,}",
                     f"{self.total_macs:,}"])
        return header, body

    def footer(self) -> str:
        return (
            f"{self.name}: {self.total_params:,} parameters ({human(self.total_params)}, "
            f"{human_bytes(self.param_bytes)}); {human(self.total_macs)} multiply-adds per image; "
            f"forward memory {self.total_activations:,} values ({human(self.total_activations)}) "
            f"x {self.bytes_per_value} bytes = {human_bytes(self.bytes_per_image)} per image "
            "(input + every tensor a layer creates; ReLU/Dropout/Flatten in place; about twice that "
            "when training)"
        )

    def to_text(self) -> str:
        """A fixed-width text table plus the totals line."""
        header, body = self._table()
        widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
        right = {3, 4, 5}

        def line(cells):
            return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        rule = "  ".join("-" * w for w in widths)
        lines = [line(header), rule] + [line(b) for b in body[:-1]] + [rule, line(body[-1]), "", self.footer()]
        return "\n".join(s.rstrip() for s in lines)

    def to_markdown(self) -> str:
        """The same table in markdown (Jupyter renders it with ``display(Markdown(...))``)."""
        header, body = self._table()

        def esc(c):
            return c.replace("|", "\\|").replace("  ", "&nbsp;&nbsp;") if c.startswith(" ") else c.replace("|", "\\|")

        lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] * 3 + [" ---: "] * 3) + "|"]
        for b in body:
            cells = [esc(c) for c in b]
            if b is body[-1]:
                cells = [f"**{c}**" if c else c for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n\n" + self.footer() + "\n"

    def __str__(self) -> str:
        return self.to_text()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def _check_input_shape(input_shape) -> Shape:
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"input_shape must be a tuple (C, H, W) or (D,); got {input_shape!r}") from None
    if len(shape) not in (1, 3) or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1
                                       for s in shape):
        hint = " (drop the batch dimension N: shapes here are per image)" if len(shape) == 4 else ""
        raise ValueError(f"input_shape must be (C, H, W) or (D,) of positive integers; got {shape}{hint}")
    return tuple(int(s) for s in shape)


def summarize(input_shape, layers: Iterable[Layer] | None = None, *, expand: bool = False,
              name: str = "network", bytes_per_value: int = BYTES_PER_VALUE) -> Summary:
    """Layer-by-layer table of a network on one image.

    Args:
        input_shape: ``(C, H, W)`` of one image (e.g. ``(3, 227, 227)``), or ``(D,)``; or an
            :class:`Architecture` (then ``layers`` is left out).
        layers: the layer specs, in order. Unnamed layers get ``kind`` + count
            (``conv1``, ``relu1``, ``pool1``, ...).
        expand: list the parts of Inception/residual blocks after each block's row.
        name: a title for the totals line.
        bytes_per_value: 4 for float32 (2 for float16).

    Returns:
        :class:`Summary` with ``rows`` of (name, output shape, params, activations, memory,
        multiply-adds), totals (``total_params``, ``total_macs``, ``total_activations``,
        ``bytes_per_image``) and renderings (``to_text()``, ``to_markdown()``, ``records()``).

    Raises:
        ValueError naming the layer and its input when a layer's hyper-parameters do not fit,
        with the arithmetic from :mod:`cs_utils.shapes`.
    """
    if isinstance(input_shape, Architecture):
        if layers is not None:
            raise TypeError("summarize(architecture) takes no separate layers")
        arch = input_shape
        return summarize(arch.input_shape, arch.layers, expand=expand, name=arch.name,
                         bytes_per_value=bytes_per_value)
    shape = _check_input_shape(input_shape)
    if layers is None:
        raise TypeError("summarize(input_shape, layers): layers is missing")
    layers = list(layers)
    t = _run(_auto_names(layers, "layers"), shape, "", 0)
    return Summary(name, shape, t.out, tuple(t.rows), expand, _int("bytes_per_value", bytes_per_value, 1))


# ----------------------------------------------------------------------------------------------
# published figures
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A figure that a paper or a course seed states, to set beside the arithmetic.

    ``quantity`` is understood by :meth:`Summary.value` (``"params"``, ``"row:conv1:weights"``,
    ``"kind:fc:params"``, ...); ``value`` is the figure in plain units (138e6, not "138M");
    ``stated`` is how the source wrote it; ``rel_tol`` how close counts as agreeing (the source's
    rounding); ``note`` explains a disagreement or what the source counted.
    """

    quantity: str
    value: float
    source: str
    stated: str = ""
    rel_tol: float = 0.05
    note: str = ""


@dataclass(frozen=True)
class ClaimCheck:
    claim: Claim
    computed: float

    @property
    def agrees(self) -> bool:
        return abs(self.computed - self.claim.value) <= self.claim.rel_tol * abs(self.claim.value)

    @property
    def ratio(self) -> float:
        """computed / claimed."""
        return self.computed / self.claim.value if self.claim.value else math.inf


def check_claims(arch: "Architecture", summary: Summary | None = None) -> list[ClaimCheck]:
    """Compute every claim of ``arch`` from its summary."""
    s = summary or arch.summary()
    return [ClaimCheck(c, s.value(c.quantity)) for c in arch.claims]


def _md_text(text: str) -> str:
    """Plain text for a markdown table cell: ``7*7*512`` must not turn into italics, nor ``|`` end the cell."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_").replace("|", "\\|")


def claims_table(checks: Sequence[ClaimCheck]) -> str:
    """Markdown table: what the source says, what the arithmetic gives, and why they differ."""
    lines = ["| quantity | source | stated | computed | agrees | note |", "| --- | --- | ---: | ---: | --- | --- |"]
    for c in checks:
        stated = _md_text(c.claim.stated or human(c.claim.value))
        lines.append(
            f"| {_md_text(c.claim.quantity)} | {_md_text(c.claim.source)} | {stated} | "
            f"{c.computed:,.0f} ({human(c.computed)}) | {'yes' if c.agrees else '**no**'} | {_md_text(c.claim.note)} |"
        )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Architecture:
    """A named network: input shape, layer specs, where it comes from, how we modelled it, and
    the published figures (``claims``) to check against."""

    name: str
    input_shape: Shape
    layers: tuple
    reference: str = ""
    notes: tuple = ()
    claims: tuple = ()

    def summary(self, expand: bool = False) -> Summary:
        return summarize(self, expand=expand)

    def check_claims(self) -> list[ClaimCheck]:
        return check_claims(self)

    def claims_table(self) -> str:
        return claims_table(self.check_claims())

    def __repr__(self) -> str:
        return f"Architecture({self.name!r}, input_shape={self.input_shape}, {len(self.layers)} layers)"

    def _repr_markdown_(self) -> str:
        notes = "".join(f"- {n}\n" for n in self.notes)
        return f"**{self.name}** ({self.reference})\n\n{self.summary().to_markdown()}\n{notes}"


def _head(num_classes: int, softmax: bool) -> list[Layer]:
    return [Softmax(name="prob")] if softmax else []


def _act(activation: str, name: str) -> Layer:
    if activation == "relu":
        return ReLU(name=name)
    if activation == "tanh":
        return Tanh(name=name)
    raise ValueError(f"activation must be 'relu' or 'tanh'; got activation={activation!r}")


# ----------------------------------------------------------------------------------------------
# case studies
# ----------------------------------------------------------------------------------------------


def lenet5(*, in_channels: int = 1, num_classes: int = 10, input_size: int = 32, activation: str = "relu",
           pool: str = "max", softmax: bool = False) -> Architecture:
    """LeNet-5 (LeCun et al., 1998) in its usual modern form: CONV-POOL-CONV-POOL-CONV-FC-FC.

    C1: 6 5x5 filters -> 28x28x6; S2: 2x2/2 pool -> 14x14x6; C3: 16 5x5 -> 10x10x16;
    S4: 2x2/2 -> 5x5x16; C5: 120 5x5 -> 1x1x120; F6: 84; OUT: ``num_classes``. 61,706 parameters.

    ``input_size`` below 32 is zero padded in C1 to reach 28x28 (e.g. 28 for MNIST: pad 2); for
    scikit-learn's 8x8 digits, upsample the images to 32x32 first (``F.interpolate(x, size=32)``).
    ``activation="tanh"``, ``pool="avg"`` come closer to the 1998 network; the counts do not change.
    """
    _int("input_size", input_size, 1)
    if input_size > 32 or (32 - input_size) % 2:
        raise ValueError(
            f"lenet5 needs input_size 32 or 32 - 2p (C1 pads p zeros to reach 32); got input_size={input_size}"
        )
    pad = (32 - input_size) // 2
    layers = [
        Conv(6, 5, pad=pad, name="C1"), _act(activation, "act1"), Pool(2, 2, kind=pool, name="S2"),
        Conv(16, 5, name="C3"), _act(activation, "act3"), Pool(2, 2, kind=pool, name="S4"),
        Conv(120, 5, name="C5"), _act(activation, "act5"),
        FC(84, name="F6"), _act(activation, "act6"),
        FC(num_classes, name="OUT"),
    ] + _head(num_classes, softmax)
    return Architecture(
        "LeNet-5", (in_channels, input_size, input_size), tuple(layers),
        reference="LeCun, Bottou, Bengio, Haffner (1998), Gradient-based learning applied to document recognition",
        notes=(
            "Modern form: every C3 map sees all 6 S2 maps, pooling has no parameters and the output is an FC "
            "layer. The 1998 network differs in three places: C3 connects each map to only some S2 maps "
            "(1,516 parameters instead of 2,416), S2/S4 scale and shift each map (12 and 32 parameters), "
            "and the output uses 84x10 RBF centres (840). Its total is 60,840; both are 'about 60K'.",
        ),
        claims=(
            Claim("params", 60_000, "LeCun et al. 1998; seeds 000/004", "~60K", 0.05,
                  "Modern form (full C3, biases, FC output); within the rounding of 'about 60K'."),
            Claim("row:C1:weights", 150, "seed 004", "150", 0.0,
                  "(5*5*1)*6 weights; with the 6 biases C1 has 156 parameters."),
            Claim("row:S2:params", 0, "seed 004", "0", 0.0, "Max pooling learns nothing."),
        ),
    )


def alexnet(*, input_size: int = 227, towers: int = 1, padded: bool = True, norm_before_pool: bool = False,
            num_classes: int = 1000, softmax: bool = False) -> Architecture:
    """AlexNet (Krizhevsky, Sutskever, Hinton 2012), layer by layer as in seed 000.

    227x227x3 -> CONV1 96 11x11/4 (55x55x96) -> POOL1 3x3/2 (27x27x96) -> NORM1 -> CONV2 256 5x5 pad 2
    (27x27x256) -> POOL2 (13x13x256) -> NORM2 -> CONV3 384 3x3 pad 1 -> CONV4 384 -> CONV5 256 (13x13)
    -> POOL3 (6x6x256) -> FC6 4096 -> FC7 4096 -> FC8 1000.

    Args:
        input_size: 227 (the arithmetic works: (227 - 11)/4 + 1 = 55) or 224 (the paper's figure;
            it needs padding: we use torchvision's pad 2 with floor rounding, i.e. effective
            padding 2 before and 1 after).
        towers: 1 (default): one tower, every conv sees all channels of the layer below
            (62,378,344 parameters, the "62M" usually quoted); 2: the paper's two-GPU split,
            conv2, conv4 and conv5 see only their own GPU's half (groups=2; 60,965,224, the
            paper's "60 million").
        padded: False gives seed 004's variant with no padding in conv2-5
            (27 -> 23 -> 11 -> 9 -> 7 -> 5 -> 2).
        norm_before_pool: the paper normalises before pooling; seed 000 (like CaffeNet) pools
            first. Only the memory column changes.
    """
    if input_size not in (224, 227):
        raise ValueError(f"alexnet input_size must be 227 or 224; got {input_size}")
    if towers not in (1, 2):
        raise ValueError(f"towers must be 1 or 2; got towers={towers}")
    g = towers
    c1 = (Conv(96, 11, 4, name="conv1") if input_size == 227
          else Conv(96, 11, 4, pad=2, rounding="floor", name="conv1"))
    p = 1 if padded else 0

    def pool_norm(i):
        pool, norm = Pool(3, 2, name=f"pool{i}"), LRN(5, 1e-4, 0.75, 2.0, name=f"norm{i}")
        return [norm, pool] if norm_before_pool else [pool, norm]

    layers = [
        c1, ReLU(name="relu1"), *pool_norm(1),
        Conv(256, 5, 1, 2 * p, groups=g, name="conv2"), ReLU(name="relu2"), *pool_norm(2),
        Conv(384, 3, 1, p, name="conv3"), ReLU(name="relu3"),
        Conv(384, 3, 1, p, groups=g, name="conv4"), ReLU(name="relu4"),
        Conv(256, 3, 1, p, groups=g, name="conv5"), ReLU(name="relu5"),
        Pool(3, 2, name="pool3"),
        FC(4096, name="fc6"), ReLU(name="relu6"), Dropout(0.5, name="drop6"),
        FC(4096, name="fc7"), ReLU(name="relu7"), Dropout(0.5, name="drop7"),
        FC(num_classes, name="fc8"),
    ] + _head(num_classes, softmax)
    claims = [
        Claim("row:conv1:params", 34_944, "hand count", "96*(11*11*3)+96 = 34,944", 0.0, "Weights and biases."),
        Claim("row:conv1:weights", 35_000, "seed 000", "(11*11*3)*96 = 35K", 0.01,
              "34,848 weights, rounded to 35K; the 96 biases are not counted."),
        Claim("row:conv1:weights", 34_000, "seed 004", "(11*11*3)*96 = 34K", 0.03,
              "34,848 weights: 34.8K written as 34K (truncated, not rounded)."),
    ]
    if padded and towers == 1:
        claims.append(Claim("params", 62e6, "common single-tower figure (e.g. CS231n)", "~62M", 0.02,
                            "One tower; the paper's two-GPU version has 60,965,224 (towers=2)."))
    if padded and towers == 2:
        claims.append(Claim("params", 60e6, "Krizhevsky et al. 2012", "60 million", 0.05,
                            "Two towers: conv2, conv4, conv5 see half the channels (groups=2)."))
    if not padded:
        claims.append(Claim("weights", 27.55e6, "seed 004 (no padding in conv2-5)", "27.55M", 0.01,
                            "The seed adds its rounded per-layer figures (34K + 0.6M + 0.8M + 1.327M + 0.8M "
                            "+ 4M + 16M + 4M = 27.56M). The exact weights add up to 28,813,344 (28.8M), "
                            "28,822,760 parameters with biases."))
    notes = [
        "One tower (towers=1) unless towers=2; the paper trained two towers on two GPUs.",
        "Input 227x227: the paper's 224 does not fit 11x11 filters at stride 4 without padding "
        "((224 - 11)/4 + 1 = 54.25); input_size=224 uses torchvision's pad 2 with floor rounding.",
        "Seed 000 pools before normalising (as CaffeNet does); the paper normalises first "
        "(norm_before_pool=True). Parameters and multiply-adds do not change.",
    ]
    if not padded:
        notes.append("Seed 004's variant: no padding in conv2-5, so the maps shrink 27 -> 23 -> 11 -> 9 -> 7 -> 5 "
                     "-> 2 and FC6 sees only 2x2x256 = 1024 values.")
    return Architecture(f"AlexNet{' (2 towers)' if towers == 2 else ''}", (3, input_size, input_size),
                        tuple(layers), "Krizhevsky, Sutskever, Hinton (2012), ImageNet classification with "
                        "deep convolutional neural networks", tuple(notes), tuple(claims))


def zfnet(*, conv345: tuple[int, int, int] = (384, 384, 256), num_classes: int = 1000,
          softmax: bool = False) -> Architecture:
    """ZFNet (Zeiler and Fergus 2013, Fig. 3): AlexNet with a 7x7/2 first layer and a stride-2 conv2.

    224x224x3 -> conv1 96 7x7/2 (110x110) -> pool 3x3/2 (55x55) -> norm -> conv2 256 5x5/2 (26x26)
    -> pool (13x13) -> norm -> conv3/4/5 3x3 pad 1 (13x13) -> pool (6x6) -> fc6 4096 -> fc7 4096 -> fc8.

    The paper's sizes need the frameworks' rounding: conv1 pad 1 with floor (effective 1/0:
    (224 + 1 - 7)/2 + 1 = 110) and ceil-mode pools ((110 - 3)/2 + 1 = 54.5 -> 55, 26 -> 13).
    ``conv345=(512, 1024, 512)`` is the paper's larger model (b), the one seed 000 describes as
    "AlexNet but CONV3,4,5 use 512, 1024, 512 filters" (ImageNet top-5 error 14.8%).
    """
    if len(conv345) != 3:
        raise ValueError(f"conv345 must give 3 filter counts; got {conv345!r}")
    k3, k4, k5 = (_int("conv345[%d]" % i, k, 1) for i, k in enumerate(conv345))
    layers = [
        Conv(96, 7, 2, 1, rounding="floor", name="conv1"), ReLU(name="relu1"),
        Pool(3, 2, rounding="ceil", name="pool1"), LRN(name="norm1"),
        Conv(256, 5, 2, name="conv2"), ReLU(name="relu2"),
        Pool(3, 2, rounding="ceil", name="pool2"), LRN(name="norm2"),
        Conv(k3, 3, 1, 1, name="conv3"), ReLU(name="relu3"),
        Conv(k4, 3, 1, 1, name="conv4"), ReLU(name="relu4"),
        Conv(k5, 3, 1, 1, name="conv5"), ReLU(name="relu5"),
        Pool(3, 2, name="pool3"),
        FC(4096, name="fc6"), ReLU(name="relu6"), Dropout(0.5, name="drop6"),
        FC(4096, name="fc7"), ReLU(name="relu7"), Dropout(0.5, name="drop7"),
        FC(num_classes, name="fc8"),
    ] + _head(num_classes, softmax)
    notes = [
        "Seed 000 describes ZFNet as 'AlexNet but conv1 7x7 stride 2'; keeping the 6x6 maps before FC6 also "
        "needs conv2 at stride 2, as the paper's Fig. 3 has (with AlexNet's stride-1 conv2 the maps would "
        "end at 13x13 and FC6 would have 354M weights).",
        "Seed 004 lists the parameter changes from AlexNet to the (512, 1024, 512) model; its conv4 and conv5 "
        "figures (0.8M, 0.36M) do not follow from its own formulas: 3*3*(512*1024 - 384*384) = 3,391,488 and "
        "3*3*(1024*512 - 384*256) = 3,833,856 more weights, and FC6 doubles its input (6x6x512). Compare "
        "summaries: summarize(zfnet(conv345=(512, 1024, 512)))['conv4'].weights - "
        "summarize(alexnet())['conv4'].weights.",
    ]
    claims = [
        Claim("row:conv1:activations", 110 * 110 * 96, "Zeiler & Fergus 2013, Fig. 3", "110x110x96", 0.0,
              "Needs conv1 pad 1 with floor rounding."),
        Claim("row:pool3:activations", 6 * 6 * k5, "Zeiler & Fergus 2013, Fig. 3", f"6x6x{k5}", 0.0, ""),
    ]
    return Architecture(f"ZFNet{'' if (k3, k4, k5) == (384, 384, 256) else ' ' + str((k3, k4, k5))}",
                        (3, 224, 224), tuple(layers),
                        "Zeiler, Fergus (2013), Visualizing and understanding convolutional networks",
                        tuple(notes), tuple(claims))


_VGG = {
    "A": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "B": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "C": [[64, 64], [128, 128], [256, 256, (256, 1)], [512, 512, (512, 1)], [512, 512, (512, 1)]],
    "D": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "E": [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}
_VGG_PAPER_M = {"A": 133, "B": 133, "C": 134, "D": 138, "E": 144}


def vgg(config: str = "D", *, input_size: int = 224, num_classes: int = 1000, softmax: bool = False) -> Architecture:
    """VGG (Simonyan and Zisserman 2014), configurations A, B, C, D (VGG-16), E (VGG-19).

    Only 3x3 convs at stride 1 pad 1 (config C also has 1x1 convs) and 2x2 max pools at stride 2;
    then FC 4096, FC 4096, FC ``num_classes``. ``input_size`` must be divisible by 32.
    """
    if config not in _VGG:
        raise ValueError(f"config must be one of {sorted(_VGG)}; got config={config!r}")
    layers: list[Layer] = []
    for b, block in enumerate(_VGG[config], start=1):
        for i, spec in enumerate(block, start=1):
            k, f = spec if isinstance(spec, tuple) else (spec, 3)
            layers += [Conv(k, f, 1, (f - 1) // 2, name=f"conv{b}_{i}"), ReLU(name=f"relu{b}_{i}")]
        layers.append(Pool(2, 2, name=f"pool{b}"))
    layers += [
        FC(4096, name="fc6"), ReLU(name="relu6"), Dropout(0.5, name="drop6"),
        FC(4096, name="fc7"), ReLU(name="relu7"), Dropout(0.5, name="drop7"),
        FC(num_classes, name="fc8"),
    ] + _head(num_classes, softmax)
    depth = {"A": 11, "B": 13, "C": 16, "D": 16, "E": 19}[config]
    claims = [Claim("params", _VGG_PAPER_M[config] * 1e6, "Simonyan & Zisserman 2014, Table 2",
                    f"{_VGG_PAPER_M[config]}M", 0.005, "")]
    notes: list[str] = []
    if config == "D" and input_size == 224:
        claims += [
            Claim("params", 138_357_544, "exact count (torchvision's vgg16 has the same)", "138,357,544", 0.0, ""),
            Claim("weights", 138e6, "seed 000 (VGG-16 table, biases not counted)", "138M", 0.005,
                  "Weights alone are 138,344,128; the 13,416 biases make 138,357,544."),
            Claim("activations", 24e6, "seed 000 (VGG-16 table)", "TOTAL memory: 24M", 0.05,
                  "The table's own rows add up to 15.2M values (input 150K + 6.4M + 0.8M + 3.2M + 0.4M + 2.4M "
                  "+ 0.2M + 1.2M + 0.1M + 0.3M + 25K + 9K), not 24M."),
            Claim("bytes", 93e6, "seed 000 (VGG-16 table)", "24M * 4 bytes ~= 93MB / image", 0.05,
                  "15.2M values x 4 bytes = 61 MB (58 MiB) per image forward. Even 24M x 4 bytes is 96 MB "
                  "(91.6 MiB), not 93 MB."),
            Claim("kind:conv:params", 16e6, "seed 004", "non FC layers ~16M", 0.05,
                  "The 13 conv layers have 14,714,688 parameters (14.7M)."),
            Claim("kind:fc:params", 122e6, "seed 004", "FC layers ~122M", 0.005,
                  "The seed writes the last layer as 4096x1024 (it has 1000 outputs); the three FC layers have "
                  "123,642,856 parameters (123.6M; 123,633,664 weights)."),
            Claim("row:fc6:weights", 102_760_448, "seeds 000/004", "7*7*512*4096 = 102,760,448 (~102M)", 0.0,
                  "The first FC layer alone holds 74% of all parameters."),
            Claim("weight_layers", 16, "the name", "16 weight layers", 0.0, ""),
        ]
        notes.append("Seed 000's memory column counts the output of every conv, pool and FC layer (ReLU in place); "
                     "summarize counts the same, so its rows match the seed's row by row; only the seed's TOTAL "
                     "(24M, 93MB) does not follow from them.")
    if config == "E" and input_size == 224:
        claims.append(Claim("params", 143_667_240, "exact count (torchvision's vgg19 has the same)",
                            "143,667,240", 0.0, ""))
        claims.append(Claim("weight_layers", 19, "the name", "19 weight layers", 0.0, ""))
    label = {"D": "VGG-16", "E": "VGG-19"}.get(config, f"VGG-{config} ({depth} weight layers)")
    return Architecture(label, (3, input_size, input_size), tuple(layers),
                        "Simonyan, Zisserman (2014), Very deep convolutional networks for large-scale image "
                        "recognition", tuple(notes), tuple(claims))


def vgg16(**kwargs) -> Architecture:
    """VGG-16 (configuration D): 13 convs + 3 FC, 138,357,544 parameters at 224x224."""
    return vgg("D", **kwargs)


def vgg19(**kwargs) -> Architecture:
    """VGG-19 (configuration E): 16 convs + 3 FC, 143,667,240 parameters at 224x224."""
    return vgg("E", **kwargs)


# GoogLeNet's table: n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj, params (K = 1024), ops (M)
_INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32, 159, 128),
    "3b": (128, 128, 192, 32, 96, 64, 380, 304),
    "4a": (192, 96, 208, 16, 48, 64, 364, 73),
    "4b": (160, 112, 224, 24, 64, 64, 437, 88),
    "4c": (128, 128, 256, 24, 64, 64, 463, 100),
    "4d": (112, 144, 288, 32, 64, 64, 580, 119),
    "4e": (256, 160, 320, 32, 128, 128, 840, 170),
    "5a": (256, 160, 320, 32, 128, 128, 1072, 54),
    "5b": (384, 192, 384, 48, 128, 128, 1388, 71),
}


def googlenet(*, num_classes: int = 1000, softmax: bool = False) -> Architecture:
    """GoogLeNet (Szegedy et al. 2014, Table 1) at inference: no auxiliary classifiers.

    conv 7x7/2 (112x112x64) - max pool 3x3/2 (56) - LRN - conv 1x1 64 + conv 3x3 192 (56x56x192) - LRN -
    max pool (28) - inception 3a, 3b (28x28x480) - max pool (14) - 4a..4e (14x14x832) - max pool (7) -
    5a, 5b (7x7x1024) - avg pool 7x7 (1x1x1024) - dropout 40% - linear 1000.

    The table's sizes come from Caffe's rounding: conv1 pad 3 floors ((224 - 7 + 6)/2 + 1 = 112.5
    -> 112), every stride-2 max pool rounds up (ceil mode: (112 - 3)/2 + 1 = 55.5 -> 56).
    """
    layers: list[Layer] = [
        Conv(64, 7, 2, 3, rounding="floor", name="conv1"), ReLU(name="relu1"),
        Pool(3, 2, rounding="ceil", name="pool1"), LRN(name="norm1"),
        Conv(64, 1, name="conv2_reduce"), ReLU(name="relu2_reduce"),
        Conv(192, 3, 1, 1, name="conv2"), ReLU(name="relu2"), LRN(name="norm2"),
        Pool(3, 2, rounding="ceil", name="pool2"),
    ]
    for key in ("3a", "3b", "pool3", "4a", "4b", "4c", "4d", "4e", "pool4", "5a", "5b"):
        if key.startswith("pool"):
            layers.append(Pool(3, 2, rounding="ceil", name=key))
        else:
            layers.append(Inception(*_INCEPTION[key][:6], name=f"inception{key}"))
    layers += [Pool(7, 1, kind="avg", name="avgpool"), Dropout(0.4, name="dropout"),
               FC(num_classes, name="fc")] + _head(num_classes, softmax)
    k = 1024  # the table's "K"
    claims = [
        Claim("params", 5e6, "seed 000", "Only 5 million params!", 0.05,
              "The network has 6,998,552 parameters (6,977,024 weights): the table's own column adds up to "
              "6,797K x 1024 = 6.96M weights. '5 million' comes from the paper's '12x fewer parameters than "
              "AlexNet' (60M / 12); the ratio is about 8.9x to a 62.4M AlexNet."),
        Claim("macs", 1.5e9, "Szegedy et al. 2014, section 5", "1.5 billion multiply-adds", 0.06,
              "Multiply-adds of conv and FC weights at inference."),
        Claim("row:conv1:weights", 2.7 * k, "Szegedy et al. 2014, Table 1 (seed 000)", "2.7K", 0.05,
              "A 7x7 conv from 3 channels to 64 has 7*7*3*64 = 9,408 weights (9.2K in the table's units) and "
              "9,408 x 112 x 112 = 118M multiply-adds, not 34M: the first row of the table does not match its "
              "own layer."),
        Claim("row:conv1:macs", 34e6, "Szegedy et al. 2014, Table 1 (seed 000)", "34M", 0.05,
              "See the params row: 118M follows from the layer; 34M = 2.7K x 112 x 112."),
        Claim("kind:fc:weights", 1000 * k, "Szegedy et al. 2014, Table 1 (seed 000)", "1000K", 0.001,
              "1024 x 1000 weights: the table's K is 1024."),
    ]
    c, hw = 192, 28  # input depth and map size of inception 3a
    for key, row in _INCEPTION.items():
        n1, r3, n3, r5, n5, pp, table_k, table_ops = row
        formula = f"{c}*{n1} + {c}*{r3} + 9*{r3}*{n3} + {c}*{r5} + 25*{r5}*{n5} + {c}*{pp}"
        w = c * n1 + c * r3 + 9 * r3 * n3 + c * r5 + 25 * r5 * n5 + c * pp
        claims.append(Claim(
            f"row:inception{key}:weights", table_k * k, "Szegedy et al. 2014, Table 1 (seed 000)", f"{table_k}K",
            0.01, f"From the row's own filter counts: {formula} = {w:,} weights = {w / k:.1f}K (K = 1024, "
            "biases not counted)."))
        claims.append(Claim(
            f"row:inception{key}:macs", table_ops * 1e6, "Szegedy et al. 2014, Table 1 (seed 000)", f"{table_ops}M",
            0.01, f"{w:,} weights x {hw}x{hw} positions = {w * hw * hw / 1e6:.1f}M (the table's own params "
            f"column x {hw}x{hw} would give {table_k * k * hw * hw / 1e6:.1f}M)."))
        c = n1 + n3 + n5 + pp
        if key in ("3b", "4e"):
            hw //= 2
    notes = (
        "Auxiliary classifiers (used only in training) are left out, as at inference.",
        "The table's parameter column ('K') is in units of 1024 weights and leaves out biases; its 'ops' are "
        "multiply-adds in units of 10^6. Our rows include biases in params; compare weights with the table.",
        "conv2 of the table is two layers: a 1x1 reduction to 64 and the 3x3 conv to 192 (depth 2).",
        "Seed 000 compares with AlexNet as '12X less params, 2x more compute'. Against the paper's two-tower "
        "AlexNet (60,965,224 parameters, 0.72G multiply-adds) the arithmetic gives 8.7x fewer parameters and "
        "2.2x the multiply-adds; against the one-tower form (62,378,344; 1.14G), 8.9x and 1.4x.",
    )
    return Architecture("GoogLeNet", (3, 224, 224), tuple(layers),
                        "Szegedy et al. (2014), Going deeper with convolutions", notes, tuple(claims))


_RESNET = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
_RESNET_PUBLISHED = {  # paper's FLOPs (multiply-adds), torchvision's exact parameter counts
    18: (1.8e9, 11_689_512),
    34: (3.6e9, 21_797_672),
    50: (3.8e9, 25_557_032),
    101: (7.6e9, 44_549_160),
    152: (11.3e9, 60_192_808),
}


def resnet(depth: int = 34, *, input_size: int = 224, num_classes: int = 1000, stride_on: str = "1x1",
           softmax: bool = False) -> Architecture:
    """ResNet (He et al. 2015, Table 1) with ``depth`` 18, 34, 50, 101 or 152.

    conv1 7x7/2 64 (112x112) - BN - ReLU - max pool 3x3/2 (56x56) - conv2_x .. conv5_x stages of
    basic (18/34) or bottleneck (50+) blocks at 56, 28, 14, 7 - global average pool - FC ``num_classes``.
    Every conv is followed by batch norm and has no bias; stride-2 layers (conv1 pad 3, the pool
    pad 1, the first block of conv3_x..conv5_x) round down as torch does (224 -> 112 -> 56 -> 28 ...).
    Shortcuts are identities except where the shape changes: 1x1 conv + BN (the paper's option B).
    ``stride_on`` ("1x1" paper/Caffe, "3x3" torchvision v1.5) matters for bottleneck nets only.
    """
    if depth not in _RESNET:
        raise ValueError(f"depth must be one of {sorted(_RESNET)}; got depth={depth}")
    kind, counts = _RESNET[depth]
    layers: list[Layer] = [
        Conv(64, 7, 2, 3, bias=False, rounding="floor", name="conv1"), BatchNorm(name="bn1"), ReLU(name="relu1"),
        Pool(3, 2, pad=1, rounding="floor", name="pool1"),
    ]
    for stage, (n, width) in enumerate(zip(counts, (64, 128, 256, 512)), start=2):
        for i in range(1, n + 1):
            stride = 2 if (i == 1 and stage > 2) else 1
            name = f"conv{stage}_{i}"
            layers.append(BasicBlock(width, stride, name=name) if kind == "basic"
                          else Bottleneck(width, stride, stride_on=stride_on, name=name))
    layers += [GlobalAvgPool(name="avgpool"), FC(num_classes, name="fc")] + _head(num_classes, softmax)
    flops, params = _RESNET_PUBLISHED[depth]
    claims = []
    if input_size == 224 and num_classes == 1000:
        claims = [
            Claim("macs", flops, "He et al. 2015, Table 1 (seed 000)", f"{flops / 1e9:.1f}x10^9 FLOPs", 0.06,
                  "The paper's 'FLOPs' are multiply-adds (conv and FC weights)."
                  + (" With the stride on the 3x3 conv (torchvision v1.5) the count is higher."
                     if kind == "bottleneck" else "")),
            Claim("params", params, "torchvision's resnet%d (same layers)" % depth, f"{params:,}", 0.0,
                  "Conv weights + batch-norm scale and shift + FC weights and biases."),
        ]
        if depth == 50:
            claims.append(Claim("params", 25.6e6, "He et al. 2015 / torchvision", "25.6M", 0.005, ""))
    notes = (
        "Every conv has no bias and is followed by batch norm (2 parameters per channel).",
        "Projection shortcuts (option B) only where the stride or the depth changes.",
        "Bottleneck blocks put the stride on the first 1x1 conv as in the paper (stride_on='1x1'); "
        "torchvision's 'v1.5' puts it on the 3x3 conv (stride_on='3x3'): same parameters, more multiply-adds.",
    )
    return Architecture(f"ResNet-{depth}", (3, input_size, input_size), tuple(layers),
                        "He, Zhang, Ren, Sun (2015), Deep residual learning for image recognition", notes,
                        tuple(claims))


def resnet18(**kwargs) -> Architecture:
    """ResNet-18: basic blocks [2, 2, 2, 2]; 11,689,512 parameters, 1.8G multiply-adds."""
    return resnet(18, **kwargs)


def resnet34(**kwargs) -> Architecture:
    """ResNet-34: basic blocks [3, 4, 6, 3]; 21,797,672 parameters, 3.6G multiply-adds."""
    return resnet(34, **kwargs)


def resnet50(**kwargs) -> Architecture:
    """ResNet-50: bottleneck blocks [3, 4, 6, 3]; 25,557,032 parameters, 3.8G (paper) multiply-adds."""
    return resnet(50, **kwargs)


def alphago_policy(*, k: int = 192, board: int = 19, planes: int = 48, softmax: bool = False) -> Architecture:
    """AlphaGo's policy network (Silver et al. 2016, Methods), as seed 000 lays it out.

    19x19x48 input -> conv1: k 5x5 filters pad 2 + ReLU -> conv2..conv12: k 3x3 pad 1 + ReLU
    (19x19xk all the way) -> conv13: one 1x1 filter with a different bias for each of the 361
    positions -> flatten -> (softmax: the probability of each move). 13 conv layers.
    """
    _int("k", k, 1)
    layers: list[Layer] = [Conv(k, 5, 1, 2, name="conv1"), ReLU(name="relu1")]
    for i in range(2, 13):
        layers += [Conv(k, 3, 1, 1, name=f"conv{i}"), ReLU(name=f"relu{i}")]
    layers += [Conv(1, 1, bias=False, name="conv13"), PositionBias(name="bias13"), Flatten(name="flatten")]
    layers += [Softmax(name="prob")] if softmax else []
    claims = [
        Claim("weight_layers", 13, "Silver et al. 2016 (seed 000)", "13 layers", 0.0, ""),
        Claim("row:conv1:activations", board * board * k, "seed 000", f"[19x19x{k}]", 0.0, "pad 2 keeps 19x19."),
    ]
    return Architecture(
        "AlphaGo policy network", (planes, board, board), tuple(layers),
        "Silver et al. (2016), Mastering the game of Go with deep neural networks and tree search",
        ("The last layer's bias differs for every board position: 1x1 conv (no bias) + a 19x19 bias map.",
         "k = 192 filters in the match version; the paper also tried 128, 256 and 384."),
        tuple(claims),
    )


CASE_STUDIES: dict[str, Callable[..., Architecture]] = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "zfnet": zfnet,
    "vgg16": vgg16,
    "vgg19": vgg19,
    "googlenet": googlenet,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "alphago_policy": alphago_policy,
}


def case_study(name: str, **kwargs) -> Architecture:
    """The named case study, e.g. ``case_study("vgg16")``; keywords go to its function."""
    try:
        fn = CASE_STUDIES[name]
    except KeyError:
        raise KeyError(f"no case study {name!r}; choose from {', '.join(CASE_STUDIES)}") from None
    return fn(**kwargs)
