"""The student release: in step with solutions/, stripped, and leaking nothing (nor the bundle)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import A1, A1_NOTEBOOK, COURSE_ROOT
from cs_utils.course import CourseError, bundle, fill_release, release, scan_for_leaks

CLI = [str(Path(sys.executable).parent / "cs-course"), "--course", str(COURSE_ROOT)]
SOURCE_NB = COURSE_ROOT / "solutions" / A1 / A1_NOTEBOOK
RELEASE_NB = COURSE_ROOT / "assignments" / A1 / A1_NOTEBOOK


def _course_copy(tmp_path: Path) -> Path:
    """A copy of the course directory (what the release and the bundle read) to break on purpose."""
    root = tmp_path / "course"
    root.mkdir()
    for name in ("solutions", "assignments", "cs_utils"):
        shutil.copytree(COURSE_ROOT / name, root / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", "_fastops.c", "build"))
    for name in ("nbgrader_config.py", "pyproject.toml", "setup.py", "environment.yml"):
        shutil.copy2(COURSE_ROOT / name, root / name)
    return root


def test_release_is_in_sync_and_clean():
    # regenerate from solutions/ into a temporary folder and compare with assignments/
    assert release(check=True, course=COURSE_ROOT) == []


def test_release_check_notices_a_hand_edited_release(tmp_path):
    course = _course_copy(tmp_path)
    nb = json.loads((course / "assignments" / A1 / A1_NOTEBOOK).read_text())
    nb["cells"][0]["source"] = ["# Assignment 1, edited by hand\n"]
    (course / "assignments" / A1 / A1_NOTEBOOK).write_text(json.dumps(nb, indent=1))
    problems = release(check=True, course=course)
    assert any("differs from a fresh release" in p and "cell 0" in p for p in problems), problems
    run = subprocess.run(CLI[:1] + ["--course", str(course), "release", "--check"], capture_output=True, text=True)
    assert run.returncode == 1 and "differs from a fresh release" in run.stdout


def test_release_ignores_volatile_metadata(tmp_path):
    course = _course_copy(tmp_path)
    path = course / "assignments" / A1 / A1_NOTEBOOK
    nb = json.loads(path.read_text())
    nb["metadata"]["language_info"] = {"name": "python", "version": "3.11.99"}
    path.write_text(json.dumps(nb, indent=1))
    assert release(check=True, course=course) == []


def test_committed_notebooks_have_no_outputs():
    for path in sorted((COURSE_ROOT / "solutions").glob("*/*.ipynb")) + sorted((COURSE_ROOT / "assignments").glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, (path, cell.id)


def test_release_has_no_solution_or_hidden_test():
    assert scan_for_leaks([COURSE_ROOT / "assignments"], course=COURSE_ROOT) == []
    text = RELEASE_NB.read_text()
    for fragment in ("BEGIN SOLUTION", "HIDDEN TESTS", "np.dot(x[i:i + k], w)", "_oracle", "FLAT_UNCHANGED = {"):
        assert fragment not in text


def _leaky(tmp_path: Path, edit) -> Path:
    nb = nbformat.read(RELEASE_NB, as_version=4)
    edit(nb)
    out = tmp_path / "leaky" / A1_NOTEBOOK
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return out


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_scan_finds_a_solution_left_in_an_answer_cell(tmp_path):
    solution = nbformat.read(SOURCE_NB, as_version=4)
    body = _cell(solution, "q6_conv2d-answer").source
    body = "\n".join(line for line in body.splitlines() if "SOLUTION" not in line)  # markers removed

    def edit(nb):
        _cell(nb, "q6_conv2d-answer").source = body

    leaks = scan_for_leaks([_leaky(tmp_path, edit)], course=COURSE_ROOT)
    assert leaks and all(leak.kind == "solution or hidden-test line" for leak in leaks)
    assert any("padded[u:u + stride * (ho - 1) + 1:stride" in leak.text for leak in leaks)


def test_scan_finds_markers_and_hidden_tests(tmp_path):
    source = nbformat.read(SOURCE_NB, as_version=4)

    def edit(nb):
        _cell(nb, "q7_stride_pad-hidden").source = _cell(source, "q7_stride_pad-hidden").source

    leaks = scan_for_leaks([_leaky(tmp_path, edit)], course=COURSE_ROOT)
    kinds = {leak.kind for leak in leaks}
    assert kinds == {"nbgrader marker", "solution or hidden-test line"}
    run = subprocess.run(CLI + ["scan", str(tmp_path / "leaky")], capture_output=True, text=True)
    assert run.returncode == 1 and "leak(s)" in run.stdout


def test_scan_looks_at_outputs_too(tmp_path):
    # a traceback that quotes a line of a hidden test is a leak even though the source is clean
    hidden = "_expected = [sum(_x[_i + _j] * _w[_j] for _j in range(_k)) for _i in range(_n - _k + 1)]"
    assert hidden in _cell(nbformat.read(SOURCE_NB, as_version=4), "q1_corr1d-hidden").source

    def edit(nb):
        _cell(nb, "q1_corr1d-hidden").outputs = [
            nbformat.v4.new_output("error", ename="CheckFailed", evalue="wrong", traceback=[f"----> 5 {hidden}"])
        ]

    leaks = scan_for_leaks([_leaky(tmp_path, edit)], course=COURSE_ROOT)
    assert len(leaks) == 1 and leaks[0].where.endswith("output") and leaks[0].text.endswith(hidden)


def test_scan_reports_an_unreadable_notebook(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{ not json")
    assert [leak.kind for leak in scan_for_leaks([tmp_path], course=COURSE_ROOT)] == ["unreadable notebook"]


def test_bundle_is_clean_and_complete(tmp_path):
    out = bundle(tmp_path / "student", course=COURSE_ROOT)
    assert (out / "assignments" / A1 / A1_NOTEBOOK).is_file()
    assert (out / "cs_utils" / "grading.py").is_file() and (out / "cs_utils" / "functional.py").is_file()
    for forbidden in ("solutions", "tests", "nbgrader_config.py", "cs_utils/course.py", "gradebook.db"):
        assert not (out / forbidden).exists(), forbidden
    assert "cs-course" not in (out / "pyproject.toml").read_text()
    assert "[project]" in (out / "pyproject.toml").read_text()
    assert "make lab" in (out / "README.md").read_text()
    assert scan_for_leaks([out], course=COURSE_ROOT) == []
    if (COURSE_ROOT / "lectures").is_dir():
        assert sorted(p.name for p in (out / "lectures").glob("*.ipynb")) == sorted(
            p.name for p in (COURSE_ROOT / "lectures").glob("*.ipynb"))


def test_bundle_refuses_to_ship_a_leak(tmp_path):
    course = _course_copy(tmp_path)
    leaky = fill_release(course / "assignments" / A1 / A1_NOTEBOOK, course / "solutions" / A1 / A1_NOTEBOOK)
    nbformat.write(leaky, course / "assignments" / A1 / A1_NOTEBOOK)  # a release with the answers in it
    with pytest.raises(CourseError, match="the student bundle leaks"):
        bundle(tmp_path / "student", course=course)


def test_scan_does_not_flag_public_lines(tmp_path):
    # imports and lines that the lectures show are no secret, even inside a hidden-test region
    lines = ["import torch", "from cs_utils.grading import grade_answers", "import torch.nn.functional as _F"]
    for lecture in sorted((COURSE_ROOT / "lectures").glob("*.ipynb"))[:1]:
        code = [c for c in nbformat.read(lecture, as_version=4).cells if c.cell_type == "code" and c.source.strip()]
        lines.append(code[0].source.splitlines()[0])

    def edit(nb):
        _cell(nb, "q1_corr1d-hidden").source = "\n".join(lines)

    assert scan_for_leaks([_leaky(tmp_path, edit)], course=COURSE_ROOT) == []
