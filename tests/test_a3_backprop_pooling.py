"""Assignment 3 (backprop through pooling and strided convolution) end to end with real nbgrader.

A class of four (solution, untouched release, one wrong function, and two
independent faults in one submission: a wrong function and an answer that calls
torch) is collected and autograded once;
the scores are read back from the gradebook and compared with what each sample
should get. The notebook's own execution, the release sync check and the leak
scan over all of assignments/ are in test_pipeline.py and test_release.py.
"""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import (COURSE_ROOT, assert_class_graded, assert_feedback_hides_hidden_tests, assert_gradebook_scores,
                      assert_points_table, assignment_notebooks, assignment_points, cell_errors,
                      expected_class_grades, feedback_pages, grade_sample_class, mutated_solution, solution_code)
from cs_utils.course import scan_for_leaks

A3 = "a3_backprop_pooling"

# The gradient of a tie goes to the LAST maximum instead of the first: wrong only where windows tie.
LAST_MAX_ON_TIES = {
    "q3_max_backward-answer": mutated_solution(
        A3, "q3_max_backward-answer",
        "first = window.reshape(n_img, channels, -1).argmax(axis=2)",
        "first = size * size - 1 - window.reshape(n_img, channels, -1)[:, :, ::-1].argmax(axis=2)"),
}
# Average pooling backward forgets to divide each window's gradient by size*size.
AVG_BACKWARD_UNDIVIDED = {
    "q5_avg_backward-answer": mutated_solution(
        A3, "q5_avg_backward-answer", "share = dout / (size * size)", "share = dout"),
}
# Global average pooling, numerically right, by calling torch.
TORCH_GLOBAL_POOL = {
    "q6_global-answer": (
        "import torch\n\n"
        "def global_avg_pool_forward(x):\n"
        "    return torch.from_numpy(x).mean(dim=(2, 3)).numpy(), x\n\n"
        "def global_avg_pool_backward(dout, cache):\n"
        "    t = torch.from_numpy(cache).requires_grad_()\n"
        "    t.mean(dim=(2, 3)).backward(torch.from_numpy(dout))\n"
        "    return t.grad.numpy()\n"
    ),
}

STUDENTS = ["solution", "untouched", "last_max_on_ties", "two_faults"]


def expected_grades() -> dict:
    return expected_class_grades(A3, {
        "solution": [],
        "untouched": list(assignment_points(A3)),
        "last_max_on_ties": ["q3_max_backward-visible", "q3_max_backward-hidden"],
        # each fault costs its own question's points, and nothing else
        "two_faults": ["q5_avg_backward-visible", "q5_avg_backward-hidden", "q6_global-visible", "q6_global-hidden"],
    })


@pytest.fixture(scope="module")
def a3_class(tmp_path_factory):
    return grade_sample_class(tmp_path_factory.mktemp("a3_workspace"), A3, {
        "solution": {},
        "untouched": None,
        "last_max_on_ties": LAST_MAX_ON_TIES,
        "two_faults": {**AVG_BACKWARD_UNDIVIDED, **TORCH_GLOBAL_POOL},
    })


def test_points_add_up_and_match_the_table_in_the_notebook():
    assert_points_table(A3)


def test_the_class_is_graded(a3_class):
    assert_class_graded(a3_class, STUDENTS)


@pytest.mark.parametrize("student", STUDENTS)
def test_scores_in_the_gradebook(a3_class, student):
    assert_gradebook_scores(a3_class, student, expected_grades()[student])


def test_headline_scores(a3_class):
    totals = {s: g[1] for s, g in a3_class.grades.items()}
    assert totals == {"solution": 100, "untouched": 0, "last_max_on_ties": 84, "two_faults": 83}


