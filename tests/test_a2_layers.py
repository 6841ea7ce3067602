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

import nbformat
import numpy as np
import pytest

from conftest import (COURSE_ROOT, assert_class_graded, assert_feedback_hides_hidden_tests, assert_gradebook_scores,
                      assert_points_table, assignment_notebooks, assignment_points, cell_errors,
                      expected_class_grades, feedback_pages, grade_sample_class, mutated_solution, solution_code)
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
    return expected_class_grades(A2, {
        "solution": [],
        "untouched": list(assignment_points(A2)),
        "wrong_conv_backward": ["q2_conv_backward-visible", "q2_conv_backward-hidden"],
        # conv_forward's own points, and the visible test of the network, which runs the
        # student's own conv_forward (its hidden tests swap correct layers in)
        "torch_conv_forward": ["q1_conv_forward-visible", "q1_conv_forward-hidden", "q7_net-visible"],
    })


@pytest.fixture(scope="module")
def a2_class(tmp_path_factory):
    return grade_sample_class(tmp_path_factory.mktemp("a2_workspace"), A2, {
        "solution": {},
        "untouched": None,
        "wrong_conv_backward": WRONG_CONV_BACKWARD,
        "torch_conv_forward": TORCH_CONV_FORWARD,
    })


def test_points_add_up_and_match_the_table_in_the_notebook():
    assert_points_table(A2, ungraded_rows=True)


def test_the_class_is_graded(a2_class):
    assert_class_graded(a2_class, expected_grades())


@pytest.mark.parametrize("student", ["solution", "untouched", "wrong_conv_backward", "torch_conv_forward"])
def test_scores_in_the_gradebook(a2_class, student):
    assert_gradebook_scores(a2_class, student, expected_grades()[student])


def test_headline_scores(a2_class):
    totals = {s: g[1] for s, g in a2_class.grades.items()}
    assert totals == {"solution": 100, "untouched": 0, "wrong_conv_backward": 88, "torch_conv_forward": 84}


def test_the_student_is_told_why(a2_class):
    def errors(student, grade_id):
        return cell_errors(a2_class, A2, student, grade_id)

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
    assert_feedback_hides_hidden_tests(pages, A2, a2_class.grades, min_hidden=40)
    assert "not implemented yet" in pages["untouched"]
    assert "conv_forward called torch" in pages["torch_conv_forward"]
    assert "dx (stride=2, pad=1)" in pages["wrong_conv_backward"]
