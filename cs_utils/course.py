"""Instructor commands of the course, on top of nbgrader's Python API (console script ``cs-course``).

One command per step of a TA's week::

    cs-course release [ASSIGNMENT ...]          # solutions/ -> assignments/, then prove nothing leaked
    cs-course release --check                   # same, into a temporary folder: is assignments/ in sync?
    cs-course collect WORKSPACE SOURCE          # a folder or zip of <student>/<assignment>/*.ipynb -> submitted/
    cs-course grade WORKSPACE [ASSIGNMENT] -j N # autograde every submission, N at a time, each sandboxed
    cs-course grade WORKSPACE --dask ADDRESS    # the same, on a Dask cluster
    cs-course feedback WORKSPACE [ASSIGNMENT]   # HTML feedback per student, without the hidden tests
    cs-course report WORKSPACE [ASSIGNMENT]     # grades.csv, question_means.csv, grades.png
    cs-course bundle OUT                        # the student-facing copy of the course
    cs-course scan PATH ...                     # the leak scan on its own
    cs-course demo WORKSPACE                    # all of the above on sample submissions

Grading runs every notebook in a sandboxed kernel (``cs_utils.autograde`` and
``cs_utils.sandbox``): cells back in the release's order, student code checked
against a static policy before it runs, a private working folder, limits on
memory, CPU and wall-clock time, kernels restarted when student code kills
them, and checks that student code cannot reach. The notebooks run in local
worker processes (``-j``) or on a Dask cluster (``--dask``); this process does
nbgrader's bookkeeping and marks each submission done, so an interrupted run
resumes where it stopped.

The *course* is this repository (``nbgrader_config.py``, ``solutions/``,
``assignments/``). Graded work lives in a *workspace* outside it, which is an
nbgrader course root of its own: ``solutions/<a>`` (a snapshot of the source
being graded against), ``assignments/<a>``, ``submitted/``, ``autograded/``,
``feedback/``, ``gradebook.db`` and ``reports/``. Every nbgrader step goes
through :class:`nbgrader.apps.NbGraderAPI` with the course's configuration
loaded from ``nbgrader_config.py`` and the root pointed at the workspace.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import dataclasses
import filecmp
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from nbgrader.preprocessors import NbGraderPreprocessor

__all__ = [
    "find_course_root",
    "nbgrader_api",
    "release",
    "scan_for_leaks",
    "collect",
    "prepare_workspace",
    "grade",
    "feedback",
    "report",
    "bundle",
    "fill_release",
    "strip_markers",
    "demo",
    "main",
    "Leak",
    "CollectReport",
    "GradeResult",
    "CourseError",
    "ShortenHiddenTracebacks",
    "FailedTestsSummary",
    "GRADED_MARKER",
]

log = logging.getLogger("cs_course")

CONFIG_FILE = "nbgrader_config.py"
WORKSPACE_MARKER = ".cs-course-workspace"
# Directory names of the course root and of every workspace (same as nbgrader_config.py).
SOURCE = "solutions"
RELEASE = "assignments"

_MARKER_RE = re.compile(r"(BEGIN|END)\s+(SOLUTION|HIDDEN\s+TESTS|MARK\s+SCHEME)", re.IGNORECASE)
_REGION_BEGIN = re.compile(r"^\s*(#+|<!--)?\s*(=+\s*)?BEGIN\s+(SOLUTION|HIDDEN\s+TESTS|MARK\s+SCHEME)", re.IGNORECASE)
_REGION_END = re.compile(r"^\s*(#+|<!--)?\s*(=+\s*)?END\s+(SOLUTION|HIDDEN\s+TESTS|MARK\s+SCHEME)", re.IGNORECASE)
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # colours in tracebacks split the code they quote
_MIN_LEAK_LINE = 12  # shorter lines of solution code ("return out") are too common to count as a leak
_IMPORT_RE = re.compile(r"^(import\s+[\w.]+(\s+as\s+\w+)?|from\s+[\w.]+\s+import\s+[\w., ()]+)$")
_MAX_NOTEBOOK_BYTES = 50 * 2**20  # nbgrader's own copy limit is 100 MB per folder
_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
# Notebook-level metadata that differs between machines and runs, ignored when
# checking that assignments/ is in sync with solutions/.
_VOLATILE_NB_METADATA = ("language_info", "widgets", "toc", "varInspector", "execution")


class CourseError(RuntimeError):
    """A command could not do its job; the message says what to fix."""


# --------------------------------------------------------------------------
# nbgrader set-up
# --------------------------------------------------------------------------


def find_course_root(course: str | os.PathLike | None = None) -> Path:
    """The course directory: ``course`` if given, else ``$CS_COURSE_ROOT``, the current
    directory or the repository that holds this package, whichever has ``nbgrader_config.py``."""
    candidates = [course, os.environ.get("CS_COURSE_ROOT"), Path.cwd(), Path(__file__).resolve().parents[1]]
    for candidate in candidates:
        if candidate and (Path(candidate) / CONFIG_FILE).is_file():
            return Path(candidate).resolve()
    if course:
        raise CourseError(f"{course} is not a course directory: it has no {CONFIG_FILE}")
    raise CourseError(f"no course directory found (a folder with {CONFIG_FILE}); pass --course DIR")


def _ensure_tools_on_path() -> None:
    """nbgrader runs ``alembic`` by name: the interpreter's bin/ must be on PATH."""
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + path


def _load_config(course: Path):
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader(CONFIG_FILE, path=str(course)).load_config()


_NO_EXCHANGE_LIST = None


def _no_exchange_list():
    """An ExchangeList that reports "no exchange" quietly.

    NbGraderAPI lists the exchange when it starts; this course hands assignments
    out and in through its LMS and ``collect``, so there is no exchange, and the
    default lister would log a CRITICAL "Unwritable directory" on every command.
    """
    global _NO_EXCHANGE_LIST
    if _NO_EXCHANGE_LIST is None:
        from nbgrader.exchange.abc import ExchangeError, ExchangeList

        class NoExchangeList(ExchangeList):
            def start(self):
                raise ExchangeError("this course has no nbgrader exchange")

        _NO_EXCHANGE_LIST = NoExchangeList
    return _NO_EXCHANGE_LIST


def nbgrader_api(root: str | os.PathLike, *, course: Path, db: str | os.PathLike | None = None, **overrides: Any):
    """An :class:`NbGraderAPI` for the nbgrader course root ``root`` with the course's configuration.

    ``db`` overrides the gradebook file (default ``root/gradebook.db``);
    ``overrides`` are ``{"Class.trait": value}`` settings applied last.
    """
    _ensure_tools_on_path()
    from nbgrader.apps import NbGraderAPI

    config = _load_config(course)
    config.CourseDirectory.root = str(Path(root).resolve())
    if db is not None:
        config.CourseDirectory.db_url = f"sqlite:///{Path(db).resolve()}"
    config.ExchangeFactory.list = _no_exchange_list()
    for key, value in overrides.items():
        section, trait = key.split(".")
        setattr(getattr(config, section), trait, value)
    api = NbGraderAPI(config=config)
    # nbgrader's own warnings (a re-checksummed hidden test cell, an existing
    # folder being replaced) are routine here; errors still reach the captured log.
    api.log.setLevel(logging.ERROR)
    return api


def _check(result: dict, what: str) -> None:
    if not result.get("success"):
        detail = (result.get("error") or "").strip().splitlines()
        logtext = (result.get("log") or "").strip()
        raise CourseError(f"{what} failed: {detail[-1] if detail else 'no detail'}\n{logtext}")


