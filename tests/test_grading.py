"""cs_utils.grading: messages that teach, and answers that may not call the reference."""

import sys
import threading

import numpy as np
import pytest

from cs_utils import grading
from cs_utils.grading import (
    CheckFailed,
    ReferenceUsedError,
    call,
    check_close,
    check_equal,
    check_raises,
    check_shape,
    grade_answers,
    no_reference,
)

X = np.arange(6.0)
W = np.array([1.0, 0.0, -1.0])
EXPECTED = np.array([-2.0, -2.0, -2.0, -2.0])  # worked out by hand: x[i] - x[i+2]


def own_corr(x, w):
    n = len(x) - len(w) + 1
    return np.array([np.dot(x[i:i + len(w)], w) for i in range(n)])


# --------------------------------------------------------------------------- messages


def _message(check, *args, **kwargs) -> str:
    with pytest.raises(CheckFailed) as info:
        check(*args, **kwargs)
    return str(info.value)


def test_check_close_passes_within_tolerance_and_fails_outside():
    check_close("ok", [1.0, 2.0 + 1e-9], [1.0, 2.0])
    message = _message(check_close, "corr1d(x, w)", [1.0, 2.5, 3.0], [1.0, 2.0, 3.0], hint="look at w[0]")
    assert message.startswith("corr1d(x, w): wrong value at index 1: expected 2, got 2.5")
    assert "1 of 3 entries are wrong" in message
    assert message.endswith("Check: look at w[0]")


def test_check_close_names_the_first_wrong_index_of_a_2d_result():
    got = np.zeros((3, 4))
    got[2, 1] = 7
    message = _message(check_close, "conv2d", got, np.zeros((3, 4)))
    assert "at index (2, 1): expected 0, got 7" in message
    assert "expected:\n" in message and "got:\n" in message


def test_shape_mismatch_names_both_shapes():
    message = _message(check_close, "conv2d(5x5, 3x3)", np.zeros((5, 5)), np.zeros((3, 3)))
    assert "your result has shape (5, 5), but the expected shape is (3, 3)" in message
    message = _message(check_shape, "smooth", np.zeros(7), (6,), hint="one value per t")
    assert "shape (7,)" in message and "(6,)" in message and "one value per t" in message


@pytest.mark.parametrize(
    "got, fragment",
    [
        (None, "is None"),
        ("[1, 2]", "is the text"),
        (np.array([1.0, np.nan, 3.0]), "nan at index 1"),
        (np.array([1.0, np.inf, 3.0]), "inf at index 1"),
        ({"a": 1}, "cannot be read as an array of numbers"),
    ],
)
def test_results_that_are_not_numbers_are_explained(got, fragment):
    assert fragment in _message(check_close, "f", got, [1.0, 2.0, 3.0])


def test_check_equal_is_strict_about_booleans_and_lenient_about_int_vs_float():
    check_equal("size", 5.0, 5)
    check_equal("shape", (32, 32, 10), (32, 32, 10))
    check_equal("fits", np.bool_(False), False)
    assert "expected False, got 0" in _message(check_equal, "fits", 0, False)
    assert "still None" in _message(check_equal, "size", None, 5)
    hidden = _message(check_equal, "params", 750, 760, reveal=False)
    assert "750" in hidden and "760" not in hidden
    assert "expected {'a'}" in _message(check_equal, "names", {"b"}, {"a"})


def test_call_turns_exceptions_into_sentences():
    def unfinished(x, w):
        raise NotImplementedError()

    def buggy(x, w):
        return x[len(x) + 3]

    assert "not implemented yet" in _message(call, unfinished, X, W)
    message = _message(call, buggy, X, W, hint="check the loop range")
    assert message.startswith("buggy([0., 1., 2., 3., 4., 5.], [ 1.,  0., -1.]) raised IndexError")
    assert message.endswith("Check: check the loop range")
    assert "array of shape (40, 40)" in _message(call, buggy, np.zeros((40, 40)), W)


