"""Assignment 2 (layers) end to end: real nbgrader grades sample submissions.

A class of four (solution, untouched release, one wrong function, one answer that
calls torch) is collected and autograded once per session; the scores are read
back from the gradebook and compared with what each sample should get, worked
out from what it gets wrong. The notebook's own execution, the release sync check
and the leak scan over all of assignments/ are in test_pipeline.py and
test_release.py (parametrised over every assignment); here are the checks
specific to this notebook.
"""

import json
import re

import nbformat
import numpy as np
import pytest

from conftest import (COURSE_ROOT, assignment_notebooks, assignment_points, feedback_pages, grade_sample_class,
                      hidden_test_lines, mutated_solution, solution_code)
from cs_utils.course import scan_for_leaks

A2 = "a2_layers"

# One wrong function: conv_backward forgets to cut the padding off dx (right only when pad=0).
WRONG_CONV_BACKWARD = {
    "q2_conv_backward-answer": mutated_solution(
        A2, "q2_conv_backward-answer",
        "dx = dx_pad[:, :, pad:pad + height, pad:pad + width]", "dx = dx_pad"),
}
# Numerically right, but by calling torch.nn.functional.conv2d.
TORCH_CONV_FORWARD = {
    "q1_conv_forward-answer": (
        "import torch\n"
        "import torch.nn.functional as tF\n\n"
        "def conv_forward(x, w, b, stride=1, pad=0):\n"
        "    out = tF.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),\n"
        "                    stride=stride, padding=pad).numpy()\n"
        "    return out, (x, w, b, stride, pad)\n"
    ),
}


def expected_grades() -> dict:
    full = assignment_points(A2)
    lost = {
        "solution": [],
        "untouched": list(full),
        "wrong_conv_backward": ["q2_conv_backward-visible", "q2_conv_backward-hidden"],
        # conv_forward's own points, and the visible test of the network, which runs the
        # student's own conv_forward (its hidden tests swap correct layers in)
        "torch_conv_forward": ["q1_conv_forward-visible", "q1_conv_forward-hidden", "q7_net-visible"],
    }
    return {student: {gid: (0.0 if gid in gone else pts) for gid, pts in full.items()} for student, gone in lost.items()}


@pytest.fixture(scope="module")
def a2_class(tmp_path_factory):
    return grade_sample_class(tmp_path_factory.mktemp("a2_workspace"), A2, {
        "solution": {},
        "untouched": None,
        "wrong_conv_backward": WRONG_CONV_BACKWARD,
        "torch_conv_forward": TORCH_CONV_FORWARD,
    })


def test_points_add_up_and_match_the_table_in_the_notebook():
    points = assignment_points(A2)
    assert sum(points.values()) == 100
    questions = sorted({gid.rsplit("-", 1)[0] for gid in points})
    for q in questions:
        assert f"{q}-visible" in points and f"{q}-hidden" in points, q
    source = nbformat.read(assignment_notebooks(A2)[0], as_version=4)
    for cell in source.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if gid.endswith("-hidden"):
            assert "### BEGIN HIDDEN TESTS" in cell.source, gid
    # the table of parts in the introduction states the same points, in the same order
    table = [int(m) for m in re.findall(r"^\| [\d.]+ \|.*\| (\d+) \|$", source.cells[0].source, re.M)]
    per_question = [points[f"{q}-visible"] + points[f"{q}-hidden"] for q in
                    sorted(questions, key=lambda q: int(q[1:].split("_")[0]))]
    assert [t for t in table if t] == per_question


def test_the_class_is_graded(a2_class):
    assert a2_class.collected.problems == []
    failed = {s: r.error for s, r in a2_class.results.items() if not r.ok}
    assert failed == {}
    assert sorted(a2_class.grades) == sorted(expected_grades())


@pytest.mark.parametrize("student", ["solution", "untouched", "wrong_conv_backward", "torch_conv_forward"])
def test_scores_in_the_gradebook(a2_class, student):
    expected = expected_grades()[student]
    grades, total, max_total = a2_class.grades[student]
    assert max_total == 100
    assert grades == pytest.approx(expected, abs=1e-4)
    assert total == pytest.approx(sum(expected.values()), abs=1e-4)


def test_headline_scores(a2_class):
    totals = {s: g[1] for s, g in a2_class.grades.items()}
    assert totals == {"solution": 100, "untouched": 0, "wrong_conv_backward": 88, "torch_conv_forward": 84}


def test_the_student_is_told_why(a2_class):
    def errors(student, grade_id):
        path = a2_class.workspace / "autograded" / student / A2 / assignment_notebooks(A2)[1].name
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
        return [(o.ename, o.evalue) for o in cell.outputs if o.output_type == "error"]

    (name, message), = errors("torch_conv_forward", "q1_conv_forward-visible")
    assert name == "ReferenceUsedError" and "conv_forward called torch" in message
    (name, message), = errors("wrong_conv_backward", "q2_conv_backward-visible")
    assert name == "CheckFailed" and "dx (stride=2, pad=1)" in message and "shape" in message
    (name, message), = errors("untouched", "q7_net-visible")
    assert "not implemented yet" in message


def test_release_hides_solutions_and_reference_layers():
    release = assignment_notebooks(A2)[1]
    assert scan_for_leaks([release.parent], course=COURSE_ROOT) == []
    text = release.read_text()
    for secret in ("BEGIN SOLUTION", "HIDDEN TESTS", "_ref_conv_forward", "_reference_layers", "_torch_net",
                   "np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3]))", "[1, 2, 13, 14]",
                   "vgg_fc6_params = 7 * 7 * 512 * 4096 + 4096", "dscores[np.arange(n), y] -= 1.0"):
        assert secret not in text, secret
    nb = json.loads(text)
    stubs = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    assert len(stubs) == 11 and all("raise NotImplementedError()" in "".join(c["source"]) for c in stubs)


def test_the_paper_im2col_answer_follows_the_cs_utils_contract():
    # The hand-written COLS of the solution is what cs_utils.im2col makes of X_TINY: the
    # layout the notebook describes is the package's.
    from cs_utils.im2col import im2col

    namespace = {"np": np}
    exec(solution_code(A2, "q9_im2col_paper-answer"), namespace)
    x_tiny = np.arange(1, 25, dtype=float).reshape(2, 2, 2, 3)
    given = [c.source for c in nbformat.read(assignment_notebooks(A2)[0], as_version=4).cells
             if c.source.startswith("X_TINY = ")]
    assert len(given) == 1 and given[0].startswith("X_TINY = np.arange(1, 25, dtype=float).reshape(2, 2, 2, 3)")
    np.testing.assert_array_equal(namespace["COLS"], im2col(x_tiny, 2, 2))


def test_feedback_explains_but_shows_no_hidden_test_code(a2_class):
    pages = feedback_pages(a2_class.workspace, A2)
    assert sorted(pages) == sorted(a2_class.grades)
    hidden = hidden_test_lines(A2)
    assert len(hidden) > 40
    for student, text in pages.items():
        assert [line for line in hidden if line in text] == [], student
        assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    assert "not implemented yet" in pages["untouched"]
    assert "conv_forward called torch" in pages["torch_conv_forward"]
    assert "dx (stride=2, pad=1)" in pages["wrong_conv_backward"]