def _assignments_in(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


# --------------------------------------------------------------------------
# release and the leak scan
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Leak:
    """Something of the instructor's found in a student-facing file."""

    path: Path
    where: str
    kind: str
    text: str

    def __str__(self) -> str:
        return f"{self.path} [{self.where}] {self.kind}: {self.text}"


def _read_notebook_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _hidden_lines(source_notebooks: Iterable[Path], public_notebooks: Iterable[Path] = ()) -> set[str]:
    """Distinctive lines inside solution, hidden-test and mark-scheme regions of the source notebooks.

    Left out, because they are no secret: lines that also occur, whole or as
    part of a line, outside those regions or in a public notebook (a lecture);
    import statements; lines shorter than a dozen characters (``return out``).
    """
    inside: set[str] = set()
    outside: set[str] = set()
    for path in source_notebooks:
        for cell in _read_notebook_json(path).get("cells", []):
            depth = 0
            for raw in _cell_source(cell).splitlines():
                line = raw.strip()
                if _REGION_BEGIN.match(line):
                    depth += 1
                    continue
                if _REGION_END.match(line):
                    depth = max(0, depth - 1)
                    continue
                (inside if depth else outside).add(line)
            # A whole markdown cell marked as a solution is hidden text as well.
            nbg = cell.get("metadata", {}).get("nbgrader", {})
            if cell.get("cell_type") == "markdown" and nbg.get("solution"):
                inside.update(line.strip() for line in _cell_source(cell).splitlines())
    for path in public_notebooks:
        try:
            cells = _read_notebook_json(path).get("cells", [])
        except (OSError, ValueError):
            continue
        for cell in cells:
            outside.update(line.strip() for line in _cell_source(cell).splitlines())
    candidates = {
        line for line in inside - outside
        if len(line) >= _MIN_LEAK_LINE and not _IMPORT_RE.match(line)
    }
    return {line for line in candidates if not any(line in public for public in outside)}


def scan_for_leaks(paths: Iterable[str | os.PathLike], *, course: Path | None = None) -> list[Leak]:
    """Look through student-facing files for anything of the instructor's.

    In every notebook (sources and outputs): nbgrader region markers (BEGIN/END
    SOLUTION, HIDDEN TESTS, MARK SCHEME) and any distinctive line of solution
    or hidden-test code from the course's ``solutions/`` (see ``_hidden_lines``:
    lines the lectures show are public). In every other text file: the markers.
    Unreadable notebooks are reported too.
    """
    course = find_course_root(course)
    hidden = _hidden_lines(sorted((course / SOURCE).glob("*/*.ipynb")), sorted((course / "lectures").glob("**/*.ipynb")))
    leaks: list[Leak] = []
    files: list[Path] = []
    for base in map(Path, paths):
        files.extend(sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base])
    for path in files:
        if path.suffix == ".ipynb":
            try:
                nb = _read_notebook_json(path)
            except (OSError, ValueError) as exc:
                leaks.append(Leak(path, "file", "unreadable notebook", str(exc)))
                continue
            for index, cell in enumerate(nb.get("cells", [])):
                texts = [("source", _cell_source(cell))]
                for output in cell.get("outputs", []):
                    text = output.get("text", "")
                    texts.append(("output", "".join(text) if isinstance(text, list) else str(text)))
                    texts.append(("output", "\n".join(output.get("traceback", []))))
                    for value in output.get("data", {}).values():
                        if isinstance(value, (str, list)):
                            texts.append(("output", "".join(value) if isinstance(value, list) else value))
                for part, text in texts:
                    for line in _ANSI_RE.sub("", text).splitlines():
                        stripped = line.strip()
                        if _MARKER_RE.search(stripped):
                            leaks.append(Leak(path, f"cell {index} {part}", "nbgrader marker", stripped))
                        elif stripped in hidden or any(h in stripped for h in hidden):
                            # also inside a longer line: a traceback quotes code as "----> 5 <line>"
                            leaks.append(Leak(path, f"cell {index} {part}", "solution or hidden-test line", stripped))
        elif path.suffix in {".py", ".md", ".txt", ".rst", ".cfg", ".toml", ".yml", ".yaml", ".json", ".html"}:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            for number, line in enumerate(text.splitlines(), 1):
                if _MARKER_RE.search(line):
                    leaks.append(Leak(path, f"line {number}", "nbgrader marker", line.strip()))
    return leaks


def _normalised_notebook(path: Path) -> dict:
    """A notebook as JSON with the volatile notebook-level metadata removed."""
    nb = _read_notebook_json(path)
    for key in _VOLATILE_NB_METADATA:
        nb.get("metadata", {}).pop(key, None)
    return nb


def _compare_trees(expected: Path, actual: Path) -> list[str]:
    """Differences between two release folders (notebooks compared without volatile metadata)."""
    problems = []
    exp_files = {p.relative_to(expected) for p in expected.rglob("*") if p.is_file()}
    act_files = {p.relative_to(actual) for p in actual.rglob("*") if p.is_file()} if actual.is_dir() else set()
    for rel in sorted(exp_files - act_files):
        problems.append(f"missing from {actual}: {rel}")
    for rel in sorted(act_files - exp_files):
        problems.append(f"not produced by the release, but present in {actual}: {rel}")
    for rel in sorted(exp_files & act_files):
        a, b = expected / rel, actual / rel
        if rel.suffix == ".ipynb":
            na, nb = _normalised_notebook(a), _normalised_notebook(b)
            if na != nb:
                cells_a, cells_b = na.get("cells", []), nb.get("cells", [])
                detail = f"{len(cells_b)} cells instead of {len(cells_a)}"
                for i, (ca, cb) in enumerate(zip(cells_a, cells_b)):
                    if ca != cb:
                        detail = f"first difference in cell {i} ({ca.get('id', '?')})"
                        break
                problems.append(f"{actual / rel} differs from a fresh release: {detail}")
        elif not filecmp.cmp(a, b, shallow=False):
            problems.append(f"{actual / rel} differs from a fresh release")
    return problems


def _generate(api, assignment: str) -> None:
    _check(api.generate_assignment(assignment, force=True, create=True), f"nbgrader generate_assignment {assignment}")


def release(
    assignments: Sequence[str] | None = None,
    *,
    course: str | os.PathLike | None = None,
    check: bool = False,
) -> list[str]:
    """Regenerate ``assignments/`` from ``solutions/`` with nbgrader, then scan the release for leaks.

    With ``check=True`` nothing in the course changes: the release is made in
    a temporary folder and compared with ``assignments/``. Returns the list of
    problems (differences and leaks); empty means all is well.
    """
    course = find_course_root(course)
    names = list(assignments) if assignments else _assignments_in(course / SOURCE)
    if not names:
        raise CourseError(f"no assignments in {course / SOURCE}")
    for name in names:
        if not (course / SOURCE / name).is_dir():
            raise CourseError(f"no assignment {name!r} in {course / SOURCE} (have: {', '.join(_assignments_in(course / SOURCE))})")
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cs-course-release-") as tmp:
        target = Path(tmp) / RELEASE if check else course / RELEASE
        api = nbgrader_api(course, course=course, db=Path(tmp) / "gradebook.db",
                           **{"CourseDirectory.release_directory": str(target)})
        for name in names:
            _generate(api, name)
            if check:
                problems += _compare_trees(target / name, course / RELEASE / name)
        problems += [str(leak) for leak in scan_for_leaks([target / n for n in names], course=course)]
    return problems


# --------------------------------------------------------------------------
# collect
# --------------------------------------------------------------------------