def test_check_raises():
    def strict(n):
        if n < 0:
            raise ValueError("n must be >= 0")
        return n

    assert check_raises("negative", strict, -1, exc=ValueError, match="n must") is None
    assert "should raise ValueError, but it returned 3" in _message(check_raises, "positive", strict, 3)
    assert "the message should mention 'stride'" in _message(check_raises, "m", strict, -1, match="stride")
    assert "should raise ValueError, but raised TypeError" in _message(check_raises, "t", strict, "a")


def test_grade_answers_gives_partial_credit(capsys):
    earned = grade_answers({"a": 5, "b": (32, 32, 10), "c": None, "d": 750},
                           {"a": 5, "b": (32, 32, 10), "c": False, "d": 760}, points=8)
    assert earned == 4.0
    out = capsys.readouterr().out
    assert "c: not answered" in out and "d: 750 is wrong" in out and "760" not in out
    assert grade_answers({"a": 1}, {"a": 1, "b": 2}, points=3) == 1.5


# --------------------------------------------------------------------------- the reference guard

from numpy import convolve as np_convolve_alias  # noqa: E402  (a student's aliased import)


def via_np_convolve(x, w):
    return np.convolve(x, w[::-1], mode="valid")


def via_alias(x, w):
    return np_convolve_alias(x, w[::-1], mode="valid")


def via_default_argument(x, w, _c=np.correlate):
    return _c(x, w, mode="valid")


def via_swallowed_error(x, w):
    try:
        return np.correlate(x, w, mode="valid")
    except Exception:
        return own_corr(x, w)


def via_polymul(x, w):
    from numpy.polynomial import polynomial

    return polynomial.polymul(x, w[::-1])[len(w) - 1: len(x)]  # polynomial product = full convolution


def via_scipy_signal(x, w):
    from scipy import signal

    return signal.correlate(x, w, mode="valid")


def via_scipy_ndimage(x, w):
    from scipy import ndimage

    half = len(w) // 2  # ndimage centres the filter: keep the valid middle (odd len(w))
    return ndimage.correlate1d(x, w, mode="constant")[half: len(x) - half]


def via_scipy_fft(x, w):
    from scipy import fft

    n = len(x) + len(w) - 1  # convolution theorem: the full convolution is a product of spectra
    full = fft.irfft(fft.rfft(x, n) * fft.rfft(w[::-1], n), n)
    return full[len(w) - 1: len(x)]


def via_scipy_linalg_toeplitz(x, w):
    from scipy.linalg import toeplitz

    n = len(x) - len(w) + 1  # row i of the (n, N) Toeplitz matrix holds w at columns i .. i + K - 1
    first_column = np.zeros(n)
    first_column[0] = w[0]
    return toeplitz(first_column, np.concatenate([w, np.zeros(len(x) - len(w))])) @ x


def via_scipy_sparse(x, w):
    from scipy import sparse

    n = len(x) - len(w) + 1  # a banded matrix with w on its diagonals, times x
    band = sparse.diags([np.full(n, v) for v in w], offsets=list(range(len(w))), shape=(n, len(x)))
    return band @ x


def via_torch(x, w):
    import torch

    return torch.nn.functional.conv1d(torch.tensor(x)[None, None], torch.tensor(w)[None, None])[0, 0].numpy()


def via_cs_utils_functional(x, w):
    from cs_utils.functional import conv1d

    return conv1d(x, w)


def via_cs_utils_shapes(x, w):
    from cs_utils.shapes import conv_output_size

    return own_corr(x, w)[: conv_output_size(len(x), len(w))]


def via_a_thread(x, w):
    box = []
    thread = threading.Thread(target=lambda: box.append(np.convolve(x, w[::-1], mode="valid")))
    thread.start()
    thread.join()
    return box[0]


