"""Checks that assignment notebooks call, with messages that teach.

A test cell in an assignment looks like this::

    got = call(corr1d, [1., 2., 3., 4., 5.], [1., 0., -1.])
    check_close("corr1d([1, 2, 3, 4, 5], [1, 0, -1])", got, [-2., -2., -2.],
                hint="out[i] = x[i]*w[0] + x[i+1]*w[1] + x[i+2]*w[2]")

``call`` runs the student's function with the reference implementations
switched off (see :class:`ReferenceGuard`) and turns an exception into a
sentence; the ``check_*`` helpers compare and, when the answer is wrong, raise
:class:`CheckFailed` (an ``AssertionError``, so nbgrader scores the cell 0)
whose message names what was checked, where it went wrong (the first wrong
index, expected vs got, both shapes) and what to look at.

Every helper here is a plain function of its arguments so that the grader can
later re-import this module fresh, or run the comparison outside the
student's kernel, without changing the notebooks.

What this module guards against: the reference guard catches an answer that
*runs* a reference (however it got hold of it, in any thread it starts, even
if it swallows the error) and an answer that removes the monitor. The checks
compare with NumPy functions captured when this module is imported, accept
only plain numbers, strings and containers as short answers (a look-alike
object cannot answer "equal"), and hand the student's function copies of the
test's arrays, so an answer that patches ``np.abs`` or edits its input in place
changes nothing the check sees. When grading, ``cs-course`` runs all this in a
sandboxed kernel whose student code has passed a static policy (no
monkeypatching, no introspection; see ``cs_utils.autograde``) and whose
referee puts this module back if anything in it changed between cells.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
import sys
import threading
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "CheckFailed",
    "ReferenceUsedError",
    "ReferenceGuard",
    "no_reference",
    "call",
    "check_close",
    "check_equal",
    "check_shape",
    "check_raises",
    "grade_answers",
    "BLOCKED_MODULES",
    "BLOCKED_NUMPY",
    "EXEMPT_MODULES",
]

# Packages whose code a student answer may not run while it is being checked:
# any function defined in them, Python or compiled. All of cs_utils is the
# course's reference (layers, im2col, shape arithmetic), except this module.
# All of SciPy, not only scipy.signal and scipy.ndimage: a convolution is also
# an FFT product (scipy.fft), a Toeplitz or circulant matrix times a vector
# (scipy.linalg) or a sparse matrix product (scipy.sparse).
BLOCKED_MODULES: tuple[str, ...] = ("torch", "scipy", "cs_utils")
EXEMPT_MODULES: tuple[str, ...] = ("cs_utils.grading",)
# Single NumPy functions (the rest of NumPy is allowed): the public names and
# the compiled kernels behind them, so that ``np._core.multiarray.correlate``
# is caught as well as ``np.convolve``.
BLOCKED_NUMPY: tuple[str, ...] = ("convolve", "correlate")
_NUMPY_KERNELS = {"correlate": "convolve", "correlate2": "correlate"}  # compiled kernel -> public name

_MAX_SHOWN = 64  # arrays up to this many entries are printed in full in messages

# NumPy's functions as they were when this module was imported: the checks use
# these, so replacing ``np.abs`` or ``np.isfinite`` afterwards cannot change a verdict.
_asarray, _array, _ndarray, _abs, _isfinite, _isnan = np.asarray, np.array, np.ndarray, np.abs, np.isfinite, np.isnan
_flatnonzero, _nanmax, _unravel_index, _errstate = np.flatnonzero, np.nanmax, np.unravel_index, np.errstate
_array2string, _bool_, _generic = np.array2string, np.bool_, np.generic
_isclose = math.isclose
# Types a short answer may have (exactly these, not subclasses of them).
_NUMBER_TYPES = (int, float, np.integer, np.floating)
_TEXT_TYPES = (str,)


class CheckFailed(AssertionError):
    """A check of a student's answer failed; the message says why."""


class ReferenceUsedError(CheckFailed):
    """A student's function ran a reference implementation while being checked."""


# --------------------------------------------------------------------------
# Switching the reference implementations off
# --------------------------------------------------------------------------


def _package_path(module: types.ModuleType) -> str | None:
    """The directory of a package, or the file of a plain module."""
    path = getattr(module, "__file__", None)
    if not path:
        return None
    path = os.path.realpath(path)
    if os.path.basename(path).startswith("__init__."):
        return os.path.dirname(path) + os.sep
    return os.path.splitext(path)[0]  # matches module.py, module.cpython-*.so, module.pyx