@dataclasses.dataclass
class CollectReport:
    """What ``collect`` did: the notebooks it placed, the entries it could not place
    (``problems``) and the placed ones that need a look (``warnings``)."""

    placed: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (student, assignment, file)
    problems: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (entry, why not placed)
    warnings: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (entry, what to check)

    def __str__(self) -> str:
        lines = [f"placed {len(self.placed)} notebook(s) from {len({s for s, _, _ in self.placed})} student(s)"]
        lines += [f"  NOT PLACED {entry}: {why}" for entry, why in self.problems]
        lines += [f"  CHECK {entry}: {why}" for entry, why in self.warnings]
        return "\n".join(lines)


def _known_notebooks(workspace: Path, course: Path) -> dict[str, set[str]]:
    known: dict[str, set[str]] = {}
    for base in (course / SOURCE, workspace / SOURCE):
        for name in _assignments_in(base):
            known.setdefault(name, set()).update(p.name for p in (base / name).glob("*.ipynb"))
    return known


def collect(
    workspace: str | os.PathLike,
    source: str | os.PathLike,
    *,
    course: str | os.PathLike | None = None,
) -> CollectReport:
    """Place submissions from a folder or zip of ``<student>/<assignment>/<notebook>.ipynb``
    into the workspace's ``submitted/<student>/<assignment>/``.

    Entries that cannot be placed are reported and skipped; the rest are placed:
    a path of the wrong depth, an unsafe path, an unknown assignment, a file that
    is not a notebook, a notebook that is not valid JSON. A notebook whose name
    the assignment does not know is placed but reported (nbgrader skips it).
    """
    import nbformat

    course = find_course_root(course)
    workspace = _init_workspace(workspace)
    known = _known_notebooks(workspace, course)
    report = CollectReport()
    source = Path(source)

    entries: list[tuple[str, Any]] = []  # (posix path, reader)
    archive = None
    if source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            entries.append((path.relative_to(source).as_posix(), path))
    elif zipfile.is_zipfile(source):
        archive = zipfile.ZipFile(source)
        for info in archive.infolist():
            if not info.is_dir():
                entries.append((info.filename, info))
    else:
        raise CourseError(f"{source} is neither a folder nor a zip file")

    timestamps: dict[tuple[str, str], str] = {}
    try:
        for name, handle in entries:
            parts = PurePosixPath(name).parts
            if any(p.startswith("__MACOSX") or p in {".DS_Store", "Thumbs.db"} for p in parts) or any(
                p == ".ipynb_checkpoints" for p in parts
            ):
                continue  # operating-system and editor litter, not a submission
            if name.startswith("/") or ".." in parts or "\\" in name:
                report.problems.append((name, "unsafe path (absolute or with ..)"))
                continue
            if len(parts) != 3:
                report.problems.append((name, "wrong folder: expected <student>/<assignment>/<notebook>.ipynb"))
                continue
            student, assignment, filename = parts
            if not _STUDENT_ID.match(student):
                report.problems.append((name, f"student id {student!r} has characters nbgrader cannot use"))
                continue
            if assignment not in known:
                report.problems.append((name, f"unknown assignment {assignment!r} (known: {', '.join(sorted(known))})"))
                continue
            if not filename.endswith(".ipynb"):
                report.problems.append((name, "not a notebook (.ipynb)"))
                continue
            size = handle.stat().st_size if isinstance(handle, Path) else handle.file_size
            if size > _MAX_NOTEBOOK_BYTES:
                report.problems.append((name, f"too large for a notebook ({size / 2**20:.0f} MiB)"))
                continue
            data = handle.read_bytes() if isinstance(handle, Path) else archive.read(handle)
            try:
                nbformat.reads(data.decode("utf-8"), as_version=4)
            except Exception as exc:  # JSON or nbformat error: the file cannot be graded
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                report.problems.append((name, f"invalid notebook: {reason}"))
                continue
            dest = workspace / "submitted" / student / assignment
            dest.mkdir(parents=True, exist_ok=True)
            (dest / filename).write_bytes(data)
            if isinstance(handle, Path):
                stamp = time.gmtime(handle.stat().st_mtime)
            else:  # zip entries carry a local time without a zone; close enough to order resubmissions
                stamp = time.struct_time(tuple(handle.date_time) + (0, 1, -1))
            current = time.strftime("%Y-%m-%d %H:%M:%S.000000 UTC", stamp)
            timestamps[(student, assignment)] = max(current, timestamps.get((student, assignment), current))
            report.placed.append((student, assignment, filename))
            if filename not in known[assignment]:
                report.warnings.append(
                    (name, f"placed, but {assignment} has no notebook {filename!r} "
                           f"(expected {', '.join(sorted(known[assignment]))}); nbgrader will not grade it")
                )
    finally:
        if archive is not None:
            archive.close()
    for (student, assignment), stamp in timestamps.items():
        (workspace / "submitted" / student / assignment / "timestamp.txt").write_text(stamp + "\n")
    return report


# --------------------------------------------------------------------------
# workspace, grading
# --------------------------------------------------------------------------


def _init_workspace(workspace: str | os.PathLike) -> Path:
    workspace = Path(workspace).resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / WORKSPACE_MARKER).touch()
    return workspace


