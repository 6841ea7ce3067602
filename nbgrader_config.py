"""nbgrader configuration of the CNN course.

The course root is this repository: assignments are written in ``solutions/``
(nbgrader's *source* step) and released into ``assignments/``. Graded work
never lives here: ``cs-course`` (cs_utils/course.py) points nbgrader at a
workspace directory (submitted/, autograded/, feedback/, gradebook.db) and
loads this file for everything else, so running ``nbgrader`` by hand in a
workspace with ``--config`` pointing here gives the same behaviour.
"""

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    ClearOutput,
    DeduplicateIds,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)

from cs_utils.autograde import RestoreCellOrder, SandboxedExecute
from cs_utils.course import FailedTestsSummary, ShortenHiddenTracebacks

c = get_config()  # noqa: F821 (provided by traitlets when this file is loaded)

c.CourseDirectory.course_id = "cnn-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".DS_Store"]

# The stub that replaces a solution region in the student's copy.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograding (see cs_utils/autograde.py). Before anything runs, the submission
# is rebuilt on the release's sequence of cells (RestoreCellOrder: deleted,
# reordered, retyped or duplicated cells, removed or renamed grade_ids), then
# nbgrader restores the hidden tests, points and checksums (OverwriteCells, with
# missing grade cells added back).
c.Autograde.sanitize_preprocessors = [
    ClearOutput,
    RestoreCellOrder,
    DeduplicateIds,
    OverwriteKernelspec,
    OverwriteCells,
    CheckCellMetadata,
]
c.OverwriteCells.add_missing_cells = True
# The notebook runs in a sandboxed kernel instead of nbgrader's plain one
# (SandboxedExecute; `cs-course grade` runs it in worker processes or on a
# Dask cluster and copies the outputs back); the rest is nbgrader's scoring.
c.Autograde.autograde_preprocessors = [
    SandboxedExecute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
# A cell that runs longer than this (seconds) is interrupted (and its kernel
# killed if it ignores the interrupt); it scores 0 and the rest still runs.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]
# Limits of one submission's kernel: wall-clock time for the whole notebook,
# memory (address space), CPU time, size of any file it writes. The kernel runs
# as this user when grading as root and that user can run the interpreter.
c.SandboxedExecute.submission_timeout = 600
c.SandboxedExecute.memory_mb = 3072
c.SandboxedExecute.cpu_seconds = 900
c.SandboxedExecute.file_mb = 64
c.SandboxedExecute.user = "nobody"
# nbgrader scores a test cell 0 when anything reaches stderr. Library warnings
# (a NumPy RuntimeWarning, a torch UserWarning) must not cost a correct answer
# its points, so stderr output that is a Python warning is dropped before scoring.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"\w*Warning: "
# A runaway print loop cannot flood the autograded notebook.
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100

# Feedback returned to students opens with a list of the tests that failed and
# why (FailedTestsSummary), then shows their answers, the visible tests and the
# messages of failed checks, never the code of the hidden tests (neither in the
# cell nor quoted by the traceback of a failed hidden check).
c.GenerateFeedback.preprocessors = [
    GetGrades,
    FailedTestsSummary,
    ShortenHiddenTracebacks,
    ClearHiddenTests,
    CSSHTMLHeaderPreprocessor,
]
c.ClearHiddenTests.enforce_metadata = True