def _module_of(obj: Any) -> Any:
    """The module a function object belongs to: its ``__module__``, else its owner's (a builtin
    method's module or class)."""
    module = getattr(obj, "__module__", None)
    if module is None:
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, types.ModuleType):
            module = owner.__name__
        elif owner is not None:
            module = type(owner).__module__
    return module


def _describe(obj: Any) -> str:
    """A readable dotted name for a function object."""
    module = _module_of(obj)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
    return f"{module}.{name}" if module else str(name)


_PATHS: dict[str, str | None] = {}  # module name -> path prefix, found once per process


def _locate(name: str) -> str | None:
    """The path prefix of module ``name``: its package directory or its file without extension.

    Never imports it: a parent that is not imported yet is found with
    ``importlib.util.find_spec`` (which imports nothing for a top-level name).
    """
    import importlib.util

    module = sys.modules.get(name)
    if module is not None:
        return _package_path(module)
    parent, _, child = name.rpartition(".")
    if parent:
        base = _locate(parent)
        if not base or not base.endswith(os.sep):
            return None
        candidate = os.path.join(base, child)
        return candidate + os.sep if os.path.isdir(candidate) else candidate
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    origin = os.path.realpath(spec.origin)
    if spec.submodule_search_locations:
        return os.path.dirname(origin) + os.sep
    return os.path.splitext(origin)[0]