def _tree_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def prepare_workspace(
    workspace: str | os.PathLike,
    assignment: str,
    *,
    course: str | os.PathLike | None = None,
) -> Path:
    """Make ``workspace`` an nbgrader course root that can grade ``assignment``.

    Copies ``solutions/<assignment>`` into the workspace (a snapshot of what is
    graded against) and registers it in the workspace's gradebook with
    ``generate_assignment``. Nothing is redone when the source has not changed.
    Raises :class:`CourseError` if the course's ``assignments/<assignment>``
    (what students received) differs from the release of that source.
    """
    course = find_course_root(course)
    workspace = _init_workspace(workspace)
    src = course / SOURCE / assignment
    if not src.is_dir():
        raise CourseError(f"no assignment {assignment!r} in {course / SOURCE}")
    snapshot = workspace / SOURCE / assignment
    stamp = workspace / SOURCE / f".{assignment}.sha256"
    digest = _tree_digest(src)
    if snapshot.is_dir() and stamp.is_file() and stamp.read_text().strip() == digest and (workspace / "gradebook.db").is_file():
        return workspace
    if snapshot.exists():
        shutil.rmtree(snapshot)
    shutil.copytree(src, snapshot, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    api = nbgrader_api(workspace, course=course)
    _generate(api, assignment)
    if (course / RELEASE / assignment).is_dir():
        differences = _compare_trees(workspace / RELEASE / assignment, course / RELEASE / assignment)
        if differences:
            raise CourseError(
                "the students' copy differs from a release of the current solutions; run "
                "`cs-course release` (and hand out the new version) first:\n  " + "\n  ".join(differences)
            )
    stamp.write_text(digest + "\n")
    return workspace


@dataclasses.dataclass
class GradeResult:
    """What grading one submission gave: its score, or why it could not be graded (``error``),
    and what the grader noticed on the way (``notes``: restored cells, code it would not run,
    kernel deaths, a renamed notebook)."""

    student: str
    assignment: str
    ok: bool
    score: float | None = None
    max_score: float | None = None
    seconds: float = 0.0
    error: str = ""
    skipped: bool = False
    notes: list[str] = dataclasses.field(default_factory=list)
    worker: str = ""  # host:pid of the process that ran the notebook
    cpu_seconds: float = 0.0  # CPU time of that run (worker and kernels)


GRADED_MARKER = ".cs-course-graded.json"  # written last, in autograded/<student>/<assignment>/
_EXECUTED = ".cs-course/executed"  # executed notebooks waiting for nbgrader's bookkeeping
_COPY_NAME = re.compile(r"^(?:Copy of |Copy_of_)?(?P<stem>.+?)(?:[-_ ]?\(?(?:Copy|copy)\d*\)?|[-_ ]\(?\d+\)?|-checkpoint)?$")


def _submission_digest(folder: Path) -> str:
    """The identity of a submission: names and bytes of every file the student handed in."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _is_graded(workspace: Path, assignment: str, student: str) -> bool:
    """This very submission was graded to the end: the marker that is written last matches it."""
    marker = workspace / "autograded" / student / assignment / GRADED_MARKER
    submitted = workspace / "submitted" / student / assignment
    if not marker.is_file() or not submitted.is_dir():
        return False
    try:
        return json.loads(marker.read_text()).get("submission") == _submission_digest(submitted)
    except (OSError, ValueError):
        return False


def _scores(workspace: Path, course: Path, assignment: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    _ensure_tools_on_path()
    config = _load_config(course)
    scores = {}
    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}", config.CourseDirectory.course_id) as gb:
        for submission in gb.assignment_submissions(assignment):
            scores[submission.student_id] = (float(submission.score), float(submission.max_score))
    return scores


def _notebook_names(workspace: Path, assignment: str) -> list[str]:
    return sorted(p.stem for p in (workspace / RELEASE / assignment).glob("*.ipynb"))


def _normalise_names(folder: Path, expected: Sequence[str]) -> list[str]:
    """A notebook handed in under another name (``convolution-Copy1.ipynb``, ``convolution (2).ipynb``,
    ``Copy of convolution.ipynb``) is graded as the notebook it is a copy of, when that one is missing.
    The student's file stays; a copy with the expected name is added. Returns what was done."""
    notes = []
    present = {p.stem: p for p in folder.glob("*.ipynb")}
    for name in expected:
        if name in present:
            continue
        candidates = [p for stem, p in present.items() if stem not in expected
                      and (m := _COPY_NAME.match(stem)) and m.group("stem") == name]
        if not candidates and len(expected) == 1:
            candidates = [p for stem, p in present.items() if stem not in expected]
        if len(candidates) == 1:
            shutil.copy2(candidates[0], folder / f"{name}.ipynb")
            notes.append(f"graded {candidates[0].name} as {name}.ipynb (the assignment's notebook was not there)")
        elif candidates:
            notes.append(f"{name}.ipynb is missing and {len(candidates)} other notebooks could be it "
                         f"({', '.join(sorted(p.name for p in candidates))}); none was graded")
    return notes


def _notebook_problem(path: Path) -> str | None:
    """Why ``path`` cannot be graded as a notebook, or None."""
    import nbformat

    data = path.read_bytes()
    if not data.strip():
        return f"{path.name} is empty"
    if len(data) > _MAX_NOTEBOOK_BYTES:
        return f"{path.name} is too large for a notebook ({len(data) / 2**20:.0f} MiB)"
    try:
        nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{path.name} is not a valid notebook: {reason}"
    return None


def _sanitize(workspace: Path, course: Path, config, assignment: str, student: str, notebook: str):
    """The notebook nbgrader will grade: the submission through the course's sanitize preprocessors
    (the same ones ``nbgrader autograde`` runs again when it does the bookkeeping)."""
    import nbformat
    from nbgrader.converters import Autograde

    path = workspace / "submitted" / student / assignment / f"{notebook}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    resources = {"nbgrader": {"student": student, "assignment": assignment, "notebook": notebook,
                              "db_url": f"sqlite:///{workspace / 'gradebook.db'}"},
                 "metadata": {"path": str(path.parent)}}
    classes = config.Autograde.sanitize_preprocessors if "sanitize_preprocessors" in config.Autograde \
        else Autograde.sanitize_preprocessors.default_value
    for cls in classes:
        preprocessor = cls(config=config)
        if getattr(preprocessor, "enabled", True) is False:
            continue
        nb, resources = preprocessor.preprocess(nb, resources)
    return nb, resources.get("cs_course", {}).get("restored", [])


def _execution_settings(config, limits: dict | None) -> dict:
    from cs_utils.autograde import SandboxedExecute

    settings = dataclasses.asdict(SandboxedExecute(config=config).settings())
    settings.update({k: v for k, v in (limits or {}).items() if v is not None})
    return settings


def _task(workspace: Path, course: Path, config, assignment: str, student: str, settings: dict):
    """(task for a worker, notes, error): everything the sandbox needs, as plain data."""
    import nbformat

    folder = workspace / "submitted" / student / assignment
    notes = _normalise_names(folder, _notebook_names(workspace, assignment))
    notebooks, files = {}, {}
    for name in _notebook_names(workspace, assignment):
        path = folder / f"{name}.ipynb"
        if not path.is_file():
            notes.append(f"{name}.ipynb was not handed in: it scores 0")
            continue
        problem = _notebook_problem(path)
        if problem:
            return None, notes, problem
        try:
            nb, restored = _sanitize(workspace, course, config, assignment, student, name)
        except Exception as exc:
            return None, notes, f"{name}.ipynb could not be prepared for grading: {type(exc).__name__}: {exc}"
        notes += restored
        notebooks[name] = nbformat.writes(nb)
    # files the student handed in next to the notebooks, and the assignment's own data files
    for base in (folder, workspace / SOURCE / assignment):
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            rel = path.relative_to(base).as_posix()
            if path.suffix == ".ipynb" or rel == "timestamp.txt" or ".ipynb_checkpoints" in rel or path.stat().st_size > 20 * 2**20:
                continue
            import base64

            files[rel] = base64.b64encode(path.read_bytes()).decode()
    task = {"student": student, "assignment": assignment, "notebooks": notebooks, "files": files, "settings": settings}
    return task, notes, None


def _execution_notes(reports: dict) -> list[str]:
    notes = []
    for name, report in reports.items():
        for index, messages in sorted(report.get("cells", {}).items(), key=lambda kv: int(kv[0])):
            for message in messages:
                notes.append(f"{name} cell {index}: {message}")
        for event in report.get("tampering", []):
            notes.append(f"{name}: before cell {event['before_cell']} the grader put back what student code had "
                         f"changed: {', '.join(event['restored'][:5])}")
        if report.get("restarts"):
            notes.append(f"{name}: {report['restarts']} fresh kernel(s) after the kernel died")
    return notes


