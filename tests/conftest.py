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


def check_conv_against_torch(x_shape, w_spec, stride, pad, backend, rng):
    """Random x (x_shape), w (F, C, HH, WW) from w_spec = (F, HH, WW) and b through
    cs_utils' conv_forward/backward on ``backend``, checked against torch autograd in
    float64. Returns (out, dx, dw, db)."""
    from cs_utils import functional as F
    import torch.nn.functional as TF

    f, hh, ww = w_spec
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((f, x_shape[1], hh, ww))
    b = rng.standard_normal(f)
    out, cache = F.conv_forward(x, w, b, stride, pad, backend=backend)
    dout = rng.standard_normal(out.shape)
    ref_out, (ref_dx, ref_dw, ref_db) = torch_grads(
        lambda x, w, b: TF.conv2d(x, w, b, stride=stride, padding=pad), (x, w, b), dout
    )
    np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-10)
    dx, dw, db = F.conv_backward(dout, cache)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db, ref_db, rtol=1e-10, atol=1e-10)
    return out, dx, dw, db


def load_bench_conv():
    """bench/conv.py as a module (its case table and FLOP count are oracles for the plots)."""
    import importlib.util

    path = COURSE_ROOT / "bench" / "conv.py"  # COURSE_ROOT: defined with the pipeline fixtures below
    spec = importlib.util.spec_from_file_location("bench_conv", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------
# nbgrader pipeline fixtures (issue 3: tests/test_pipeline*.py, test_release*.py,
# test_collect*.py). A class of sample submissions is made from the released
# notebook, collected from a zip and graded once per session with real nbgrader.
# ----------------------------------------------------------------------------

import json as _json
import os as _os
import re as _re
import subprocess as _subprocess
import sys as _sys
import zipfile as _zipfile
from pathlib import Path as _Path
from types import SimpleNamespace as _Namespace

COURSE_ROOT = _Path(__file__).resolve().parents[1]
A1 = "a1_convolution"
A1_NOTEBOOK = "convolution.ipynb"

# Answer cells of the sample submissions that are not the solution.
A1_PARTIAL_ANSWERS = {
    # forgets to flip the kernel: convolve1d is a cross-correlation
    "q2_convolve1d-answer": "def convolve1d(x, w):\n    return corr1d(x, w)\n",
    # forgets the biases in the parameter count
    "q5_sizes-answer": (
        "size_7x7_stride1 = 5\nsize_7x7_stride2 = 3\nstride3_fits = False\nsize_7x7_pad1 = 7\n"
        "volume_32x32x3_ten_5x5 = (32, 32, 10)\nparams_ten_5x5 = 10 * 5 * 5 * 3\n"
        "size_alexnet_conv1 = 55\nparams_alexnet_conv1 = 96 * (11 * 11 * 3 + 1)\n"
    ),
    # forgets the sharpen kernel (its entries add up to 1 as well)
    "q10_flat-answer": 'FLAT_UNCHANGED = {"identity", "box_blur", "gaussian_blur"}\n',
}
# A correct answer that prints a UserWarning to stderr while the tests run: nbgrader
# scores any cell with stderr output 0 unless IgnorePattern drops it (nbgrader_config.py).
A1_WARNING_ANSWERS = {
    "q1_corr1d-answer": (
        "import warnings\n\n"
        "def corr1d(x, w):\n"
        "    warnings.warn('corr1d: this loop is slow', UserWarning)\n"
        "    x = np.asarray(x, dtype=float)\n"
        "    w = np.asarray(w, dtype=float)\n"
        "    if len(w) > len(x):\n"
        "        raise ValueError('the filter is longer than the input')\n"
        "    return np.array([np.dot(x[i:i + len(w)], w) for i in range(len(x) - len(w) + 1)])\n"
    ),
}
A1_REFERENCE_ANSWERS = {
    # numerically right, but by calling the reference
    "q1_corr1d-answer": (
        "def corr1d(x, w):\n"
        "    x = np.asarray(x, dtype=float)\n"
        "    w = np.asarray(w, dtype=float)\n"
        "    if len(w) > len(x):\n"
        "        raise ValueError('the filter is longer than the input')\n"
        "    return np.convolve(x, w[::-1], mode='valid')\n"
    ),
}


def a1_points() -> dict:
    """grade_id -> points of every test cell, read from the source notebook's metadata."""
    return assignment_points(A1)


def a1_expected_grades() -> dict:
    """student -> {grade_id: expected points}, worked out from what each sample gets wrong."""
    full = a1_points()
    zero = dict.fromkeys(full, 0.0)
    partial = dict(full)
    partial.update({
        "q2_convolve1d-visible": 0.0,  # convolve1d([1, 2, 3], [1, 10]) gives [21, 32], not [12, 23]
        "q2_convolve1d-hidden": 0.0,
        "q3_sensor-hidden": 0.0,  # convolve1d(X_SENSOR, W_FOR_CONVOLVE) no longer matches the formula
        "q5_sizes-hidden": full["q5_sizes-hidden"] * 7 / 8,  # 7 of 8 short answers right
        "q10_flat-hidden": round(full["q10_flat-hidden"] * 6 / 7, 6),  # 6 of 7 kernels classified right
    })
    reference = dict(full)
    # corr1d calls np.convolve; convolve1d and smooth_positions call corr1d: all three lose their points
    for question in ("q1_corr1d", "q2_convolve1d", "q3_sensor"):
        reference[f"{question}-visible"] = 0.0
        reference[f"{question}-hidden"] = 0.0
    return {"solution": full, "untouched": zero, "partial": partial, "reference": reference, "warning": dict(full)}


@pytest.fixture(scope="session")
def a1_class(tmp_path_factory):
    """Sample submissions collected from a zip and graded by `cs-course grade -j 2`.

    Students: solution, untouched (the release as handed out), partial, reference
    (calls np.convolve), warning (right, but warns on stderr), and broken (a file
    that is not a notebook, placed directly in submitted/ as if it had slipped past collect).
    """
    import nbformat

    from cs_utils.course import collect, fill_release

    workspace = tmp_path_factory.mktemp("a1_workspace")
    release_nb = COURSE_ROOT / "assignments" / A1 / A1_NOTEBOOK
    source_nb = COURSE_ROOT / "solutions" / A1 / A1_NOTEBOOK
    inbox = workspace.parent / "a1_inbox.zip"
    with _zipfile.ZipFile(inbox, "w") as zf:
        submissions = {
            "solution": nbformat.writes(fill_release(release_nb, source_nb)),
            "untouched": release_nb.read_text(),
            "partial": nbformat.writes(fill_release(release_nb, source_nb, answers=A1_PARTIAL_ANSWERS)),
            "reference": nbformat.writes(fill_release(release_nb, source_nb, answers=A1_REFERENCE_ANSWERS)),
            "warning": nbformat.writes(fill_release(release_nb, source_nb, answers=A1_WARNING_ANSWERS)),
        }
        for student, text in submissions.items():
            zf.writestr(f"{student}/{A1}/{A1_NOTEBOOK}", text)
    collected = collect(workspace, inbox, course=COURSE_ROOT)
    broken = workspace / "submitted" / "broken" / A1
    broken.mkdir(parents=True)
    (broken / A1_NOTEBOOK).write_text("{ this is not a notebook")
    env = dict(_os.environ, PATH=str(_Path(_sys.executable).parent) + _os.pathsep + _os.environ.get("PATH", ""))
    # the console script that pyproject.toml declares, installed next to this interpreter
    cli = [str(_Path(_sys.executable).parent / "cs-course"), "--course", str(COURSE_ROOT)]
    started = __import__("time").perf_counter()
    graded = _subprocess.run(cli + ["grade", str(workspace), A1, "-j", "2", "--no-progress"],
                             capture_output=True, text=True, env=env, timeout=900)
    seconds = __import__("time").perf_counter() - started
    return _Namespace(workspace=workspace, collected=collected, grade_run=graded, grade_seconds=seconds,
                      cli=cli, env=env, expected=a1_expected_grades())


# ----------------------------------------------------------------------------
# Assignments 2-4 (issue 5: tests/test_a2*.py, test_a3*.py, test_a4*.py).
# The same pipeline as a1_class above, for any assignment: sample submissions
# made from the release (untouched, the solution, the solution with some answer
# cells replaced), collected and graded with real nbgrader through
# cs_utils.course, scores read back from the gradebook.
# ----------------------------------------------------------------------------


def assignment_notebooks(assignment: str) -> tuple[_Path, _Path]:
    """(source notebook in solutions/, released notebook in assignments/) of a one-notebook assignment."""
    sources = sorted((COURSE_ROOT / "solutions" / assignment).glob("*.ipynb"))
    assert len(sources) == 1, f"expected one notebook in solutions/{assignment}, found {sources}"
    return sources[0], COURSE_ROOT / "assignments" / assignment / sources[0].name


def assignment_points(assignment: str) -> dict:
    """grade_id -> points of every graded cell of the assignment's source notebook."""
    nb = _json.loads(assignment_notebooks(assignment)[0].read_text())
    points = {}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            points[meta["grade_id"]] = float(meta["points"])
    return points


def solution_code(assignment: str, grade_id: str) -> str:
    """The solution of one answer cell, as a student would submit it (region markers removed)."""
    from cs_utils.course import strip_markers

    nb = _json.loads(assignment_notebooks(assignment)[0].read_text())
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return strip_markers("".join(cell["source"]))
    raise KeyError(f"no cell {grade_id} in the source of {assignment}")


def mutated_solution(assignment: str, grade_id: str, old: str, new: str) -> str:
    """The solution of one answer cell with exactly one occurrence of ``old`` replaced by ``new``."""
    code = solution_code(assignment, grade_id)
    assert code.count(old) == 1, f"{old!r} occurs {code.count(old)} times in the solution of {grade_id}"
    return code.replace(old, new)


def gradebook_grades(workspace: _Path, assignment: str, student: str) -> tuple[dict, float, float]:
    """({grade_id: points}, total, max total) of one submission, read from the workspace's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}", "cnn-course") as gb:
        submission = gb.find_submission(assignment, student)
        grades = {g.name: float(g.score) for nb in submission.notebooks for g in nb.grades}
        return grades, float(submission.score), float(submission.max_score)


def grade_sample_class(workspace: _Path, assignment: str, submissions: dict, *, jobs: int = 2):
    """Submit, collect and autograde sample submissions of one assignment with real nbgrader.

    ``submissions`` maps a student id to None (the release as handed out) or to a dict
    {answer grade_id: code} (the solution, with those answer cells replaced; {} is the
    solution itself). Returns a namespace with the workspace, the collect report, the
    GradeResult of each student (with its autograde time), the grades from the gradebook
    and the wall time of the whole batch.
    """
    import time

    import nbformat

    from cs_utils.course import collect, fill_release, grade

    source_nb, release_nb = assignment_notebooks(assignment)
    inbox = workspace.parent / f"{workspace.name}_inbox"
    for student, answers in submissions.items():
        target = inbox / student / assignment / release_nb.name
        target.parent.mkdir(parents=True)
        if answers is None:
            target.write_text(release_nb.read_text())
        else:
            nbformat.write(fill_release(release_nb, source_nb, answers=answers), target)
    collected = collect(workspace, inbox, course=COURSE_ROOT)
    started = time.perf_counter()
    results = grade(workspace, assignment, jobs=jobs, course=COURSE_ROOT, progress=False)
    seconds = time.perf_counter() - started
    grades = {r.student: gradebook_grades(workspace, assignment, r.student) for r in results if r.ok}
    for r in results:
        print(f"autograde {assignment} {r.student}: {r.seconds:.1f} s, score {r.score}")
    print(f"autograde {assignment}: {len(results)} submissions in {seconds:.1f} s with -j {jobs}")
    return _Namespace(workspace=workspace, collected=collected, results={r.student: r for r in results},
                      grades=grades, seconds=seconds)


def hidden_test_lines(assignment: str, min_length: int = 26) -> set:
    """Distinctive lines of code inside the hidden-test regions of an assignment's source
    notebook that appear nowhere outside them (those are what feedback must not show)."""
    nb = _json.loads(assignment_notebooks(assignment)[0].read_text())
    hidden, public = set(), set()
    for cell in nb["cells"]:
        inside = False
        for line in "".join(cell["source"]).splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif len(line.strip()) >= min_length:
                (hidden if inside else public).add(line.strip())
    return {line for line in hidden - public if not any(line in p for p in public)}


def feedback_pages(workspace: _Path, assignment: str) -> dict:
    """student -> text of the HTML feedback that `cs-course feedback` writes for a graded class."""
    import html

    from cs_utils.course import feedback

    return {p.parts[-3]: html.unescape(p.read_text()) for p in feedback(workspace, assignment, course=COURSE_ROOT)}


# ----------------------------------------------------------------------------
# Checks that every assignment's end-to-end test makes (test_a1 via the pipeline
# tests, test_a2*.py, test_a3*.py, test_a4*.py): one place for each.
# ----------------------------------------------------------------------------


def expected_class_grades(assignment: str, lost: dict) -> dict:
    """student -> {grade_id: expected points}: full marks except the grade_ids in ``lost[student]`` (0)."""
    full = assignment_points(assignment)
    return {student: {gid: (0.0 if gid in gone else pts) for gid, pts in full.items()} for student, gone in lost.items()}


def assert_points_table(assignment: str, *, ungraded_rows: bool = False) -> None:
    """Points add up to 100, each question has a visible and a hidden test, every hidden test cell
    has its hidden region, and the table of parts in the introduction states each question's
    points in question order (``ungraded_rows``: the table also lists parts worth 0, skipped)."""
    import nbformat

    points = assignment_points(assignment)
    assert sum(points.values()) == 100
    questions = sorted({gid.rsplit("-", 1)[0] for gid in points}, key=lambda q: int(q[1:].split("_")[0]))
    for q in questions:
        assert f"{q}-visible" in points and f"{q}-hidden" in points, q
    source = nbformat.read(assignment_notebooks(assignment)[0], as_version=4)
    for cell in source.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if gid.endswith("-hidden"):
            assert "### BEGIN HIDDEN TESTS" in cell.source, gid
    table = [int(m) for m in _re.findall(r"^\| [\d.]+ \|.*\| (\d+) \|$", source.cells[0].source, _re.M)]
    if ungraded_rows:
        table = [t for t in table if t]
    assert table == [points[f"{q}-visible"] + points[f"{q}-hidden"] for q in questions]


def assert_class_graded(graded, students) -> None:
    """Every sample submission of a ``grade_sample_class`` run was collected and graded."""
    assert graded.collected.problems == []
    assert {s: r.error for s, r in graded.results.items() if not r.ok} == {}
    assert sorted(graded.grades) == sorted(students)


def assert_gradebook_scores(graded, student: str, expected: dict) -> None:
    """The gradebook holds ``expected`` ({grade_id: points}) for ``student``, out of 100."""
    grades, total, max_total = graded.grades[student]
    assert max_total == 100
    assert grades == pytest.approx(expected, abs=1e-4)
    assert total == pytest.approx(sum(expected.values()), abs=1e-4)


def cell_errors(graded, assignment: str, student: str, grade_id: str) -> list:
    """[(ename, evalue)] of the errors a cell of a student's autograded notebook shows."""
    import nbformat

    path = graded.workspace / "autograded" / student / assignment / assignment_notebooks(assignment)[1].name
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return [(o.ename, o.evalue) for o in cell.outputs if o.output_type == "error"]


def assert_feedback_hides_hidden_tests(pages: dict, assignment: str, students, *, min_hidden: int,
                                       min_length: int = 26) -> None:
    """Feedback ``pages`` (student -> text) exist for exactly ``students`` and show no line of the
    hidden tests (at least ``min_hidden`` of them, so the check has something to find) and no
    region marker."""
    assert sorted(pages) == sorted(students)
    hidden = hidden_test_lines(assignment, min_length)
    assert len(hidden) > min_hidden
    for student, text in pages.items():
        leaked = [line for line in hidden if line in text]
        assert leaked == [], (student, leaked[:3])
        assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text, student
