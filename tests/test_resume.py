"""`cs-course grade` killed with SIGKILL in the middle of a class, then run again: nothing graded is
lost or graded twice, only the rest is graded, and no grading process outlives the killed one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from conftest import A1, A1_NOTEBOOK, A1_PARTIAL_ANSWERS, COURSE_ROOT, a1_expected_grades

RELEASE_NB = COURSE_ROOT / "assignments" / A1 / A1_NOTEBOOK
SOURCE_NB = COURSE_ROOT / "solutions" / A1 / A1_NOTEBOOK
MARKER = ".cs-course-graded.json"


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _scores(workspace: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}", "cnn-course") as gb:
        return {s.student_id: float(s.score) for s in gb.assignment_submissions(A1)}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to follow the grading processes")
def test_a_killed_run_resumes_without_losing_or_repeating_a_grade(tmp_path):
    from cs_utils.course import fill_release

    expected_grades = a1_expected_grades()
    kinds = {"solution": fill_release(RELEASE_NB, SOURCE_NB),
             "untouched": nbformat.read(RELEASE_NB, as_version=4),
             "partial": fill_release(RELEASE_NB, SOURCE_NB, answers=A1_PARTIAL_ANSWERS)}
    class_list = {f"s{i}-{kind}": kind for i, kind in enumerate(["solution", "untouched", "partial"] * 2)}
    workspace = tmp_path / "ws"
    for student, kind in class_list.items():
        folder = workspace / "submitted" / student / A1
        folder.mkdir(parents=True)
        nbformat.write(kinds[kind], folder / A1_NOTEBOOK)
    expected = {s: sum(expected_grades[k].values()) for s, k in class_list.items()}
    cli = [str(Path(sys.executable).parent / "cs-course"), "--course", str(COURSE_ROOT), "grade", str(workspace),
           A1, "-j", "1", "--no-progress"]
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])

    run = subprocess.Popen(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    markers: list[Path] = []
    seen: set[int] = set()
    while time.monotonic() < deadline and run.poll() is None:
        seen |= _descendants(run.pid)
        markers = sorted(workspace.glob(f"autograded/*/{A1}/{MARKER}"))
        if len(markers) >= 2:
            break
        time.sleep(0.2)
    assert run.poll() is None, "the run ended before it could be killed:\n" + run.stdout.read()
    seen |= _descendants(run.pid)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    run.stdout.close()
    graded_before = {p.parts[-3] for p in workspace.glob(f"autograded/*/{A1}/{MARKER}")}
    assert 2 <= len(graded_before) < len(class_list)
    assert len(seen) >= 2  # a worker and its kernel were running
    # the workers and kernels die with the killed process (PR_SET_PDEATHSIG), not minutes later
    for _ in range(100):
        if not _alive(seen):
            break
        time.sleep(0.1)
    assert _alive(seen) == set()
    stamps = {s: (workspace / "autograded" / s / A1 / MARKER).stat().st_mtime_ns for s in graded_before}

    again = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    rest = len(class_list) - len(graded_before)
    assert f"{rest} graded, {len(graded_before)} up to date, 0 failed" in again.stdout, again.stdout
    for student in graded_before:  # not graded a second time
        assert f"{student} " in again.stdout and "skipped (up to date)" in next(
            line for line in again.stdout.splitlines() if line.startswith(student + " "))
        assert (workspace / "autograded" / student / A1 / MARKER).stat().st_mtime_ns == stamps[student]
    assert _scores(workspace) == pytest.approx(expected, abs=1e-4)  # one row per student, each right

    third = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=300)
    assert f"0 graded, {len(class_list)} up to date, 0 failed" in third.stdout, third.stdout
