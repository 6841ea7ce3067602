"""`cs-course grade --dask ADDRESS`: the notebooks run on the workers of a Dask cluster.

A LocalCluster on loopback stands in for a real one: two worker processes,
one thread each. The coordinator (this process) does nbgrader's bookkeeping;
the test checks that every notebook ran in one of the cluster's workers, that
both took part, and that the scores are those of a local run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import A1, A1_NOTEBOOK, A1_PARTIAL_ANSWERS, COURSE_ROOT, a1_expected_grades

RELEASE_NB = COURSE_ROOT / "assignments" / A1 / A1_NOTEBOOK
SOURCE_NB = COURSE_ROOT / "solutions" / A1 / A1_NOTEBOOK


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40) as local:
        with distributed.Client(local) as client:
            pids = client.run(os.getpid)
            yield local.scheduler_address, {f"{__import__('socket').gethostname()}:{pid}" for pid in pids.values()}


def _class(workspace: Path) -> dict[str, float]:
    from cs_utils.course import fill_release

    expected = a1_expected_grades()
    kinds = {"solution": fill_release(RELEASE_NB, SOURCE_NB),
             "untouched": nbformat.read(RELEASE_NB, as_version=4),
             "partial": fill_release(RELEASE_NB, SOURCE_NB, answers=A1_PARTIAL_ANSWERS)}
    scores = {}
    for i, kind in enumerate(["solution", "untouched", "partial", "solution"]):
        student = f"d{i}-{kind}"
        folder = workspace / "submitted" / student / A1
        folder.mkdir(parents=True)
        nbformat.write(kinds[kind], folder / A1_NOTEBOOK)
        scores[student] = sum(expected[kind].values())
    return scores


def test_grading_on_a_dask_cluster(cluster, tmp_path):
    from cs_utils.course import grade

    address, workers = cluster
    expected = _class(tmp_path)
    results = grade(tmp_path, A1, dask=address, course=COURSE_ROOT, progress=False)
    assert [r.error for r in results if not r.ok] == []
    assert {r.student: r.score for r in results} == pytest.approx(expected, abs=1e-4)
    ran_on = {r.worker for r in results}
    assert ran_on <= workers  # every notebook ran in a worker of the cluster
    assert len(ran_on) == 2  # and both workers took part


def test_the_command_line_takes_a_scheduler_address(cluster, tmp_path):
    address, _ = cluster
    expected = _class(tmp_path)
    cli = [str(Path(sys.executable).parent / "cs-course"), "--course", str(COURSE_ROOT), "grade", str(tmp_path),
           A1, "--dask", address, "--no-progress", "--student", "d1-untouched", "--student", "d2-partial"]
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    run = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 graded, 0 up to date, 0 failed" in run.stdout
    for student in ("d1-untouched", "d2-partial"):
        line = next(line for line in run.stdout.splitlines() if line.startswith(student + " "))
        assert f"{expected[student]:g} / 100" in line, line
