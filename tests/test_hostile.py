"""Hostile submissions: each is graded with the score it deserves, and the batch always completes.

One class of submissions of assignment 1, each breaking the rules in its own
way, is graded once (``cs-course grade -j 2`` with short limits). For every
submission the expected points of every test cell are worked out from what it
does: structural damage (deleted, reordered, tampered, duplicated cells,
edited metadata, a renamed notebook) is undone by the grader and costs
nothing; code that misbehaves at run time (loops, exits, a killed kernel, a
memory bomb, a flood of output) costs the question it sits in and nothing
else; code that tries to fool the checks (monkeypatching NumPy or the grading
helpers, IPython hooks, trace functions, peeking at a hidden test's expected
values) is not run, so the wrong answer it tries to cover stays wrong;
reading files outside the submission fails.

Further down: fast checks of the pieces without kernels (the static policy
against each attack and against every solution notebook, the grading
module's hardening, the referee, the audit hook in a subprocess).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest

from conftest import A1, A1_NOTEBOOK, A1_WARNING_ANSWERS, COURSE_ROOT, a1_points

RELEASE_NB = COURSE_ROOT / "assignments" / A1 / A1_NOTEBOOK
SOURCE_NB = COURSE_ROOT / "solutions" / A1 / A1_NOTEBOOK
FLAT_RIGHT = 'FLAT_UNCHANGED = {"identity", "sharpen", "box_blur", "gaussian_blur"}\n'
WRONG_CORR1D = (
    "def corr1d(x, w):\n"
    "    x = np.asarray(x, dtype=float)\n"
    "    w = np.asarray(w, dtype=float)\n"
    "    if len(w) > len(x):\n"
    "        raise ValueError('the filter is longer than the input')\n"
    "    return np.zeros(len(x) - len(w) + 1)\n"
)
SCIPY_CONV2D = (
    "import scipy.signal\n\n"
    "def conv2d(image, kernel, stride=1, pad=0):\n"
    "    image = np.asarray(image, dtype=float)\n"
    "    kernel = np.asarray(kernel, dtype=float)\n"
    "    ho = output_size(image.shape[0], kernel.shape[0], stride, pad)\n"
    "    wo = output_size(image.shape[1], kernel.shape[1], stride, pad)\n"
    "    full = scipy.signal.correlate2d(np.pad(image, pad), kernel, mode='valid')\n"
    "    return full[::stride, ::stride][:ho, :wo]\n"
)
# corr1d through other parts of SciPy (q2 and q3 call corr1d too): the same fate as scipy.signal
SCIPY_FFT_CORR1D = (
    "import scipy.fft\n\n"
    "def corr1d(x, w):\n"
    "    x = np.asarray(x, dtype=float)\n"
    "    w = np.asarray(w, dtype=float)\n"
    "    if len(w) > len(x):\n"
    "        raise ValueError('the filter is longer than the input')\n"
    "    n = len(x) + len(w) - 1\n"
    "    full = scipy.fft.irfft(scipy.fft.rfft(x, n) * scipy.fft.rfft(w[::-1], n), n)\n"
    "    return full[len(w) - 1: len(x)]\n"
)
SCIPY_TOEPLITZ_CORR1D = (
    "from scipy.linalg import toeplitz\n\n"
    "def corr1d(x, w):\n"
    "    x = np.asarray(x, dtype=float)\n"
    "    w = np.asarray(w, dtype=float)\n"
    "    if len(w) > len(x):\n"
    "        raise ValueError('the filter is longer than the input')\n"
    "    n = len(x) - len(w) + 1\n"
    "    first_column = np.zeros(n)\n"
    "    first_column[0] = w[0]\n"
    "    return toeplitz(first_column, np.concatenate([w, np.zeros(len(x) - len(w))])) @ x\n"
)
REFERENCE_NOTE = "no credit, the answer ran a reference implementation"
LIMITS = ["--timeout", "10", "--budget", "240", "--memory", "2048"]


# --------------------------------------------------------------------------
# building the submissions
# --------------------------------------------------------------------------


def _solution():
    from cs_utils.course import fill_release

    return fill_release(RELEASE_NB, SOURCE_NB)


def _index(nb, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _answer(nb, grade_id: str, source: str):
    nb.cells[_index(nb, grade_id)].source = source
    return nb


def _insert_after(nb, grade_id: str, source: str):
    nb.cells.insert(_index(nb, grade_id) + 1, nbformat.v4.new_code_cell(source))
    return nb


def _release_cell(grade_id: str):
    release = nbformat.read(RELEASE_NB, as_version=4)
    return release.cells[_index(release, grade_id)]


def _lose(*grade_ids: str, **partial: float) -> dict:
    """The expected points: full marks except the named cells (0) and the partial ones."""
    points = a1_points()
    for grade_id in grade_ids:
        points[grade_id] = 0.0
    points.update({k.replace("__", "-"): v for k, v in partial.items()})
    return points


Q1_TO_Q3 = ("q1_corr1d-visible", "q1_corr1d-hidden", "q2_convolve1d-visible", "q2_convolve1d-hidden",
            "q3_sensor-visible", "q3_sensor-hidden")
Q10 = ("q10_flat-visible", "q10_flat-hidden")


def _wrong_corr1d_plus(scratch: str):
    """A wrong corr1d (costs q1-q3) and a scratch cell that tries to make the checks pass anyway."""
    nb = _answer(_solution(), "q1_corr1d-answer", WRONG_CORR1D)
    return _insert_after(nb, "code-02", scratch)


def _q10(source: str):
    return _answer(_solution(), "q10_flat-answer", source + FLAT_RIGHT)


def _tampered_tests():
    nb = _solution()
    nb.cells[_index(nb, "q5_sizes-answer")] = copy.deepcopy(_release_cell("q5_sizes-answer"))
    for grade_id in ("q5_sizes-visible", "q5_sizes-hidden"):
        nb.cells[_index(nb, grade_id)].source = 'print("all tests passed")\n'
    return nb


def _deleted_tests():
    nb = _answer(_solution(), "q10_flat-answer", 'FLAT_UNCHANGED = {"edge_all"}\n')
    for grade_id in Q10:
        del nb.cells[_index(nb, grade_id)]
    return nb


def _reordered():
    nb = _solution()
    answer = nb.cells.pop(_index(nb, "q1_corr1d-answer"))
    nb.cells.append(answer)  # the answer after everything
    test = nb.cells.pop(_index(nb, "q6_conv2d-visible"))
    nb.cells.insert(_index(nb, "q6_conv2d-answer"), test)  # a test before its answer
    return nb


def _duplicated():
    nb = _solution()
    cell = copy.deepcopy(nb.cells[_index(nb, "q2_convolve1d-answer")])
    cell["id"] = "pasted-copy"  # as Jupyter gives a pasted cell (the grader copes with equal ids too)
    nb.cells.insert(_index(nb, "q2_convolve1d-answer") + 1, cell)
    return nb


def _no_grade_id():
    nb = _solution()
    del nb.cells[_index(nb, "q4_output_size-answer")].metadata["nbgrader"]
    return nb


def _renamed_grade_id():
    nb = _solution()
    nb.cells[_index(nb, "q8_kernels-answer")].metadata["nbgrader"]["grade_id"] = "my_kernels"
    return nb


def _edited_points():
    nb = _solution()
    nb.cells[_index(nb, "q1_corr1d-visible")].metadata["nbgrader"]["points"] = 50
    nb.cells[_index(nb, "q5_sizes-hidden")].metadata["nbgrader"]["points"] = 80
    # and an answer cell made into a graded cell worth 100 points
    nb.cells[_index(nb, "q8_kernels-answer")].metadata["nbgrader"].update(grade=True, points=100)
    return nb


def _reads_files(workspace: Path):
    targets = [workspace / "gradebook.db", workspace / "solutions" / A1 / A1_NOTEBOOK, SOURCE_NB,
               workspace / "submitted" / "solution" / A1 / A1_NOTEBOOK]
    scratch = textwrap.dedent(f"""\
        import os
        import numpy as np
        LEAKED = []
        for leak_path in {[str(p) for p in targets]!r}:
            try:
                with open(leak_path, "rb") as leak_file:
                    LEAKED.append((leak_path, leak_file.read(64)))
            except Exception as leak_error:
                print("refused:", type(leak_error).__name__, leak_error)
            try:
                LEAKED.append((leak_path, np.fromfile(leak_path, dtype=np.uint8, count=64)))
            except Exception as leak_error:
                print("refused:", type(leak_error).__name__, leak_error)
        for leak_dir in {[str(workspace / "submitted"), str(workspace)]!r}:
            try:
                LEAKED.append((leak_dir, os.listdir(leak_dir)))
            except Exception as leak_error:
                print("refused:", type(leak_error).__name__, leak_error)
        print("leaked:", len(LEAKED))
        """)
    nb = _insert_after(_solution(), "code-02", scratch)
    # the grade depends on it: anything read makes q10 wrong
    return _answer(nb, "q10_flat-answer", 'FLAT_UNCHANGED = {"edge_all"} if LEAKED else ' + FLAT_RIGHT.split(" = ")[1])


# name -> (builder, expected points, what the report says about it, if anything)
CASES = {
    "solution": (_solution, _lose(), None),
    "tampered-tests": (_tampered_tests, _lose("q5_sizes-visible", "q5_sizes-hidden"),
                       "instructor cell q5_sizes-hidden was edited; the release's version runs"),
    "deleted-tests": (_deleted_tests, _lose("q10_flat-visible", q10_flat__hidden=round(6 * 2 / 7, 6)),
                      "was missing or changed"),
    "reordered": (_reordered, _lose(), "graded in the release's order"),
    "renamed-copy1": (None, _lose(), "graded convolution-Copy1.ipynb as convolution.ipynb"),
    "duplicated-answer": (_duplicated, _lose(), "duplicates 'q2_convolve1d-answer'"),
    "no-grade-id": (_no_grade_id, _lose(), "answer cell q4_output_size-answer is missing"),
    "renamed-grade-id": (_renamed_grade_id, _lose(), "unknown grade_id 'my_kernels'"),
    "edited-points": (_edited_points, _lose(), "the metadata of answer cell q8_kernels-answer was edited"),
    "infinite-loop": (lambda: _q10("while True:\n    pass\n"), _lose(*Q10), "ran longer than 10 s and was interrupted"),
    "ignores-sigint": (lambda: _q10("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                    "while True:\n    pass\n"), _lose(*Q10), "did not stop when interrupted"),
    "sys-exit": (lambda: _insert_after(_solution(), "code-02", "import sys\nsys.exit('bye')\n"), _lose(), None),
    "os-exit": (lambda: _q10("import os\nos._exit(0)\n"), _lose(*Q10), "the kernel exited (status 0)"),
    "kernel-killed": (lambda: _insert_after(_solution(), "q3_sensor-visible",
                                            "import os\nimport signal\nos.kill(os.getpid(), signal.SIGKILL)\n"),
                      _lose(), "killed (SIGKILL)"),
    "memory-bomb": (lambda: _q10("import numpy as np\nhog = []\nwhile True:\n"
                                 "    hog.append(np.empty(256 * 2**20, dtype=np.uint8))\n"),
                    _lose(*Q10), "ran out of memory"),
    "output-flood": (lambda: _answer(_solution(), "q1_corr1d-answer",
                                     _solution().cells[_index(_solution(), "q1_corr1d-answer")].source
                                     + "\nfor line in range(200000):\n    print('spam', line)\n"),
                     _lose(), "printed more than"),
    "patches-numpy": (lambda: _wrong_corr1d_plus(
        "np.allclose = lambda *args, **kwargs: True\n"
        "np.testing.assert_allclose = lambda *args, **kwargs: None\n"
        "np.abs = lambda x: x * 0\n"), _lose(*Q1_TO_Q3), "not run (grading rules)"),
    "patches-grading": (lambda: _wrong_corr1d_plus(
        "import cs_utils.grading as grading\n"
        "grading.check_close = lambda *args, **kwargs: None\n"
        "check_close = lambda *args, **kwargs: None\n"), _lose(*Q1_TO_Q3), "not run (grading rules)"),
    "input-transformer": (lambda: _wrong_corr1d_plus(
        "get_ipython().input_transformers_cleanup.append(lambda lines: [])\n"),
        _lose(*Q1_TO_Q3), "not run (grading rules)"),
    "custom-exc": (lambda: _wrong_corr1d_plus(
        "get_ipython().set_custom_exc((Exception,), lambda *args, **kwargs: None)\n"),
        _lose(*Q1_TO_Q3), "not run (grading rules)"),
    "settrace": (lambda: _wrong_corr1d_plus(
        "import sys\n\ndef skip_asserts(frame, event, arg):\n    return None\n\nsys.settrace(skip_asserts)\n"),
        _lose(*Q1_TO_Q3), "not run (grading rules)"),
    "peeks-expected": (lambda: _answer(_solution(), "q1_corr1d-answer",
                                       "def corr1d(x, w):\n    return _expected\n"),
                       _lose(*Q1_TO_Q3), "only the grader's tests define"),
    "calls-reference": (lambda: _answer(_solution(), "q6_conv2d-answer", SCIPY_CONV2D),
                        _lose("q6_conv2d-visible", "q6_conv2d-hidden", "q7_stride_pad-visible",
                              "q7_stride_pad-hidden", "q9_apply-visible", "q9_apply-hidden"), REFERENCE_NOTE),
    "calls-scipy-fft": (lambda: _answer(_solution(), "q1_corr1d-answer", SCIPY_FFT_CORR1D), _lose(*Q1_TO_Q3),
                        "corr1d called scipy.fft"),
    "calls-scipy-linalg": (lambda: _answer(_solution(), "q1_corr1d-answer", SCIPY_TOEPLITZ_CORR1D),
                           _lose(*Q1_TO_Q3), "corr1d called scipy.linalg"),
    "reads-files": (None, _lose(), None),
    "warns-on-stderr": (lambda: _answer(_solution(), "q1_corr1d-answer", A1_WARNING_ANSWERS["q1_corr1d-answer"]),
                        _lose(), None),
}
BROKEN = {"invalid-json": '{"cells": [ {"cell_type": ', "empty-file": ""}


@pytest.fixture(scope="session")
def hostile(tmp_path_factory):
    """Every case placed in one workspace and graded by one `cs-course grade -j 2` run."""
    workspace = tmp_path_factory.mktemp("hostile")
    for student, (builder, _, _) in CASES.items():
        folder = workspace / "submitted" / student / A1
        folder.mkdir(parents=True)
        if student == "renamed-copy1":
            nbformat.write(_solution(), folder / "convolution-Copy1.ipynb")
        elif student == "reads-files":
            nbformat.write(_reads_files(workspace), folder / A1_NOTEBOOK)
        else:
            nbformat.write(builder(), folder / A1_NOTEBOOK)
    for student, text in BROKEN.items():
        folder = workspace / "submitted" / student / A1
        folder.mkdir(parents=True)
        (folder / A1_NOTEBOOK).write_text(text)
    cli = [str(Path(sys.executable).parent / "cs-course"), "--course", str(COURSE_ROOT)]
    env = dict(__import__("os").environ, PATH=str(Path(sys.executable).parent) + ":" + __import__("os").environ["PATH"])
    run = subprocess.run(cli + ["grade", str(workspace), A1, "-j", "2", "--no-progress", *LIMITS],
                         capture_output=True, text=True, env=env, timeout=850)
    blocks: dict[str, str] = {}
    current = None
    for line in run.stdout.splitlines():
        head = line.split(" ", 1)[0]
        if head in CASES or head in BROKEN:
            current = head
            blocks[current] = line
        elif current and line.startswith("    - "):
            blocks[current] += "\n" + line
    return SimpleNamespace(workspace=workspace, run=run, blocks=blocks, cli=cli, env=env)


def _grades(workspace: Path, student: str):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}", "cnn-course") as gb:
        submission = gb.find_submission(A1, student)
        grades = {g.name: float(g.score) for nb in submission.notebooks for g in nb.grades}
        return grades, float(submission.score), float(submission.max_score)


def _autograded(workspace: Path, student: str):
    return nbformat.read(workspace / "autograded" / student / A1 / A1_NOTEBOOK, as_version=4)


def test_the_batch_completes_and_reports_each_broken_file(hostile):
    run = hostile.run
    assert f"{len(CASES)} graded, 0 up to date, {len(BROKEN)} failed" in run.stdout, run.stdout[-4000:] + run.stderr[-4000:]
    assert run.returncode == 1  # some submissions could not be graded: the TA must look
    assert "FAILED" in hostile.blocks["invalid-json"] and "is not a valid notebook" in hostile.blocks["invalid-json"]
    assert "FAILED" in hostile.blocks["empty-file"] and "is empty" in hostile.blocks["empty-file"]


@pytest.mark.parametrize("student", list(CASES))
def test_each_hostile_submission_gets_the_score_it_deserves(hostile, student):
    _, expected, said = CASES[student]
    grades, score, max_score = _grades(hostile.workspace, student)
    assert max_score == 100
    assert grades == pytest.approx(expected, abs=1e-4), hostile.blocks.get(student)
    assert score == pytest.approx(sum(expected.values()), abs=1e-4)
    line = hostile.blocks[student].splitlines()[0]
    assert "graded" in line and f"{sum(expected.values()):g} / 100" in line, line
    if said:
        assert said in hostile.blocks[student], hostile.blocks[student]


def _outputs(cell) -> str:
    return "\n".join(o.get("text", "") + o.get("ename", "") + ": " + str(o.get("evalue", "")) for o in cell.outputs)


def test_files_outside_the_submission_cannot_be_read(hostile):
    nb = _autograded(hostile.workspace, "reads-files")
    scratch = next(c for c in nb.cells if "LEAKED = []" in c.source)
    text = _outputs(scratch)
    assert "leaked: 0" in text, text
    assert text.count("refused:") == 4 * 2 + 2, text  # open and np.fromfile of 4 files, 2 listings
    assert "gradebook.db" in text and "PolicyViolation" in text


def test_what_the_kernel_did_shows_in_the_student_notebook(hostile):
    ws = hostile.workspace
    loop = _autograded(ws, "infinite-loop").cells[_index(_autograded(ws, "infinite-loop"), "q10_flat-answer")]
    assert "CellTimeoutError" in _outputs(loop)
    flood = _autograded(ws, "output-flood")
    text = _outputs(flood.cells[_index(flood, "q1_corr1d-answer")])
    assert "truncated" in text.lower() and text.count("spam") < 2000
    patched = _autograded(ws, "patches-numpy")
    rejected = next(c for c in patched.cells if "np.allclose = " in c.source)
    assert "NotRunByGrader" in _outputs(rejected) and "set attributes only on their own objects" in _outputs(rejected)
    killed = _autograded(ws, "kernel-killed")
    assert "KernelDiedError" in _outputs(next(c for c in killed.cells if "SIGKILL" in c.source))
    reference = _autograded(ws, "calls-reference")
    text = _outputs(reference.cells[_index(reference, "q6_conv2d-visible")])
    assert "ReferenceUsedError" in text and "scipy.signal" in text, text  # the guard caught it, and says so
    for student, module in (("calls-scipy-fft", "scipy.fft"), ("calls-scipy-linalg", "scipy.linalg")):
        nb = _autograded(ws, student)
        for grade_id in Q1_TO_Q3:
            if grade_id.endswith("visible"):
                text = _outputs(nb.cells[_index(nb, grade_id)])
                assert "ReferenceUsedError" in text and module in text and "All of SciPy counts" in text, text


def test_feedback_says_which_tests_failed_and_why(hostile):
    run = subprocess.run(hostile.cli + ["feedback", str(hostile.workspace), A1], capture_output=True, text=True,
                         env=hostile.env, timeout=600)
    assert run.returncode == 0, run.stderr
    import html

    page = (hostile.workspace / "feedback" / "peeks-expected" / A1 / "convolution.html").read_text()
    page = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "What the grader found" in page
    assert re.search(r"q1_corr1d-hidden\W+0 of 6 points", page), page[:3000]
    assert "only the grader's tests define" in page
    assert "BEGIN HIDDEN TESTS" not in page and "_expected = [sum(" not in page
    good = html.unescape((hostile.workspace / "feedback" / "solution" / A1 / "convolution.html").read_text())
    assert "What the grader found" not in good


# --------------------------------------------------------------------------
# the pieces, without kernels
# --------------------------------------------------------------------------

ATTACKS = {
    "np.allclose = lambda *a, **k: True": "set attributes only on their own objects",
    "t = np.testing\nt.assert_allclose = print": "set attributes only on their own objects",
    "check_close = lambda *a, **k: None": "which the tests use",
    "import cs_utils.grading as g\ng.call = print": "set attributes only on their own objects",
    "setattr(np, 'abs', print)": "setattr() is allowed only on self",
    "get_ipython().input_transformers_cleanup.append(lambda lines: [])": "get_ipython",
    "get_ipython().set_custom_exc((Exception,), print)": "get_ipython",
    "import sys\nsys.settrace(print)": "answers may use only",
    "import sys\nm = sys\nm.modules['numpy'] = None": "use sys only as",
    "def corr1d(x, w):\n    return globals()['_expected']": "globals",
    "def corr1d(x, w):\n    return _expected": "only the grader's tests define",
    "try:\n    1 / 0\nexcept Exception as e:\n    g = e.__traceback__.tb_frame.f_back.f_globals": "__traceback__",
    "s = '{0.__globals__}'.format(print)": "format fields",
    "name = 'x'\nv = getattr(np, name)": "written out as a string",
    "import functools\nfunctools.reduce(getattr, ['abs'], np)": "only as a direct call",
    "class A:\n    def m(self):\n        self.abs = print\nA.m(np)": "on an instance, not on the class",
    "class A:\n    def __eq__(self, other):\n        return True": "may not define __eq__",
    "class M(type):\n    pass\nclass A(metaclass=M):\n    pass": "metaclasses",
    "X = type('X', (), {})": "three arguments",
    "import subprocess": "may not import subprocess",
    "import os\nos.system('ls')": "answers may use only",
    "from numpy.lib.stride_tricks import as_strided": "as_strided",
    "x = In[-1]": "`In`",
    "!cat /etc/passwd": "shell commands",
    "%load_ext something": "magic %load_ext",
    "X_SENSOR[0] = 0": "may not change `X_SENSOR`",
    "b = print.__self__": "__self__",
    "import pickle": "may not import pickle",
}
HONEST = [
    "import numpy as np\n\ndef corr1d(x, w):\n    out = np.zeros(len(x) - len(w) + 1)\n"
    "    for i in range(len(out)):\n        out[i] = np.dot(x[i:i + len(w)], w)\n    return out\n",
    "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n\nclass Net(nn.Module):\n"
    "    def __init__(self):\n        super().__init__()\n        self.c1 = nn.Conv2d(1, 6, 5)\n"
    "    def forward(self, x):\n        return F.relu(self.c1(x))\n",
    "import sys\nimport os\nprint(sys.version, os.getcwd(), type(1).__name__)\n%timeit sum(range(10))\n",
    "import warnings\nwarnings.warn('slow', UserWarning)\nfig, ax = plt.subplots()\n",
]


@pytest.fixture(scope="module")
def a1_context():
    from cs_utils.autograde import policy_context

    return policy_context(nbformat.read(SOURCE_NB, as_version=4).cells)


@pytest.mark.parametrize("code", list(ATTACKS), ids=lambda c: c.splitlines()[-1][:40])
def test_the_policy_refuses_each_way_to_fool_the_checks(a1_context, code):
    from cs_utils.autograde import vet_cell

    problems = " ".join(map(str, vet_cell(code, a1_context)))
    assert ATTACKS[code] in problems, problems


@pytest.mark.parametrize("code", HONEST, ids=range(len(HONEST)))
def test_the_policy_lets_honest_code_run(a1_context, code):
    from cs_utils.autograde import vet_cell

    assert vet_cell(code, a1_context) == []


@pytest.mark.parametrize("path", sorted((COURSE_ROOT / "solutions").glob("*/*.ipynb")), ids=lambda p: p.parent.name)
def test_every_solution_notebook_keeps_to_the_policy(path):
    from cs_utils.autograde import vet_notebook

    assert vet_notebook(nbformat.read(path, as_version=4)) == {}


def test_checks_do_not_use_what_an_answer_patched(monkeypatch):
    from cs_utils.grading import CheckFailed, check_close, check_equal

    monkeypatch.setattr(np, "abs", lambda x: np.zeros_like(x))
    monkeypatch.setattr(np, "isfinite", lambda x: np.ones_like(x, dtype=bool))
    with pytest.raises(CheckFailed):
        check_close("patched", [1.0, 2.0], [1.0, 3.0])

    class Always(str):
        def __eq__(self, other):
            return True

        __hash__ = str.__hash__

    with pytest.raises(CheckFailed):
        check_equal("look-alike", Always("nonsense"), "conv")
    with pytest.raises(CheckFailed):
        check_equal("look-alike number", type("F", (float,), {"__eq__": lambda s, o: True})(3.0), 5)


def test_call_hands_the_function_copies_of_the_tests_arrays():
    from cs_utils.grading import call

    data = np.arange(4.0)

    def vandal(x):
        x[:] = 0
        return x.sum()

    assert call(vandal, data) == 0
    assert list(data) == [0.0, 1.0, 2.0, 3.0]


def test_the_referee_puts_back_modules_and_names():
    import math

    from cs_utils.sandbox import Referee

    namespace = {"check": print}
    referee = Referee(namespace)
    referee.snapshot_modules(["math"])
    referee.snapshot_names(["check"])
    real_sqrt = math.sqrt
    try:
        math.sqrt = lambda x: 0
        namespace["check"] = len
        assert sorted(referee.verify()) == ["check", "math.sqrt"]
        assert math.sqrt is real_sqrt and namespace["check"] is print
        assert referee.verify() == []

        def wrapped(x):  # the library wrapping its own function (torch does this to manual_seed)
            return real_sqrt(x)

        wrapped.__wrapped__, wrapped.__module__ = real_sqrt, "math"
        math.sqrt = wrapped
        assert referee.verify() == [] and math.sqrt is wrapped
        math.sqrt = real_sqrt
        fresh = Referee({})
        fresh.snapshot_modules(["math"])
        wrapped.__module__ = "__main__"  # a notebook's wrapper is not the library's
        math.sqrt = wrapped
        assert fresh.verify() == ["math.sqrt"] and math.sqrt is real_sqrt
    finally:
        math.sqrt = real_sqrt


def test_the_audit_hook_confines_a_process(tmp_path):
    allowed = tmp_path / "mine"
    allowed.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("the hidden tests")
    script = textwrap.dedent(f"""
        import os, socket, subprocess, sys, pickle
        from cs_utils.sandbox import install_policy
        install_policy([sys.prefix, sys.base_prefix], [{str(allowed)!r}])
        results = {{}}
        def attempt(name, action):
            try:
                action()
                results[name] = "allowed"
            except PermissionError:
                results[name] = "refused"
        attempt("read secret", lambda: open({str(secret)!r}).read())
        attempt("list parent", lambda: os.listdir({str(tmp_path)!r}))
        attempt("write own folder", lambda: open({str(allowed / "x.txt")!r}, "w").write("ok"))
        attempt("read own folder", lambda: open({str(allowed / "x.txt")!r}).read())
        attempt("subprocess", lambda: subprocess.run(["true"]))
        attempt("system", lambda: os.system("true"))
        attempt("connect", lambda: socket.create_connection(("127.0.0.1", 9)))
        attempt("settrace", lambda: sys.settrace(None))
        attempt("pickle eval", lambda: pickle.loads(b"cbuiltins\\neval\\n(S'1'\\ntR."))
        attempt("kill other", lambda: os.kill(os.getppid(), 0))
        attempt("symlink", lambda: os.symlink({str(secret)!r}, {str(allowed / "link")!r}))
        print(results)
        """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    results = eval(run.stdout.strip().splitlines()[-1])  # a dict literal printed by the child
    assert results == {
        "read secret": "refused", "list parent": "refused", "write own folder": "allowed",
        "read own folder": "allowed", "subprocess": "refused", "system": "refused", "connect": "refused",
        "settrace": "refused", "pickle eval": "refused", "kill other": "refused", "symlink": "refused",
    }


def test_the_canonical_notebook_keeps_a_students_extra_cells_in_place():
    from cs_utils.autograde import canonical_cells

    release = nbformat.read(RELEASE_NB, as_version=4)
    student = copy.deepcopy(release)
    scratch = nbformat.v4.new_code_cell("helper = 1")
    student.cells.insert(_index(student, "q1_corr1d-answer") + 1, scratch)
    del student.cells[_index(student, "q2_convolve1d-visible")]
    cells, notes = canonical_cells(release.cells, student.cells)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in cells]
    assert ids.index("q1_corr1d-answer") + 1 == ids.index(None)  # the scratch cell follows its answer
    assert cells[ids.index(None)].source == "helper = 1"
    assert "q2_convolve1d-visible" in ids
    assert any("q2_convolve1d-visible" in n for n in notes)
    assert len(cells) == len(release.cells) + 1


def test_without_the_policy_the_referee_still_undoes_the_tricks_before_each_test():
    """Defence in depth: with the static policy switched off, the tricks run (an input transformer
    blanks the next cell), yet every test cell runs intact with the real helpers and fails the wrong
    answer, and the report lists what the referee put back."""
    from cs_utils.autograde import execute_notebook

    nb = nbformat.read(SOURCE_NB, as_version=4)
    _answer(nb, "q1_corr1d-answer", WRONG_CORR1D)
    _insert_after(nb, "q1_corr1d-answer", textwrap.dedent("""\
        import cs_utils.grading as grading
        np.abs = lambda x: x * 0
        grading.check_close = lambda *args, **kwargs: None
        check_close = lambda *args, **kwargs: None
        call = lambda f, *args, **kwargs: f(*args, **kwargs)
        get_ipython().set_custom_exc((Exception,), lambda *args, **kwargs: None)
        get_ipython().input_transformers_cleanup.append(lambda lines: [])
        """))
    nb.cells.insert(_index(nb, "q1_corr1d-answer") + 2, nbformat.v4.new_code_cell('print("not blanked")'))
    nb.cells = nb.cells[:_index(nb, "q1_corr1d-hidden") + 1]  # no need to run the rest
    executed, report = execute_notebook(nb, {"policy": False, "timeout": 30})
    tricks, blanked = executed.cells[_index(nb, "q1_corr1d-answer") + 1:_index(nb, "q1_corr1d-answer") + 3]
    assert not any(o.output_type == "error" for o in tricks.outputs), tricks.outputs  # the tricks did run
    assert "not blanked" not in _outputs(blanked)  # and the transformer worked on the next cell
    for grade_id in ("q1_corr1d-visible", "q1_corr1d-hidden"):
        errors = [o for o in executed.cells[_index(nb, grade_id)].outputs if o.output_type == "error"]
        assert errors and errors[0].ename == "CheckFailed", (grade_id, executed.cells[_index(nb, grade_id)].outputs)
    restored = " ".join(report["tampering"][0]["restored"])
    for thing in ("numpy.abs", "cs_utils.grading.check_close", "check_close", "call",
                  "IPython input_transformers_cleanup", "IPython custom_exceptions"):
        assert thing in restored, restored


def test_the_unprivileged_user_must_be_able_to_reach_the_interpreter():
    import shutil
    import tempfile

    from cs_utils.sandbox import _path_chain_usable

    nobody = (65534, 65534)
    tmp_path = Path(tempfile.mkdtemp(dir="/tmp" if Path("/tmp").is_dir() else None))  # pytest's base is private
    open_dir = tmp_path / "open"
    closed_dir = tmp_path / "closed"
    for folder, mode in ((open_dir, 0o755), (closed_dir, 0o700)):
        (folder / "bin").mkdir(parents=True)
        (folder / "bin" / "python").write_text("")
        (folder / "bin" / "python").chmod(0o755)
        folder.chmod(mode)
    tmp_path.chmod(0o755)
    try:
        assert _path_chain_usable(str(open_dir / "bin" / "python"), *nobody)
        assert not _path_chain_usable(str(closed_dir / "bin" / "python"), *nobody)
    finally:
        shutil.rmtree(tmp_path)