class ReferenceGuard:
    """Context manager: while it is active, running a reference implementation is recorded
    and, on exit, reported as :class:`ReferenceUsedError`.

    It watches every call made by the code inside it (``sys.setprofile``, and
    ``threading.setprofile`` for threads started inside), so it does not matter
    how the student reached the reference: ``np.convolve``, ``from numpy import
    convolve as c``, a default argument, a closure or an ``import`` inside the
    function. Catching the exception does not help either: the use is recorded
    and reported when the block ends. Removing the monitor from inside the block
    is itself reported.

    Args:
        what: what is being checked, for the message, e.g. ``"corr1d"``.
        blocked_modules: dotted package names whose code may not run.
        blocked_numpy: names of NumPy functions that may not run.
        allow: entries of ``blocked_modules`` to allow for this block.
    """

    def __init__(
        self,
        what: str,
        *,
        blocked_modules: Iterable[str] = BLOCKED_MODULES,
        blocked_numpy: Iterable[str] = BLOCKED_NUMPY,
        allow: Iterable[str] = (),
    ) -> None:
        self.what = what
        allowed = set(allow)
        self.blocked_modules = tuple(m for m in blocked_modules if m not in allowed)
        self.exempt_modules = EXEMPT_MODULES + tuple(allowed)
        self.blocked_numpy = tuple(blocked_numpy)
        self.used: list[str] = []
        self._keys: set[str] = set()

    # The set-up is done on entry, not in __init__, so that it sees the
    # modules imported by then (a package imported later is caught by its path).
    def _collect(self) -> None:
        self._path_prefixes = tuple(p for p in map(self._find_path, self.blocked_modules) if p)
        self._exempt_paths = tuple(p for p in map(self._find_path, self.exempt_modules) if p)
        self._exempt_prefixes = tuple(self.exempt_modules) + tuple(m + "." for m in self.exempt_modules)
        self._module_prefixes = tuple(m + "." for m in self.blocked_modules)
        self._codes: dict[types.CodeType, str] = {}
        self._c_functions: dict[int, str] = {}
        for name in self.blocked_numpy:
            func = getattr(np, name, None)
            impl = getattr(func, "_implementation", func)
            impl = inspect.unwrap(impl) if callable(impl) else impl
            code = getattr(impl, "__code__", None)
            if code is not None:
                self._codes[code] = f"numpy.{name}"
            elif func is not None:
                self._c_functions[id(func)] = f"numpy.{name}"
        multiarray = sys.modules.get("numpy._core.multiarray") or sys.modules.get("numpy.core.multiarray")
        if multiarray is not None:
            for name, public in _NUMPY_KERNELS.items():
                func = getattr(multiarray, name, None)
                if func is not None and public in self.blocked_numpy:
                    self._c_functions[id(func)] = f"numpy.{public}"

    @staticmethod
    def _find_path(name: str) -> str | None:
        """Where a module is (or would be) loaded from, without importing it; cached."""
        if name not in _PATHS:
            _PATHS[name] = _locate(name)
        return _PATHS[name]

    def _record(self, key: str, detail: str) -> None:
        """Remember one use per blocked package or function (``key``), with the first detail seen."""
        if key not in self._keys:
            self._keys.add(key)
            self.used.append(detail)

    def _module_key(self, module: str) -> str:
        for name in self.blocked_modules:
            if module == name or module.startswith(name + "."):
                return name
        return module

    def _hook(self, frame: types.FrameType, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            hit = self._codes.get(code)
            if hit is not None:
                self._record(hit, hit)
            elif (
                self._path_prefixes
                and code.co_filename.startswith(self._path_prefixes)
                and not (self._exempt_paths and code.co_filename.startswith(self._exempt_paths))
            ):
                module = str(frame.f_globals.get("__name__", code.co_filename))
                key = self._module_key(module)
                detail = f"import {key}" if code.co_name == "<module>" else f"{module}.{code.co_name}"
                self._record(key, detail)
        elif event == "c_call":
            hit = self._c_functions.get(id(arg))
            if hit is not None:
                self._record(hit, hit)
                return
            module = _module_of(arg)
            if (
                isinstance(module, str)
                and (module in self.blocked_modules or module.startswith(self._module_prefixes))
                and not (module in self.exempt_modules or module.startswith(self._exempt_prefixes))
            ):
                self._record(self._module_key(module), _describe(arg))

    def __enter__(self) -> "ReferenceGuard":
        self._collect()
        self.used = []
        self._keys: set[str] = set()
        self._previous = sys.getprofile()
        getprofile = getattr(threading, "getprofile", None)  # Python >= 3.12
        self._previous_threading = getprofile() if getprofile else getattr(threading, "_profile_hook", None)
        self._installed = self._hook  # one bound-method object, compared by identity on exit
        threading.setprofile(self._installed)
        sys.setprofile(self._installed)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        tampered = sys.getprofile() is not self._installed
        sys.setprofile(self._previous)
        threading.setprofile(self._previous_threading)
        if self.used:
            raise ReferenceUsedError(self.message()) from None
        if tampered:
            raise CheckFailed(
                f"{self.what}: the grader's monitor was switched off while your code ran "
                f"(sys.setprofile was changed). Answers must not change the interpreter's hooks."
            ) from None
        return False

    def message(self) -> str:
        used = ", ".join(self.used[:3]) + (" ..." if len(self.used) > 3 else "")
        off = ", ".join(f"numpy.{n}" for n in self.blocked_numpy)
        off = ", ".join(x for x in (off, ", ".join(self.blocked_modules)) if x)
        message = (
            f"{self.what} called {used}: reference implementations are switched off while your "
            f"answer is checked ({off}). Compute the result yourself, with loops, slicing, "
            f"np.pad, np.sum or np.dot."
        )
        if "scipy" in self._keys:
            message += (
                " All of SciPy counts: an FFT product (scipy.fft), a Toeplitz or circulant matrix "
                "(scipy.linalg) or a sparse matrix (scipy.sparse) computes the convolution for you "
                "as surely as scipy.signal does."
            )
        return message


def no_reference(what: str, **kwargs: Any) -> ReferenceGuard:
    """``with no_reference("conv2d"): out = conv2d(x, k)`` fails if conv2d used a reference.

    See :class:`ReferenceGuard` for the keyword arguments.
    """
    return ReferenceGuard(what, **kwargs)


# --------------------------------------------------------------------------
# Calling a student's function
# --------------------------------------------------------------------------


def _short(value: Any) -> str:
    """A compact description of an argument for messages: shapes for arrays."""
    if isinstance(value, np.ndarray):
        if value.size <= 8 and value.ndim <= 1:
            return _array2string(value, separator=", ", precision=4)
        return f"<array of shape {value.shape}>"
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return f"<{type(value).__name__} of length {len(value)}>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _signature(func: Callable, args: tuple, kwargs: dict) -> str:
    name = getattr(func, "__name__", "your function")
    parts = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def call(func: Callable, *args: Any, hint: str | None = None, guard: bool = True, **kwargs: Any) -> Any:
    """Run a student's ``func(*args, **kwargs)`` with the references switched off.

    Returns what the function returns. If it raises, :class:`CheckFailed` says
    which call raised what (and ``hint``); an unfinished answer that still
    raises ``NotImplementedError`` is named as such.
    """
    described = _signature(func, args, kwargs)
    if not callable(func):
        raise CheckFailed(f"expected a function, got {type(func).__name__} {func!r}")
    # the function gets copies of the test's arrays: what it does to its inputs stays with it
    args = tuple(_array(a, copy=True) if type(a) is _ndarray else a for a in args)
    kwargs = {k: (_array(v, copy=True) if type(v) is _ndarray else v) for k, v in kwargs.items()}
    try:
        if guard:
            with no_reference(getattr(func, "__name__", "your function")):
                return func(*args, **kwargs)
        return func(*args, **kwargs)
    except CheckFailed:
        raise
    except NotImplementedError:
        raise CheckFailed(
            f"{described}: not implemented yet (it still raises NotImplementedError). "
            f"Write your code in its answer cell, remove the `raise NotImplementedError()` line, "
            f"and run that cell again."
        ) from None
    except Exception as exc:  # the student's bug: say which call, and what it raised
        message = f"{described} raised {type(exc).__name__}: {exc}"
        if hint:
            message += f"\nCheck: {hint}"
        raise CheckFailed(message) from None


# --------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------


def _fail(name: str, problem: str, hint: str | None) -> None:
    message = f"{name}: {problem}"
    if hint:
        message += f"\nCheck: {hint}"
    raise CheckFailed(message)


def _format_array(a: np.ndarray) -> str:
    if a.size <= _MAX_SHOWN:
        return _array2string(a, precision=4, suppress_small=True, max_line_width=100)
    return f"<{a.shape} array, first entries {_array2string(a.ravel()[:6], precision=4)}...>"


def _as_numbers(name: str, value: Any, what: str, hint: str | None) -> np.ndarray:
    if value is None:
        _fail(name, f"{what} is None: an answer left as None is not filled in yet, and a function "
                    f"that returns None has forgotten its `return`", hint)
    if isinstance(value, (str, bytes)):
        _fail(name, f"{what} is the text {value!r}, not numbers", hint)
    try:
        array = _array(_asarray(value, dtype=float), dtype=float)  # a plain ndarray, never a subclass
    except (TypeError, ValueError) as exc:
        _fail(name, f"{what} ({type(value).__name__}) cannot be read as an array of numbers: {exc}", hint)
    return array


def _index(flat: int, shape: tuple[int, ...]) -> str:
    if not shape:
        return ""
    idx = _unravel_index(flat, shape)
    return str(tuple(int(i) for i in idx)) if len(idx) > 1 else str(int(idx[0]))


def check_shape(name: str, got: Any, expected_shape: Iterable[int], *, hint: str | None = None) -> None:
    """Fail unless ``got`` is an array of shape ``expected_shape``; the message names both shapes."""
    expected_shape = tuple(int(s) for s in expected_shape)
    got = _as_numbers(name, got, "your result", hint)
    if got.shape != expected_shape:
        _fail(
            name,
            f"your result has shape {got.shape}, but the expected shape is {expected_shape}",
            hint,
        )


def check_close(
    name: str,
    got: Any,
    expected: Any,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    hint: str | None = None,
) -> None:
    """Fail unless ``got`` equals ``expected`` within ``|got - expected| <= atol + rtol*|expected|``.

    The message gives, in this order, the first thing that is wrong: a missing
    result, a shape mismatch (both shapes), NaN or infinity, or the first wrong
    entry (its index, expected vs got) with the number of wrong entries.
    """
    expected = _asarray(expected, dtype=float)
    got = _as_numbers(name, got, "your result", hint)
    if got.shape != expected.shape:
        extra = ""
        if got.ndim == expected.ndim == 1 or got.ndim == expected.ndim == 2:
            extra = " (an off-by-one in the output size? count the window positions)"
        _fail(
            name,
            f"your result has shape {got.shape}, but the expected shape is {expected.shape}{extra}",
            hint,
        )
    bad_values = ~_isfinite(got) & _isfinite(expected)
    if bad_values.any():
        flat = int(_flatnonzero(bad_values)[0])
        _fail(
            name,
            f"your result has {got.ravel()[flat]} at index {_index(flat, got.shape)}; "
            f"expected {expected.ravel()[flat]:.6g}",
            hint,
        )
    with _errstate(invalid="ignore"):
        wrong = ~(_abs(got - expected) <= atol + rtol * _abs(expected))
    wrong &= ~(_isnan(got) & _isnan(expected))
    if not wrong.any():
        return
    flat = int(_flatnonzero(wrong)[0])
    where = _index(flat, got.shape)
    first = (
        f"at index {where}: expected {expected.ravel()[flat]:.6g}, got {got.ravel()[flat]:.6g}"
        if where
        else f"expected {expected.item():.6g}, got {got.item():.6g}"
    )
    problem = f"wrong value {first}"
    if got.size > 1:
        diff = _abs(got - expected)
        problem += (
            f"; {int(wrong.sum())} of {got.size} entries are wrong "
            f"(largest difference {_nanmax(diff):.3g})"
        )
        problem += f"\nexpected:\n{_format_array(expected)}\ngot:\n{_format_array(got)}"
    _fail(name, problem, hint)


def check_equal(name: str, got: Any, expected: Any, *, hint: str | None = None, reveal: bool = True) -> None:
    """Fail unless ``got == expected`` exactly (ints, strings, tuples, sets, booleans).

    With ``reveal=False`` the message says the answer is wrong without giving
    the expected value (for hidden tests whose feedback is shown to students).
    """
    if _same(got, expected):
        return
    if got is None:
        _fail(name, "the answer is still None: replace None by your answer", hint)
    if reveal:
        _fail(name, f"expected {expected!r}, got {got!r}", hint)
    _fail(name, f"your answer {got!r} is not right", hint)


def _plain(value: Any, kinds: tuple) -> bool:
    """``value`` is exactly one of ``kinds`` (a NumPy scalar counts as its kind), not a look-alike subclass."""
    kind = type(value)
    return kind in kinds or (issubclass(kind, _generic) and kind.__module__ == "numpy" and isinstance(value, kinds))


def _same(got: Any, expected: Any) -> bool:
    """Equality for short answers: numbers by value (5 == 5.0), booleans only as booleans.

    ``got`` must be a plain Python (or NumPy) value of the expected kind: an
    object of some other class never compares equal, whatever its ``__eq__``.
    """
    if isinstance(expected, (bool, _bool_)) or isinstance(got, (bool, _bool_)):
        both = _plain(expected, (bool, _bool_)) and _plain(got, (bool, _bool_))
        return both and bool(got) == bool(expected)
    if isinstance(expected, numbers.Real):
        return _plain(got, _NUMBER_TYPES) and _isclose(float(got), float(expected), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(expected, str):
        return type(got) is str and str.__eq__(got, expected)
    if isinstance(expected, (tuple, list)):
        return (
            type(got) in (tuple, list)
            and len(got) == len(expected)
            and all(_same(g, e) for g, e in zip(got, expected))
        )
    if isinstance(expected, (set, frozenset)):
        return type(got) in (set, frozenset) and len(got) == len(expected) and all(
            any(_same(g, e) for e in expected) for g in got)
    if isinstance(expected, type):
        return got is expected
    if expected is None:
        return got is None
    try:
        return type(got) is type(expected) and bool(got == expected)
    except Exception:
        return False


def check_raises(
    name: str,
    func: Callable,
    *args: Any,
    exc: type[BaseException] = ValueError,
    match: str | None = None,
    hint: str | None = None,
    **kwargs: Any,
) -> None:
    """Fail unless the student's ``func(*args, **kwargs)`` raises ``exc`` (with ``match`` in its message).

    The call runs with the references switched off, like :func:`call`. Returns
    None on purpose: a test cell ending in this call must not display a value,
    because nbgrader reads a cell's displayed value as partial credit.
    """
    described = _signature(func, args, kwargs)
    try:
        with no_reference(getattr(func, "__name__", "your function")):
            result = func(*args, **kwargs)
    except ReferenceUsedError:
        raise
    except NotImplementedError:
        _fail(name, f"{described} is not implemented yet (it still raises NotImplementedError)", hint)
    except exc as raised:
        if match is not None and match not in str(raised):
            _fail(name, f"{described} raised {type(raised).__name__}: {raised}; the message should mention {match!r}", hint)
        return None
    except Exception as other:
        _fail(name, f"{described} should raise {exc.__name__}, but raised {type(other).__name__}: {other}", hint)
    got = f"an array of shape {result.shape}" if isinstance(result, np.ndarray) else _short(result)
    _fail(name, f"{described} should raise {exc.__name__}, but it returned {got}", hint)
    raise AssertionError("unreachable")  # pragma: no cover


def grade_answers(
    answers: Mapping[str, Any],
    expected: Mapping[str, Any],
    points: float,
    *,
    reveal: bool = False,
) -> float:
    """Partial credit for a group of short answers: ``points * (number right) / len(expected)``.

    Prints one line per answer (right / wrong / missing, without the expected
    value unless ``reveal``) and returns the points, so that a test cell ending
    in ``grade_answers(...)`` gets that many points from nbgrader (its partial
    credit reads the cell's result).
    """
    right = 0
    for key, want in expected.items():
        if key not in answers:
            print(f"  {key}: missing")
            continue
        got = answers[key]
        if _same(got, want):
            right += 1
            print(f"  {key}: right")
        elif got is None:
            print(f"  {key}: not answered (still None)")
        else:
            print(f"  {key}: {got!r} is wrong" + (f" (expected {want!r})" if reveal else ""))
    earned = points * right / len(expected)
    print(f"{right} of {len(expected)} right: {earned:g} of {points:g} points")
    return float(round(earned, 6))
