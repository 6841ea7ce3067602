"""`cs-course collect`: an LMS export (folder or zip) into nbgrader's submitted/ layout."""

import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat

from conftest import A1, A1_NOTEBOOK, COURSE_ROOT
from cs_utils.course import collect

CLI = [str(Path(sys.executable).parent / "cs-course"), "--course", str(COURSE_ROOT)]
RELEASE_TEXT = (COURSE_ROOT / "assignments" / A1 / A1_NOTEBOOK).read_text()

GOOD = {
    f"alice/{A1}/{A1_NOTEBOOK}": RELEASE_TEXT,
    f"bob.smith@uni.edu/{A1}/{A1_NOTEBOOK}": RELEASE_TEXT.replace("YOUR CODE HERE", "bob was here"),
}
BAD = {
    f"{A1}/{A1_NOTEBOOK}": ("wrong folder", RELEASE_TEXT),                    # no student folder
    f"carol/extra/{A1}/{A1_NOTEBOOK}": ("wrong folder", RELEASE_TEXT),        # one level too deep
    f"dave/{A1}/notes.txt": ("not a notebook", "my notes"),
    f"erin/{A1}/{A1_NOTEBOOK}": ("invalid notebook", "{ this is not JSON"),
    f"frank/{A1}/{A1_NOTEBOOK}": ("invalid notebook", '{"cells": "not a list"}'),
    f"gina/a9_unknown/{A1_NOTEBOOK}": ("unknown assignment", RELEASE_TEXT),
    f"../evil/{A1}/{A1_NOTEBOOK}": ("unsafe path", RELEASE_TEXT),
    f"h!nk/{A1}/{A1_NOTEBOOK}": ("student id", RELEASE_TEXT),
    f"jack/{A1}/{A1_NOTEBOOK}": ("too large", " " * (50 * 2**20 + 1)),  # compresses to almost nothing
}
LITTER = {f"__MACOSX/alice/{A1}/._{A1_NOTEBOOK}": "x", f"alice/{A1}/.DS_Store": "x"}


def _zip(path: Path, entries: dict) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in entries.items():
            zf.writestr(name, text)
    return path


def test_zip_with_bad_entries_places_the_rest_and_reports_each(tmp_path):
    entries = dict(GOOD) | {name: text for name, (_, text) in BAD.items()} | LITTER
    entries[f"ivan/{A1}/{A1_NOTEBOOK.replace('.ipynb', '-Copy1.ipynb')}"] = RELEASE_TEXT  # renamed copy
    archive = _zip(tmp_path / "export.zip", entries)
    workspace = tmp_path / "ws"
    report = collect(workspace, archive, course=COURSE_ROOT)

    # the good ones are placed byte for byte, with a timestamp nbgrader can read
    for name, text in GOOD.items():
        student = name.split("/")[0]
        placed = workspace / "submitted" / student / A1 / A1_NOTEBOOK
        assert placed.read_text() == text
        assert (placed.parent / "timestamp.txt").read_text().strip().endswith("UTC")
    # every bad entry is reported once, with its reason, and placed nowhere
    problems = dict(report.problems)
    for name, (reason, _) in BAD.items():
        assert reason in problems.get(name, ""), (name, problems.get(name))
    students = sorted(p.name for p in (workspace / "submitted").iterdir())
    assert students == ["alice", "bob.smith@uni.edu", "ivan"]
    assert not (tmp_path / "evil").exists() and not (workspace.parent / "evil").exists()
    # the renamed copy is kept (nothing is lost) but flagged: nbgrader will not grade it
    renamed = f"ivan/{A1}/convolution-Copy1.ipynb"
    assert renamed not in problems and "nbgrader will not grade it" in dict(report.warnings)[renamed]
    # litter is ignored silently
    assert not any("__MACOSX" in name or "DS_Store" in name for name, _ in report.problems)
    assert sorted(report.placed) == sorted(
        [("alice", A1, A1_NOTEBOOK), ("bob.smith@uni.edu", A1, A1_NOTEBOOK), ("ivan", A1, "convolution-Copy1.ipynb")]
    )


def test_collect_from_a_folder_and_replace_a_resubmission(tmp_path):
    source = tmp_path / "export"
    for name, text in GOOD.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    workspace = tmp_path / "ws"
    first = collect(workspace, source, course=COURSE_ROOT)
    assert len(first.placed) == 2 and first.problems == []
    newer = nbformat.reads(RELEASE_TEXT, as_version=4)
    newer.cells[0].source = "resubmitted"
    nbformat.write(newer, source / f"alice/{A1}/{A1_NOTEBOOK}")
    collect(workspace, source, course=COURSE_ROOT)
    placed = nbformat.read(workspace / "submitted" / "alice" / A1 / A1_NOTEBOOK, as_version=4)
    assert placed.cells[0].source == "resubmitted"


def test_cli_reports_and_exits_1_when_something_was_not_placed(tmp_path):
    archive = _zip(tmp_path / "export.zip", dict(GOOD) | {f"erin/{A1}/{A1_NOTEBOOK}": "{ nope"})
    run = subprocess.run(CLI + ["collect", str(tmp_path / "ws"), str(archive)], capture_output=True, text=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "placed 2 notebook(s) from 2 student(s)" in run.stdout
    assert f"NOT PLACED erin/{A1}/{A1_NOTEBOOK}: invalid notebook" in run.stdout
    run = subprocess.run(CLI + ["collect", str(tmp_path / "ws2"), str(_zip(tmp_path / "ok.zip", GOOD))],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_collect_refuses_something_that_is_not_a_zip_or_folder(tmp_path):
    bogus = tmp_path / "export.tar"
    bogus.write_text("not an archive")
    run = subprocess.run(CLI + ["collect", str(tmp_path / "ws"), str(bogus)], capture_output=True, text=True)
    assert run.returncode == 2 and "neither a folder nor a zip file" in run.stderr
