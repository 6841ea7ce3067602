"""Assignment 4 (a CNN, trained; AlexNet and VGG-16 layer by layer) through real nbgrader.

A small class of submissions made from the released notebook is collected and autograded once
(fixture ``a4_class``: ``cs_utils.course.collect`` and ``grade``, two at a time, real kernels):

* ``solution``: every answer cell filled with the source notebook's solution -> 100;
* ``untouched``: the release as handed out -> 0;
* ``wrong_accuracy``: one deliberately wrong function (``accuracy`` keeps only the last batch's
  count) -> loses exactly the 8 points of ``accuracy``;
* ``reference_lenet``: a ``LeNet5`` that takes its layers from ``cs_utils.models.lenet5`` (the
  reference) -> the grading kernel refuses the import, the class is never defined: no credit for
  building LeNet-5 (18 points) nor for training it (10 points), everything else intact.

The expected points come from the source notebook's metadata and from what each sample gets
wrong, never from the grader's own output. The autograde time of every submission is printed
(run with ``-s``) and recorded as a test property.
"""

import json
import time
from pathlib import Path

import nbformat
import pytest

from conftest import COURSE_ROOT, assert_feedback_hides_hidden_tests
from cs_utils.course import collect, fill_release, grade, release, scan_for_leaks

A4 = "a4_cnn_case_study"
A4_NOTEBOOK = "cnn_case_study.ipynb"
SOURCE_NB = COURSE_ROOT / "solutions" / A4 / A4_NOTEBOOK
RELEASE_NB = COURSE_ROOT / "assignments" / A4 / A4_NOTEBOOK

# The classic accumulation bug: `=` instead of `+=`, so only the last batch is counted.
WRONG_ACCURACY = {
    "q4_accuracy-answer": (
        "def accuracy(model, X, y, batch_size=256):\n"
        "    device = next(model.parameters()).device\n"
        "    model.eval()\n"
        "    correct = 0\n"
        "    with torch.no_grad():\n"
        "        for start in range(0, len(X), batch_size):\n"
        "            pred = model(X[start:start + batch_size].to(device)).argmax(dim=1).cpu()\n"
        "            correct = int((pred == y[start:start + batch_size]).sum())\n"
        "    return correct / len(X)\n"
    ),
}
# Right numbers, wrong way: the layers come from the course's reference builder.
REFERENCE_LENET = {
    "q1_lenet-answer": (
        "from cs_utils import models as _models\n"
        "\n"
        "class LeNet5(nn.Module):\n"
        "    def __init__(self, num_classes=10):\n"
        "        super().__init__()\n"
        "        net = _models.lenet5(num_classes=num_classes)\n"
        "        self.c1, self.c3, self.c5, self.f6, self.out = net.C1, net.C3, net.C5, net.F6, net.OUT\n"
        "\n"
        "    def forward(self, x):\n"
        "        x = F.max_pool2d(F.relu(self.c1(x)), 2)\n"
        "        x = F.max_pool2d(F.relu(self.c3(x)), 2)\n"
        "        x = F.relu(self.c5(x))\n"
        "        return self.out(F.relu(self.f6(x)))\n"
    ),
}


def a4_points() -> dict[str, float]:
    """grade_id -> points of every test cell, read from the source notebook's metadata."""
    nb = json.loads(SOURCE_NB.read_text())
    return {
        cell["metadata"]["nbgrader"]["grade_id"]: float(cell["metadata"]["nbgrader"]["points"])
        for cell in nb["cells"]
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade")
    }


def expected_grades() -> dict[str, dict[str, float]]:
    full = a4_points()
    wrong_accuracy = dict(full, **{"q4_accuracy-visible": 0.0, "q4_accuracy-hidden": 0.0})
    # The sandboxed grader refuses the import of the reference inside the answer cell, so the
    # student's LeNet5 is never defined: no credit for building it (q1) nor for training it (q6).
    reference_lenet = dict(full, **{"q1_lenet-visible": 0.0, "q1_lenet-hidden": 0.0,
                                    "q6_trained-visible": 0.0, "q6_trained-hidden": 0.0})
    return {
        "solution": full,
        "untouched": dict.fromkeys(full, 0.0),
        "wrong_accuracy": wrong_accuracy,
        "reference_lenet": reference_lenet,
    }


def _grades(workspace: Path, student: str) -> tuple[dict[str, float], float, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}", "cnn-course") as gb:
        submission = gb.find_submission(A4, student)
        grades = {g.name: float(g.score) for nb in submission.notebooks for g in nb.grades}
        return grades, float(submission.score), float(submission.max_score)


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