def _bookkeep(workspace: Path, course: Path, assignment: str, student: str, outcome: dict | None,
              notes: list[str]) -> GradeResult:
    """nbgrader autograde with the executed notebooks copied in: scores, gradebook, autograded files;
    then the marker that says this submission is done."""
    import nbformat

    import warnings

    # SQLAlchemy warns about nbgrader's session handling on every submission; harmless.
    warnings.filterwarnings("ignore", message=".*not in session.*")
    result = GradeResult(student, assignment, ok=False, notes=list(notes))
    failures = [f"{name}: {report['error']}" for name, report in (outcome or {}).get("reports", {}).items()
                if report.get("error")]
    if failures:  # the notebook did not run: no score at all is better than a wrong one
        result.error = "the grader could not run " + "; ".join(failures)[:400]
        return result
    executed = workspace / _EXECUTED
    target = executed / student / assignment
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name, text in (outcome or {}).get("notebooks", {}).items():
        (target / f"{name}.ipynb").write_text(text)
    result.notes += _execution_notes((outcome or {}).get("reports", {}))
    from cs_utils.autograde import ReplayExecute, SandboxedExecute

    config = _load_config(course)
    steps = list(config.Autograde.autograde_preprocessors) if "autograde_preprocessors" in config.Autograde else []
    steps = [ReplayExecute if step is SandboxedExecute else step for step in steps]
    if ReplayExecute not in steps:
        raise CourseError("nbgrader_config.py: c.Autograde.autograde_preprocessors must contain SandboxedExecute")
    api = nbgrader_api(workspace, course=course, **{"Autograde.autograde_preprocessors": steps,
                                                    "ReplayExecute.executed_directory": str(executed)})
    for attempt in range(4):
        outcome_nb = api.autograde(assignment, student, force=True, create=True)
        text = (outcome_nb.get("error") or "") + (outcome_nb.get("log") or "")
        if outcome_nb.get("success") or "database is locked" not in text:
            break
        time.sleep(0.5 * (attempt + 1))  # another cs-course process holds the SQLite gradebook
    shutil.rmtree(target, ignore_errors=True)
    if not outcome_nb.get("success"):
        lines = [ln for ln in (outcome_nb.get("log") or "").splitlines() if ln.startswith(("[ERROR]", "[CRITICAL]"))]
        error = (outcome_nb.get("error") or "").strip().splitlines()
        result.error = "nbgrader autograde: " + (lines[0] if lines else (error[-1] if error else "failed"))[:400]
        return result
    score, max_score = _scores(workspace, course, assignment).get(student, (None, None))
    result.ok, result.score, result.max_score = True, score, max_score
    graded = workspace / "autograded" / student / assignment
    marker = {"submission": _submission_digest(workspace / "submitted" / student / assignment),
              "score": score, "max_score": max_score, "graded_at": time.strftime("%Y-%m-%d %H:%M:%S"),
              "notes": result.notes}
    tmp = graded / (GRADED_MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=1))
    os.replace(tmp, graded / GRADED_MARKER)
    return result


def _worker_init() -> None:
    """Each grading worker dies with the process that started it (and its kernels die with it)."""
    from cs_utils.sandbox import _set_parent_death_signal

    _set_parent_death_signal()


def _submissions(workspace: Path, assignment: str, students: Sequence[str] | None) -> list[str]:
    root = workspace / "submitted"
    found = sorted(p.parent.name for p in root.glob(f"*/{assignment}") if p.is_dir()) if root.is_dir() else []
    if students:
        missing = sorted(set(students) - set(found))
        if missing:
            raise CourseError(f"no submission of {assignment} from: {', '.join(missing)}")
        found = [s for s in found if s in set(students)]
    return found


def _resolve_assignments(workspace: Path, course: Path, assignment: str | None) -> list[str]:
    if assignment:
        return [assignment]
    submitted = workspace / "submitted"
    names = sorted({p.name for p in submitted.glob("*/*") if p.is_dir()}) if submitted.is_dir() else []
    names = [n for n in names if (course / SOURCE / n).is_dir()]
    if not names:
        raise CourseError(f"nothing submitted in {submitted} for any assignment of {course / SOURCE}")
    return names


def _make_executor(jobs: int, dask: str | None):
    """(executor, closer): a local process pool, or a Dask cluster's executor."""
    if dask:
        from distributed import Client

        client = Client(dask, set_as_default=False)
        return client.get_executor(pure=False, retries=1), client.close
    pool = cf.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_worker_init)
    return pool, lambda: pool.shutdown(wait=True, cancel_futures=True)


def grade(
    workspace: str | os.PathLike,
    assignment: str | None = None,
    *,
    jobs: int = 1,
    force: bool = False,
    students: Sequence[str] | None = None,
    course: str | os.PathLike | None = None,
    progress: bool = True,
    executor: cf.Executor | None = None,
    dask: str | None = None,
    limits: dict | None = None,
) -> list[GradeResult]:
    """Autograde every submission in ``workspace``: ``jobs`` at a time, each in its own sandboxed kernel.

    This process prepares each submission (nbgrader's sanitize step, with the
    cells put back in the release's order) and does the bookkeeping (nbgrader
    autograde with the executed outputs, then a marker); the notebooks run in
    worker processes (``jobs`` of them), or on a Dask cluster (``dask``: the
    scheduler's address), or in any ``executor`` given; workers need the course
    package installed, not the workspace. ``limits`` overrides the sandbox's
    settings (``timeout``, ``submission_timeout``, ``memory_mb``, ``cpu_seconds``,
    ...; see :class:`cs_utils.autograde.ExecutionSettings`).

    A submission whose marker matches its files is skipped unless ``force``,
    so a run that was killed picks up where it stopped: nothing is graded
    twice and nothing graded is lost. A submission that cannot be graded is
    reported in its result (``error``) and never stops the others.
    """
    from tqdm import tqdm

    course = find_course_root(course)
    workspace = _init_workspace(workspace)
    _ensure_tools_on_path()
    config = _load_config(course)
    config.CourseDirectory.root = str(workspace)
    settings = _execution_settings(config, limits)
    results: list[GradeResult] = []
    own_executor = executor is None
    pool, closer = (executor, lambda: None) if executor is not None else (None, None)
    try:
        for name in _resolve_assignments(workspace, course, assignment):
            prepare_workspace(workspace, name, course=course)
            todo = []
            for student in _submissions(workspace, name, students):
                if not force and _is_graded(workspace, name, student):
                    score = _scores(workspace, course, name).get(student, (None, None))
                    results.append(GradeResult(student, name, True, score[0], score[1], skipped=True))
                else:
                    todo.append(student)
            if not todo:
                continue
            if pool is None:
                pool, closer = _make_executor(jobs, dask)
            bar = tqdm(total=len(todo), desc=f"grading {name}", unit="submission", disable=not progress, file=sys.stderr)
            pending: list[tuple[dict, list[str], float]] = []
            futures: dict[cf.Future, tuple[dict, list[str], float]] = {}
            for student in todo:
                started = time.perf_counter()
                task, notes, error = _task(workspace, course, config, name, student, settings)
                if error:
                    results.append(GradeResult(student, name, False, error=error, notes=notes,
                                               seconds=time.perf_counter() - started))
                    bar.update()
                elif not task["notebooks"]:  # nothing to run: nbgrader scores the missing notebooks 0
                    result = _bookkeep(workspace, course, name, student, None, notes)
                    result.seconds = time.perf_counter() - started
                    results.append(result)
                    bar.update()
                else:
                    pending.append((task, notes, started))
                    _submit(pool, futures, pending.pop())  # workers start while the rest is prepared
            attempts: dict[str, int] = {}
            while futures:
                broken = False
                current, futures = futures, {}
                for future in cf.as_completed(current):
                    task, notes, started = current[future]
                    student = task["student"]
                    try:
                        outcome = future.result()
                    except Exception as exc:  # the worker itself died (a dead kernel is in the outcome)
                        attempts[student] = attempts.get(student, 0) + 1
                        broken = broken or isinstance(exc, cf.BrokenExecutor)
                        if attempts[student] < 2 and (own_executor or not isinstance(exc, cf.BrokenExecutor)):
                            pending.append((task, notes, started))
                            continue
                        results.append(GradeResult(student, name, False, error=f"grading worker failed: "
                                                   f"{type(exc).__name__}: {exc}"[:400], notes=notes,
                                                   seconds=time.perf_counter() - started))
                        bar.update()
                        continue
                    try:
                        result = _bookkeep(workspace, course, name, student, outcome, notes)
                    except Exception as exc:
                        result = GradeResult(student, name, False, error=f"{type(exc).__name__}: {exc}"[:400],
                                             notes=notes)
                    result.seconds = outcome.get("seconds", time.perf_counter() - started)
                    result.worker = outcome.get("worker", "")
                    result.cpu_seconds = outcome.get("cpu_seconds", 0.0)
                    results.append(result)
                    bar.update()
                if broken and own_executor and pending:  # a worker process died: start a fresh pool
                    closer()
                    pool, closer = _make_executor(jobs, dask)
                for item in pending:
                    _submit(pool, futures, item)
                pending = []
            bar.close()
    finally:
        if own_executor and closer is not None:
            closer()
    return sorted(results, key=lambda r: (r.assignment, r.student))