@pytest.mark.parametrize(
    "answer, named",
    [
        (via_np_convolve, "numpy.convolve"),
        (via_alias, "numpy.convolve"),
        (via_default_argument, "numpy.correlate"),
        (via_swallowed_error, "numpy.correlate"),
        (via_polymul, "numpy.convolve"),
        (via_scipy_signal, "scipy.signal"),
        (via_scipy_ndimage, "scipy.ndimage"),
        (via_scipy_fft, "scipy.fft"),
        (via_scipy_linalg_toeplitz, "scipy.linalg"),
        (via_scipy_sparse, "scipy.sparse"),
        (via_torch, "torch"),
        (via_cs_utils_functional, "cs_utils.functional.conv1d"),
        (via_cs_utils_shapes, "cs_utils.shapes.conv_output_size"),
        (via_a_thread, "numpy.convolve"),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_an_answer_that_calls_a_reference_gets_no_credit(answer, named):
    # every one of these computes the right numbers...
    check_close("the reference really is right", answer(X, W), EXPECTED)
    # ...and fails while it is being checked, saying what it called
    with pytest.raises(ReferenceUsedError) as info:
        call(answer, X, W)
    message = str(info.value)
    assert message.startswith(f"{answer.__name__} called ") and named in message
    assert "switched off while your answer is checked" in message


@pytest.mark.parametrize("answer", [via_scipy_fft, via_scipy_linalg_toeplitz, via_scipy_sparse],
                         ids=lambda f: f.__name__)
def test_the_message_explains_that_all_of_scipy_counts(answer):
    message = _message(call, answer, X, W)
    assert "All of SciPy counts" in message and "scipy.fft" in message and "Toeplitz" in message
    # the hint is only for SciPy: a NumPy reference gets the plain message
    assert "All of SciPy" not in _message(call, via_np_convolve, X, W)


def test_numpy_answers_built_like_the_scipy_ones_pass():
    import scipy.linalg  # noqa: F401  (imported, never called: importing alone costs nothing)

    def numpy_toeplitz(x, w):
        n = len(x) - len(w) + 1
        matrix = np.zeros((n, len(x)))
        for i in range(n):
            matrix[i, i:i + len(w)] = w  # the same Toeplitz matrix, built by hand
        return matrix @ x

    def numpy_fft(x, w):
        n = len(x) + len(w) - 1
        full = np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(w[::-1], n), n)
        return full[len(w) - 1: len(x)]

    for answer in (numpy_toeplitz, numpy_fft):
        check_close(answer.__name__, call(answer, X, W), EXPECTED)
    rng = np.random.default_rng(5)
    x, w = rng.normal(size=40), rng.normal(size=7)
    oracle = [sum(x[i + k] * w[k] for k in range(7)) for i in range(34)]
    check_close("numpy_toeplitz, random", call(numpy_toeplitz, x, w), oracle)


def test_an_own_implementation_passes_with_allowed_numpy():
    def vectorised(x, w):
        windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, 0), len(w))
        return np.einsum("ik,k->i", windows, w) + np.sum(np.zeros(1)) + np.fft.rfft(x).real[0] * 0

    check_close("own loops", call(own_corr, X, W), EXPECTED)
    check_close("sliding windows", call(vectorised, X, W), EXPECTED)


def test_switching_the_monitor_off_is_itself_a_failure():
    def tamper(x, w):
        sys.setprofile(None)
        return np.convolve(x, w[::-1], mode="valid")

    with pytest.raises(CheckFailed, match="monitor was switched off"):
        call(tamper, X, W)


def test_the_guard_restores_the_previous_profiler_and_the_references():
    before = sys.getprofile()
    with pytest.raises(ReferenceUsedError):
        call(via_np_convolve, X, W)
    assert sys.getprofile() is before
    # outside the guard the references work (hidden tests use them as oracles)
    check_close("np.convolve after the guard", np.convolve(X, W[::-1], mode="valid"), EXPECTED)

    def outer_profiler(frame, event, arg):
        return None

    sys.setprofile(outer_profiler)
    try:
        call(own_corr, X, W)
        assert sys.getprofile() is outer_profiler
    finally:
        sys.setprofile(None)


def test_allow_lets_a_check_permit_one_package():
    with no_reference("torch allowed", allow=("torch",)):
        via_torch(X, W)
    with pytest.raises(ReferenceUsedError):
        with no_reference("torch blocked"):
            via_torch(X, W)


def test_the_checks_themselves_are_never_blocked():
    # check_close and friends run inside the guard's module (cs_utils.grading) without tripping it
    with no_reference("checks inside the guard"):
        check_close("inside", own_corr(X, W), EXPECTED)
        check_shape("inside", EXPECTED, (4,))
    assert "cs_utils.grading" in grading.EXEMPT_MODULES