@pytest.fixture(scope="module")
def a4_class(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("a4_workspace")
    inbox = tmp_path_factory.mktemp("a4_inbox")
    submissions = {
        "solution": fill_release(RELEASE_NB, SOURCE_NB),
        "untouched": nbformat.read(RELEASE_NB, as_version=4),
        "wrong_accuracy": fill_release(RELEASE_NB, SOURCE_NB, answers=WRONG_ACCURACY),
        "reference_lenet": fill_release(RELEASE_NB, SOURCE_NB, answers=REFERENCE_LENET),
    }
    for student, nb in submissions.items():
        path = inbox / student / A4 / A4_NOTEBOOK
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    collected = collect(workspace, inbox, course=COURSE_ROOT)
    started = time.perf_counter()
    results = grade(workspace, A4, jobs=2, course=COURSE_ROOT, progress=False)
    seconds = time.perf_counter() - started
    return workspace, collected, {r.student: r for r in results}, seconds


def test_points_add_up_to_100_with_a_visible_and_a_hidden_test_per_question():
    points = a4_points()
    assert sum(points.values()) == 100
    questions = {gid.rsplit("-", 1)[0] for gid in points}
    assert len(questions) == 9
    for question in questions:
        assert {f"{question}-visible", f"{question}-hidden"} <= set(points), question
    source = nbformat.read(SOURCE_NB, as_version=4)
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id", "").endswith("-hidden"):
            assert "### BEGIN HIDDEN TESTS" in cell.source, meta["grade_id"]
        if meta.get("solution"):
            assert "### BEGIN SOLUTION" in cell.source, meta["grade_id"]


def test_every_submission_is_graded_and_timed(a4_class, record_property):
    workspace, collected, results, seconds = a4_class
    assert collected.problems == [] and len(collected.placed) == 4
    assert sorted(results) == sorted(expected_grades())
    failed = {s: r.error for s, r in results.items() if not r.ok}
    assert failed == {}
    print(f"\nautograde of {A4}, 2 at a time: {seconds:.1f} s for {len(results)} submissions")
    for student, result in sorted(results.items()):
        print(f"  {student:16} {result.score:6.2f} / {result.max_score:g}  {result.seconds:5.1f} s")
        record_property(f"autograde_seconds_{student}", round(result.seconds, 1))


@pytest.mark.parametrize("student", ["solution", "untouched", "wrong_accuracy", "reference_lenet"])
def test_scores_in_the_gradebook(a4_class, student):
    workspace = a4_class[0]
    expected = expected_grades()[student]
    grades, score, max_score = _grades(workspace, student)
    assert max_score == 100
    assert grades == pytest.approx(expected, abs=1e-4)
    assert score == pytest.approx(sum(expected.values()), abs=1e-4)


def test_headline_scores(a4_class):
    totals = {s: _grades(a4_class[0], s)[1] for s in expected_grades()}
    assert totals == {"solution": 100, "untouched": 0, "wrong_accuracy": 92, "reference_lenet": 72}


def test_solution_runs_clean_and_trains_the_autograde_epochs(a4_class):
    graded = nbformat.read(a4_class[0] / "autograded" / "solution" / A4 / A4_NOTEBOOK, as_version=4)
    errors = [(c.id, o.ename, o.evalue) for c in graded.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert errors == []
    stdout = "\n".join(o.get("text", "") for c in graded.cells if c.cell_type == "code" for o in c.outputs)
    # nbgrader sets NBGRADER_EXECUTION: the notebook noticed and trained for fewer epochs
    assert "autograding: True" in stdout
    assert "8 epochs on cpu" in stdout or "8 epochs on cuda" in stdout
    hidden = "".join(o.get("text", "") for o in _cell(graded, "q5_train-hidden").outputs)
    assert "trained by your train for 8 epochs" in hidden


def test_the_reference_lenet_is_caught_and_explained(a4_class):
    graded = nbformat.read(a4_class[0] / "autograded" / "reference_lenet" / A4 / A4_NOTEBOOK, as_version=4)
    errors = [o for grade_id in ("q1_lenet-answer", "q1_lenet-visible")
              for o in _cell(graded, grade_id).outputs if o.output_type == "error"]
    assert errors, "the reference-calling answer left no error that explains the lost points"
    assert any("cs_utils" in o.evalue or "ReferenceUsed" in o.ename for o in errors), errors


def test_the_wrong_accuracy_fails_with_a_teaching_message(a4_class):
    graded = nbformat.read(a4_class[0] / "autograded" / "wrong_accuracy" / A4 / A4_NOTEBOOK, as_version=4)
    errors = [o for o in _cell(graded, "q4_accuracy-visible").outputs if o.output_type == "error"]
    assert errors and errors[0].ename == "CheckFailed"
    assert "batch_size=3" in errors[0].evalue and "expected 0.75" in errors[0].evalue


def test_release_is_in_sync_and_leaks_nothing():
    assert release([A4], check=True, course=COURSE_ROOT) == []
    assert scan_for_leaks([COURSE_ROOT / "assignments" / A4], course=COURSE_ROOT) == []
    text = RELEASE_NB.read_text()
    for fragment in ("BEGIN SOLUTION", "HIDDEN TESTS", "self.c5 = nn.Conv2d(16, 120", "LambdaLR(optimizer",
                     "_reference_lenet", "_vgg_total_mem", "repeat_interleave(4"):
        assert fragment not in text, fragment


def test_scan_catches_a4_solutions_and_hidden_tests_pasted_into_the_release(tmp_path):
    source = nbformat.read(SOURCE_NB, as_version=4)
    leaky = nbformat.read(RELEASE_NB, as_version=4)
    body = "\n".join(line for line in _cell(source, "q5_train-answer").source.splitlines() if "SOLUTION" not in line)
    _cell(leaky, "q5_train-answer").source = body
    path = tmp_path / A4_NOTEBOOK
    nbformat.write(leaky, path)
    leaks = scan_for_leaks([path], course=COURSE_ROOT)
    assert any("LambdaLR(optimizer" in leak.text for leak in leaks), leaks
    leaky = nbformat.read(RELEASE_NB, as_version=4)
    _cell(leaky, "q9_where-hidden").source = _cell(source, "q9_where-hidden").source
    nbformat.write(leaky, path)
    kinds = {leak.kind for leak in scan_for_leaks([path], course=COURSE_ROOT)}
    assert kinds == {"nbgrader marker", "solution or hidden-test line"}


def test_feedback_explains_failures_without_showing_hidden_tests(a4_class):
    import html

    from cs_utils.course import feedback

    workspace = a4_class[0]
    pages = {p.parts[-3]: html.unescape(p.read_text()) for p in feedback(workspace, A4, course=COURSE_ROOT)}
    assert_feedback_hides_hidden_tests(pages, A4, expected_grades(), min_hidden=50)
    assert "cs_utils" in pages["reference_lenet"]
    assert "not implemented yet" in pages["untouched"]