def _submit(pool, futures: dict, item: tuple) -> None:
    try:
        futures[pool.submit(_run_task, item[0])] = item
    except (cf.BrokenExecutor, RuntimeError):
        futures[_failed_future()] = item


def _failed_future() -> cf.Future:
    future: cf.Future = cf.Future()
    future.set_exception(cf.BrokenExecutor("the worker pool is broken"))
    return future


def _run_task(task: dict) -> dict:
    """What a worker runs (a module-level function, so that process pools and Dask can send it)."""
    from cs_utils.autograde import execute_submission

    return execute_submission(task)


def _summary(results: Sequence[GradeResult], elapsed: float) -> str:
    graded = [r for r in results if r.ok and not r.skipped]
    skipped = [r for r in results if r.skipped]
    failed = [r for r in results if not r.ok]
    lines = [f"{'student':<24} {'assignment':<20} {'score':>13}  {'time':>6}  status"]
    for r in results:
        score = f"{r.score:g} / {r.max_score:g}" if r.score is not None else "-"
        status = "skipped (up to date)" if r.skipped else ("graded" if r.ok else f"FAILED: {r.error}")
        lines.append(f"{r.student:<24} {r.assignment:<20} {score:>13}  {r.seconds:5.1f}s  {status}")
        lines += [f"    - {note}" for note in r.notes]
    lines.append(
        f"{len(graded)} graded, {len(skipped)} up to date, {len(failed)} failed, in {elapsed:.1f} s"
        + (f" ({sum(r.seconds for r in graded) / len(graded):.1f} s per submission)" if graded else "")
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------
# feedback and report
# --------------------------------------------------------------------------


def feedback(
    workspace: str | os.PathLike,
    assignment: str | None = None,
    *,
    course: str | os.PathLike | None = None,
) -> list[Path]:
    """HTML feedback for every autograded submission (``feedback/<student>/<assignment>/*.html``).

    The course configuration removes the hidden tests from the feedback.
    """
    course = find_course_root(course)
    workspace = Path(workspace).resolve()
    api = nbgrader_api(workspace, course=course)
    written = []
    names = [assignment] if assignment else sorted({p.name for p in (workspace / "autograded").glob("*/*") if p.is_dir()})
    for name in names:
        _check(api.generate_feedback(name, force=True), f"nbgrader generate_feedback {name}")
        written += sorted((workspace / "feedback").glob(f"*/{name}/*.html"))
    return written


class ShortenHiddenTracebacks(NbGraderPreprocessor):
    """Feedback preprocessor: a failed hidden test shows its error message, not its code.

    ``ClearHiddenTests`` removes the hidden tests from a cell's source, but the
    traceback of a failed check quotes the failing lines. For every test cell
    that holds hidden tests, this keeps only ``ExceptionName: message`` of each
    error. It must run before ``ClearHiddenTests`` (it finds those cells by
    their markers); see ``nbgrader_config.py``.
    """

    def preprocess_cell(self, cell, resources, index):
        nbgrader = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and nbgrader.get("grade") and re.search(r"BEGIN\s+HIDDEN\s+TESTS", cell.source):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources


class FailedTestsSummary(NbGraderPreprocessor):
    """Feedback preprocessor: a cell at the top listing every test that lost points and why.

    For each test cell that scored less than its points: its name, the points,
    and the first line of its error (the check's message; a hidden test's
    code is never quoted). Then the grader's own notes: answer or scratch
    cells it did not run and why, a kernel that died. Runs after ``GetGrades``
    (which puts each cell's score into its metadata) and before
    ``ClearHiddenTests``.
    """

    def preprocess(self, nb, resources):
        import html

        import nbformat

        lost, notes = [], []
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
                score, points = meta.get("score"), meta.get("points")
                if score is not None and points is not None and float(score) < float(points):
                    why = (f"{errors[0].get('ename', 'Error')}: {str(errors[0].get('evalue', '')).strip().splitlines()[0] if str(errors[0].get('evalue', '')).strip() else ''}"
                           if errors else "its output was not accepted (something was printed to stderr)")
                    lost.append(f"- **{html.escape(meta.get('grade_id', '?'))}**: {float(score):g} of {float(points):g} "
                                f"points. {html.escape(why[:300])}")
            elif cell.cell_type == "code":
                for error in errors:
                    if error.get("ename") in ("NotRunByGrader", "KernelDiedError"):
                        where = meta.get("grade_id") or "one of your own cells"
                        first = str(error.get("evalue", "")).strip().splitlines()
                        detail = " ".join(line.strip() for line in first[:3])
                        notes.append(f"- **{html.escape(where)}**: {html.escape(detail[:300])}")
        if lost or notes:
            text = ["## What the grader found", ""]
            text += lost or ["Every test passed."]
            if notes:
                text += ["", "Notes from the grader:", ""] + notes
            summary = nbformat.v4.new_markdown_cell("\n".join(text))
            summary.metadata["nbgrader"] = {}
            nb.cells.insert(0, summary)
        return nb, resources


_NOT_GRADED = "NOT GRADED (run cs-course grade and read its report)"


def _question(grade_id: str) -> str:
    """Cells ``q1_corr1d-visible`` and ``q1_corr1d-hidden`` belong to question ``q1_corr1d``."""
    return grade_id.rsplit("-", 1)[0]


def report(
    workspace: str | os.PathLike,
    assignment: str | None = None,
    *,
    out: str | os.PathLike | None = None,
    course: str | os.PathLike | None = None,
) -> dict[str, Path]:
    """Write the grades of an assignment from the gradebook.

    - ``grades.csv``: one row per student: status, score, max_score, percent and the points of every
      test cell (a submission nbgrader could not grade is listed as NOT GRADED, without a score);
    - ``question_means.csv``: per question (visible and hidden cells together): max, mean, mean percent;
    - ``grades.png``: a histogram of the scores.

    Files go to ``out`` (default ``WORKSPACE/reports/<assignment>``); returns their paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    from nbgrader.api import Gradebook

    course = find_course_root(course)
    workspace = Path(workspace).resolve()
    names = _resolve_assignments(workspace, course, assignment)
    if len(names) > 1 and out is not None:
        raise CourseError("give one ASSIGNMENT when --out is used")
    name = names[0]
    out = Path(out) if out else workspace / "reports" / name
    out.mkdir(parents=True, exist_ok=True)
    _ensure_tools_on_path()
    course_id = _load_config(course).CourseDirectory.course_id
    rows, ungraded, cells = [], [], {}
    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}", course_id) as gb:
        assignment_row = gb.find_assignment(name)
        for notebook in assignment_row.notebooks:
            for cell in notebook.grade_cells:
                cells[f"{notebook.name}:{cell.name}" if len(assignment_row.notebooks) > 1 else cell.name] = float(cell.max_score)
        for submission in sorted(gb.assignment_submissions(name), key=lambda s: s.student_id):
            row = {
                "student": submission.student_id,
                "assignment": name,
                "status": "graded",
                "score": round(float(submission.score), 4),
                "max_score": float(submission.max_score),
            }
            row["percent"] = round(100 * row["score"] / row["max_score"], 2) if row["max_score"] else 0.0
            if not (workspace / "autograded" / submission.student_id / name / GRADED_MARKER).is_file():
                # registered, but not graded to the end: no score is better than a false 0
                row.update(status=_NOT_GRADED, score="", percent="")
                ungraded.append(row)
                continue
            for nb_submission in submission.notebooks:
                for grade_row in nb_submission.grades:
                    key = f"{nb_submission.name}:{grade_row.name}" if len(assignment_row.notebooks) > 1 else grade_row.name
                    if key in cells:
                        row[key] = round(float(grade_row.score), 4)
            rows.append(row)
    # handed in, but never in the gradebook (a file that is not a notebook never reaches nbgrader)
    listed = {row["student"] for row in rows + ungraded}
    for student in _submissions(workspace, name, None):
        if student not in listed:
            ungraded.append({"student": student, "assignment": name, "status": _NOT_GRADED, "score": "",
                             "max_score": "", "percent": ""})
    columns = ["student", "assignment", "status", "score", "max_score", "percent"] + list(cells)
    paths = {"grades": out / "grades.csv", "questions": out / "question_means.csv", "histogram": out / "grades.png"}
    with open(paths["grades"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(sorted(rows + ungraded, key=lambda r: r["student"]))
    questions: dict[str, list[str]] = {}
    for key in cells:
        questions.setdefault(_question(key), []).append(key)
    with open(paths["questions"], "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["question", "max_points", "mean", "mean_percent", "submissions"])
        for question, keys in questions.items():
            top = sum(cells[k] for k in keys)
            totals = [sum(row.get(k, 0.0) for k in keys) for row in rows]
            mean = sum(totals) / len(totals) if totals else 0.0
            writer.writerow([question, f"{top:g}", f"{mean:.3f}", f"{100 * mean / top if top else 0:.1f}", len(totals)])
    fig, ax = plt.subplots(figsize=(7, 4))
    scores = [row["score"] for row in rows]
    top = float(rows[0]["max_score"]) if rows else 100.0
    ax.hist(scores, bins=[i * top / 20 for i in range(21)], color="#3b75af", edgecolor="white")
    ax.set_xlim(0, top)
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel(f"score (out of {top:g})")
    ax.set_ylabel("students")
    mean = sum(scores) / len(scores) if scores else 0.0
    title = f"{name}: {len(scores)} graded, mean {mean:.1f}"
    ax.set_title(title + (f" ({len(ungraded)} not graded)" if ungraded else ""))
    fig.tight_layout()
    fig.savefig(paths["histogram"], dpi=120)
    plt.close(fig)
    return paths


# --------------------------------------------------------------------------
# bundle
# --------------------------------------------------------------------------

_STUDENT_README = """\
# CNN course: student copy

Lectures (`lectures/`), assignments (`assignments/`) and the helper package `cs_utils`.

```bash
make lab     # first time: creates .venv and installs everything (CPU only), then opens JupyterLab
```

Work in the notebooks of `assignments/<assignment>/`. Each answer cell says `YOUR CODE HERE`;
the test cell after it checks your answer and explains what is wrong when it is. More (hidden)
tests run when your work is graded. Submit the notebook file itself, not a copy or an export.
"""

_STUDENT_MAKEFILE = """\
# Student copy of the course: `make lab` sets everything up the first time and opens JupyterLab.
PYTHON ?= python3
BIN    := $(CURDIR)/.venv/bin

.PHONY: setup lab
setup: .venv/.installed
.venv/.installed: pyproject.toml
\t$(PYTHON) -m venv .venv
\t$(BIN)/python -m pip install -q --upgrade pip "setuptools>=69" wheel "Cython>=3.0"
\t$(BIN)/python -m pip install -q "torch==2.13.0"
\t$(BIN)/python -m pip install -q --no-build-isolation -e .
\ttouch .venv/.installed

lab: setup
\t$(BIN)/jupyter lab --notebook-dir=$(CURDIR)
"""

# Never copied into the student bundle.
_INSTRUCTOR_ONLY = {"course.py", "autograde.py", "sandbox.py"}  # the grader, not the students' tools


def bundle(out: str | os.PathLike, *, course: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Write the student-facing copy of the course to ``out`` and scan it for leaks.

    Contents: ``lectures/`` (if present), ``assignments/``, ``cs_utils/`` without
    the instructor commands, the package metadata without the ``cs-course``
    script, a student README and Makefile. No ``solutions/``, no tests, no
    nbgrader configuration. Raises :class:`CourseError` if the scan finds anything.
    """
    course = find_course_root(course)
    out = Path(out).resolve()
    if out.exists():
        if not force and any(out.iterdir()):
            raise CourseError(f"{out} exists and is not empty (use --force to replace it)")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    litter = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.so", "_fastops.c", "*.html")
    for folder in ("lectures", RELEASE):
        if (course / folder).is_dir():
            shutil.copytree(course / folder, out / folder, ignore=litter)
    shutil.copytree(
        course / "cs_utils", out / "cs_utils",
        ignore=lambda d, names: set(litter(d, names)) | (_INSTRUCTOR_ONLY & set(names)),
    )
    for name in ("setup.py", "environment.yml", "LICENSE"):
        if (course / name).is_file():
            shutil.copy2(course / name, out / name)
    pyproject = (course / "pyproject.toml").read_text()
    pyproject = re.sub(r"\n\[project\.scripts\]\n(?:[^\[\n].*\n|\n)*", "\n", pyproject)
    (out / "pyproject.toml").write_text(pyproject)
    (out / "README.md").write_text(_STUDENT_README)
    (out / "Makefile").write_text(_STUDENT_MAKEFILE)
    problems = [str(leak) for leak in scan_for_leaks([out], course=course)]
    for forbidden in (SOURCE, "tests", CONFIG_FILE, "gradebook.db", "cs_utils/course.py"):
        if (out / forbidden).exists():
            problems.append(f"{out / forbidden}: instructor file in the student bundle")
    if problems:
        raise CourseError("the student bundle leaks:\n  " + "\n  ".join(problems))
    return out


# --------------------------------------------------------------------------
# submissions made from the solution (demo, tests)
# --------------------------------------------------------------------------


def strip_markers(source: str) -> str:
    """A cell's source without nbgrader's region marker lines (BEGIN/END SOLUTION, HIDDEN TESTS,
    MARK SCHEME), everything between them kept: a solution cell as a student who wrote that
    solution would submit it. Lines are joined with ``\\n`` (no trailing newline)."""
    return "\n".join(line for line in source.splitlines() if not (_REGION_BEGIN.match(line) or _REGION_END.match(line)))


def fill_release(
    release_nb: str | os.PathLike,
    source_nb: str | os.PathLike,
    *,
    answers: dict[str, str] | None = None,
    blank: Iterable[str] = (),
):
    """A student submission: the released notebook with its answer cells filled in.

    Each answer cell (nbgrader solution cell) gets the source notebook's
    solution with the region markers removed, or ``answers[grade_id]`` when
    given; cells whose grade_id is in ``blank`` stay as released. Returns an
    ``nbformat`` notebook.
    """
    import nbformat

    nb = nbformat.read(release_nb, as_version=4)
    src = nbformat.read(source_nb, as_version=4)
    solutions = {
        c.metadata["nbgrader"]["grade_id"]: strip_markers(c.source)
        for c in src.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    answers = dict(answers or {})
    blank = set(blank)
    unknown = (set(answers) | blank) - set(solutions)
    if unknown:
        raise CourseError(f"no answer cells {sorted(unknown)} in {source_nb} (have {sorted(solutions)})")
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id not in blank:
            cell.source = answers.get(grade_id, solutions[grade_id])
    return nb


def demo(
    workspace: str | os.PathLike,
    *,
    jobs: int = 2,
    course: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The whole pipeline on sample submissions: for every assignment, a zip with one student who
    submits the solution, one who submits the untouched release and one who answers only the first
    half; collect, grade, feedback, report."""
    import nbformat

    course = find_course_root(course)
    workspace = Path(workspace).resolve()
    if workspace.exists() and any(workspace.iterdir()):
        if not (workspace / WORKSPACE_MARKER).exists():
            raise CourseError(f"{workspace} is not empty and not a cs-course workspace; pick another folder")
        shutil.rmtree(workspace)
    workspace = _init_workspace(workspace)
    inbox = workspace / "inbox.zip"
    names = _assignments_in(course / RELEASE)
    with zipfile.ZipFile(inbox, "w") as zf:
        for name in names:
            for release_nb in sorted((course / RELEASE / name).glob("*.ipynb")):
                source_nb = course / SOURCE / name / release_nb.name
                answer_ids = [
                    c.metadata["nbgrader"]["grade_id"]
                    for c in nbformat.read(source_nb, as_version=4).cells
                    if c.metadata.get("nbgrader", {}).get("solution")
                ]
                full = fill_release(release_nb, source_nb)
                half = fill_release(release_nb, source_nb, blank=answer_ids[len(answer_ids) // 2:])
                zf.writestr(f"demo-solution/{name}/{release_nb.name}", nbformat.writes(full))
                zf.writestr(f"demo-half/{name}/{release_nb.name}", nbformat.writes(half))
                zf.writestr(f"demo-untouched/{name}/{release_nb.name}", release_nb.read_text())
    started = time.perf_counter()
    collected = collect(workspace, inbox, course=course)
    results = grade(workspace, jobs=jobs, course=course)
    elapsed = time.perf_counter() - started
    pages = feedback(workspace, course=course)
    reports = {name: report(workspace, name, course=course) for name in names}
    return {"collected": collected, "results": results, "elapsed": elapsed, "feedback": pages, "reports": reports}


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------


def _print_gradebook(workspace: Path, course: Path) -> None:
    for name in _resolve_assignments(workspace, course, None):
        print(f"\ngradebook of {name} ({workspace / 'gradebook.db'}):")
        for student, (score, top) in sorted(_scores(workspace, course, name).items()):
            print(f"  {student:<24} {score:7.2f} / {top:g}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cs-course", description="Instructor commands of the CNN course (nbgrader).")
    parser.add_argument("--course", help="course directory (default: the one holding nbgrader_config.py)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="regenerate assignments/ from solutions/ and scan it for leaks")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--check", action="store_true", help="change nothing; fail if assignments/ is out of date or leaks")

    p = sub.add_parser("scan", help="scan files or folders for solutions and hidden tests")
    p.add_argument("paths", nargs="+")

    p = sub.add_parser("collect", help="place submissions (folder or zip of <student>/<assignment>/*.ipynb)")
    p.add_argument("workspace")
    p.add_argument("source")

    p = sub.add_parser("grade", help="autograde every submission in a workspace")
    p.add_argument("workspace")
    p.add_argument("assignment", nargs="?")
    p.add_argument("-j", "--jobs", type=int, default=1, help="submissions graded in parallel")
    p.add_argument("--force", action="store_true", help="regrade submissions that are already graded")
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--dask", metavar="ADDRESS", help="run the notebooks on this Dask scheduler (tcp://host:8786)")
    p.add_argument("--timeout", type=int, help="seconds per cell (default: c.Execute.timeout)")
    p.add_argument("--budget", type=int, help="seconds per submission (default: c.SandboxedExecute.submission_timeout)")
    p.add_argument("--memory", type=int, help="MB of memory per grading kernel (default: c.SandboxedExecute.memory_mb)")
    p.add_argument("--cpu", type=int, help="CPU seconds per grading kernel (default: c.SandboxedExecute.cpu_seconds)")

    p = sub.add_parser("feedback", help="HTML feedback for every graded submission")
    p.add_argument("workspace")
    p.add_argument("assignment", nargs="?")

    p = sub.add_parser("report", help="grades CSV, per-question means and a histogram")
    p.add_argument("workspace")
    p.add_argument("assignment", nargs="?")
    p.add_argument("--out")

    p = sub.add_parser("bundle", help="write the student-facing copy of the course")
    p.add_argument("out")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")

    p = sub.add_parser("demo", help="collect, grade, feedback and report on sample submissions")
    p.add_argument("workspace")
    p.add_argument("-j", "--jobs", type=int, default=2)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        course = find_course_root(args.course)
        if args.command == "release":
            problems = release(args.assignments or None, course=course, check=args.check)
            for problem in problems:
                print(problem)
            if problems:
                print(f"release: {len(problems)} problem(s)")
                return 1
            print("release: " + ("assignments/ is in sync with solutions/" if args.check else "assignments/ regenerated")
                  + "; leak scan clean")
            return 0
        if args.command == "scan":
            leaks = scan_for_leaks(args.paths, course=course)
            for leak in leaks:
                print(leak)
            print(f"scan: {len(leaks)} leak(s)" if leaks else "scan: clean")
            return 1 if leaks else 0
        if args.command == "collect":
            result = collect(args.workspace, args.source, course=course)
            print(result)
            return 1 if result.problems else 0
        if args.command == "grade":
            started = time.perf_counter()
            limits = {"timeout": args.timeout, "submission_timeout": args.budget, "memory_mb": args.memory,
                      "cpu_seconds": args.cpu}
            results = grade(args.workspace, args.assignment, jobs=args.jobs, force=args.force,
                            students=args.student, course=course, progress=not args.no_progress,
                            dask=args.dask, limits=limits)
            print(_summary(results, time.perf_counter() - started))
            return 0 if all(r.ok for r in results) else 1
        if args.command == "feedback":
            pages = feedback(args.workspace, args.assignment, course=course)
            print(f"feedback: {len(pages)} page(s) under {Path(args.workspace).resolve() / 'feedback'}")
            return 0
        if args.command == "report":
            paths = report(args.workspace, args.assignment, out=args.out, course=course)
            print(Path(paths["questions"]).read_text())
            for label, path in paths.items():
                print(f"{label}: {path}")
            return 0
        if args.command == "bundle":
            out = bundle(args.out, course=course, force=args.force)
            print(f"bundle: student copy written to {out}; leak scan clean")
            return 0
        if args.command == "demo":
            outcome = demo(args.workspace, jobs=args.jobs, course=course)
            print(outcome["collected"])
            print(_summary(outcome["results"], outcome["elapsed"]))
            print(f"feedback: {len(outcome['feedback'])} page(s)")
            for name, paths in outcome["reports"].items():
                print(f"report of {name}: {paths['grades']}, {paths['histogram']}")
            _print_gradebook(Path(args.workspace).resolve(), course)
            return 0 if all(r.ok for r in outcome["results"]) else 1
    except CourseError as exc:
        print(f"cs-course {args.command}: {exc}", file=sys.stderr)
        return 2
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