def test_the_student_is_told_why(a3_class):
    def errors(student, grade_id):
        return cell_errors(a3_class, A3, student, grade_id)

    (name, message), = errors("last_max_on_ties", "q3_max_backward-visible")
    assert name == "CheckFailed" and "a tie between two 5s" in message and "row-major" in message
    (name, message), = errors("two_faults", "q6_global-visible")
    assert name == "ReferenceUsedError" and "global_avg_pool_forward called torch" in message
    (name, message), = errors("two_faults", "q5_avg_backward-visible")
    assert "expected 0.25, got 1" in message


def test_release_hides_solutions_and_hand_answers():
    release = assignment_notebooks(A3)[1]
    assert scan_for_leaks([release.parent], course=COURSE_ROOT) == []
    text = release.read_text()
    for secret in ("BEGIN SOLUTION", "HIDDEN TESTS", "[0, 12, 0, 3]", "[0.5, 0, 0, 3]",
                   'SPARSE_STATEMENTS = {"A": True', "FRACTION_MAX = 0.25", "np.add.at(dx",
                   "w_rot = w[:, :, ::-1, ::-1]", "conv_transpose2d", "_fitting"):
        assert secret not in text, secret
    nb = json.loads(text)
    stubs = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    assert len(stubs) == 10 and all("raise NotImplementedError()" in "".join(c["source"]) for c in stubs)


def _hand_answers() -> dict:
    namespace = {"np": np}
    exec(solution_code(A3, "q1_by_hand-answer"), namespace)
    return namespace


def test_the_hand_answers_are_the_lecture_example_worked_by_torch():
    # Seed 004: [[1,4,2,1],[5,8,3,4],[7,6,4,5],[1,3,1,2]] -> [[8,4],[7,5]] with 2x2 windows, stride 2.
    x4 = torch.tensor([[1., 4., 2., 1.], [5., 8., 3., 4.], [7., 6., 4., 5.], [1., 3., 1., 2.]],
                      dtype=torch.float64)[None, None]
    hand = _hand_answers()
    assert hand["HAND_POOL_S2"] == [[8, 4], [7, 5]]
    for stride, dout in [(2, [[-1., 2.], [0.5, 3.]]), (1, np.arange(1., 10.).reshape(3, 3))]:
        t = x4.clone().requires_grad_()
        out = F.max_pool2d(t, 2, stride)
        out.backward(torch.tensor(np.asarray(dout))[None, None])
        np.testing.assert_array_equal(hand[f"HAND_POOL_S{stride}"], out[0, 0].detach().numpy())
        np.testing.assert_array_equal(hand[f"HAND_GRAD_S{stride}"], t.grad[0, 0].numpy())
    # overlapping windows add up: the 8 is the maximum of four windows, it collects 1 + 2 + 4 + 5
    assert hand["HAND_GRAD_S1"][1][1] == 12


def test_the_tie_rule_the_notebook_grades_is_torchs_and_cs_utils():
    # The rule stated in the notebook (the first maximum in row-major order) on the visible test's window.
    from cs_utils.functional import max_pool_backward, max_pool_forward

    window = np.array([[[[3., 5.], [5., 1.]]]])
    t = torch.tensor(window, requires_grad=True)
    F.max_pool2d(t, 2, 2).backward(torch.full((1, 1, 1, 1), 10.0, dtype=torch.float64))
    _, cache = max_pool_forward(window, 2, 2)
    expected = [[[[0., 10.], [0., 0.]]]]
    np.testing.assert_array_equal(t.grad.numpy(), expected)
    np.testing.assert_array_equal(max_pool_backward(np.full((1, 1, 1, 1), 10.0), cache), expected)


def test_feedback_explains_but_shows_no_hidden_test_code(a3_class):
    pages = feedback_pages(a3_class.workspace, A3)
    assert_feedback_hides_hidden_tests(pages, A3, a3_class.grades, min_hidden=40)
    assert "not implemented yet" in pages["untouched"]
    assert "global_avg_pool_forward called torch" in pages["two_faults"]
    assert "expected 10, got 0" in pages["last_max_on_ties"] and "expected 10, got 0" not in pages["solution"]
