"""The nbgrader pipeline end to end, with real nbgrader and real kernels.

A class of sample submissions (fixture ``a1_class`` in conftest.py) is collected
from a zip and graded once by the ``cs-course grade`` console script; these tests
read the scores back from the gradebook and from the CSV report and compare them
with the points each sample should get, worked out from what it gets wrong.
"""

import csv
import json
import subprocess

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import A1, A1_NOTEBOOK, COURSE_ROOT, a1_points, assert_feedback_hides_hidden_tests

SOLUTION_NOTEBOOKS = sorted((COURSE_ROOT / "solutions").glob("*/*.ipynb"))


def _gradebook_grades(workspace, student):
    """{grade_id: points} and the total of one student's submission, from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}", "cnn-course") as gb:
        submission = gb.find_submission(A1, student)
        grades = {
            grade.name: float(grade.score)
            for notebook in submission.notebooks
            for grade in notebook.grades
        }
        return grades, float(submission.score), float(submission.max_score)


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.parent.name)
def test_solution_notebook_runs_top_to_bottom(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [
        (cell.metadata.get("nbgrader", {}).get("grade_id"), out.get("ename"), out.get("evalue"))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]
    assert errors == []
    # every visible test announced that it passed
    passed = [
        cell for cell in nb.cells
        if cell.metadata.get("nbgrader", {}).get("grade_id", "").endswith("-visible")
        and any("passed" in out.get("text", "") or "answered" in out.get("text", "") for out in cell.outputs)
    ]
    visible = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id", "").endswith("-visible")]
    assert len(passed) == len(visible) > 0


def test_points_add_up_to_100_with_visible_and_hidden_tests():
    points = a1_points()
    assert sum(points.values()) == 100
    questions = {gid.rsplit("-", 1)[0] for gid in points}
    for question in questions:
        assert f"{question}-visible" in points and f"{question}-hidden" in points, question
    source = json.loads((COURSE_ROOT / "solutions" / A1 / A1_NOTEBOOK).read_text())
    for cell in source["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id", "").endswith("-hidden"):
            assert "### BEGIN HIDDEN TESTS" in "".join(cell["source"]), meta["grade_id"]


def test_class_is_collected_and_the_batch_survives_a_broken_submission(a1_class):
    assert sorted(s for s, _, _ in a1_class.collected.placed) == sorted(a1_class.expected)
    assert a1_class.collected.problems == []
    run = a1_class.grade_run
    # the broken submission fails (exit status 1), and is reported with its reason...
    assert run.returncode == 1, run.stdout + run.stderr
    broken = [line for line in run.stdout.splitlines() if line.startswith("broken")]
    assert len(broken) == 1 and "FAILED" in broken[0], run.stdout
    # ...while every other submission was graded
    for student in a1_class.expected:
        line = next(line for line in run.stdout.splitlines() if line.startswith(student + " "))
        assert "graded" in line, line
    assert f"{len(a1_class.expected)} graded, 0 up to date, 1 failed" in run.stdout


@pytest.mark.parametrize("student", ["solution", "untouched", "partial", "reference", "warning"])
def test_scores_in_the_gradebook(a1_class, student):
    expected = a1_class.expected[student]
    grades, score, max_score = _gradebook_grades(a1_class.workspace, student)
    assert max_score == 100
    assert grades == pytest.approx(expected, abs=1e-4)
    assert score == pytest.approx(sum(expected.values()), abs=1e-4)


def test_headline_scores(a1_class):
    totals = {s: _gradebook_grades(a1_class.workspace, s)[1] for s in a1_class.expected}
    assert totals["solution"] == 100
    assert totals["untouched"] == 0
    assert totals["reference"] == 70  # q1-q3 (30 points) depend on the corr1d that calls np.convolve
    assert totals["partial"] == pytest.approx(100 - 10 - 6 - 1 - 6 / 7, abs=1e-4)
    assert totals["warning"] == 100  # the UserWarning on stderr costs nothing


def test_the_warning_answer_really_warns():
    # without this, the "warning" student would prove nothing about IgnorePattern
    import warnings

    from conftest import A1_WARNING_ANSWERS

    namespace = {"np": __import__("numpy")}
    exec(A1_WARNING_ANSWERS["q1_corr1d-answer"], namespace)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = namespace["corr1d"]([1.0, 2.0, 3.0], [1.0, 10.0])
    assert list(out) == [21.0, 32.0]
    assert [w.category for w in caught] == [UserWarning]


def test_reference_use_is_reported_to_the_student(a1_class):
    graded = nbformat.read(a1_class.workspace / "autograded" / "reference" / A1 / A1_NOTEBOOK, as_version=4)
    cell = next(c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "q1_corr1d-visible")
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert errors and errors[0].ename == "ReferenceUsedError"
    assert "corr1d called numpy.convolve" in errors[0].evalue


def test_report_csv_matches_the_gradebook(a1_class, tmp_path):
    run = subprocess.run(a1_class.cli + ["report", str(a1_class.workspace), A1, "--out", str(tmp_path)],
                         capture_output=True, text=True, env=a1_class.env, timeout=300)
    assert run.returncode == 0, run.stderr
    with open(tmp_path / "grades.csv") as fh:
        rows = {row["student"]: row for row in csv.DictReader(fh)}
    # the broken submission is listed, flagged and without a score (not a false 0)
    assert sorted(rows) == sorted(list(a1_class.expected) + ["broken"])
    assert rows["broken"]["status"].startswith("NOT GRADED") and rows["broken"]["score"] == ""
    for student, expected in a1_class.expected.items():
        row = rows[student]
        assert row["status"] == "graded"
        assert float(row["score"]) == pytest.approx(sum(expected.values()), abs=1e-3)
        assert float(row["max_score"]) == 100
        for grade_id, points in expected.items():
            assert float(row[grade_id]) == pytest.approx(points, abs=1e-3), (student, grade_id)
    with open(tmp_path / "question_means.csv") as fh:
        means = {row["question"]: row for row in csv.DictReader(fh)}
    q1 = [sum(e[k] for k in ("q1_corr1d-visible", "q1_corr1d-hidden")) for e in a1_class.expected.values()]
    assert float(means["q1_corr1d"]["mean"]) == pytest.approx(sum(q1) / len(q1), abs=1e-3)
    assert float(means["q1_corr1d"]["max_points"]) == 10
    png = (tmp_path / "grades.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_feedback_has_messages_but_no_hidden_tests(a1_class):
    run = subprocess.run(a1_class.cli + ["feedback", str(a1_class.workspace), A1],
                         capture_output=True, text=True, env=a1_class.env, timeout=300)
    assert run.returncode == 0, run.stderr
    import html

    pages = {p.parts[-3]: html.unescape(p.read_text())
             for p in (a1_class.workspace / "feedback").glob(f"*/{A1}/*.html")}
    assert_feedback_hides_hidden_tests(pages, A1, a1_class.expected, min_hidden=20)
    # the failed hidden checks still explain themselves
    assert "conv2d" in pages["untouched"] and "not implemented yet" in pages["untouched"]
    assert "corr1d called numpy.convolve" in pages["reference"]


def test_grading_again_skips_what_is_up_to_date(a1_class):
    run = subprocess.run(a1_class.cli + ["grade", str(a1_class.workspace), A1, "--no-progress",
                                         "--student", "solution", "--student", "partial"],
                         capture_output=True, text=True, env=a1_class.env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 graded, 2 up to date, 0 failed" in run.stdout
    assert _gradebook_grades(a1_class.workspace, "solution")[1] == 100
