"""nbgrader configuration of the CNN course.

The course root is this repository: assignments are written in ``solutions/``
(nbgrader's *source* step) and released into ``assignments/``. Graded work
never lives here: ``cs-course`` (cs_utils/course.py) points nbgrader at a
workspace directory (submitted/, autograded/, feedback/, gradebook.db) and
loads this file for everything else, so running ``nbgrader`` by hand in a
workspace with ``--config`` pointing here gives the same behaviour.
"""

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

from cs_utils.course import ShortenHiddenTracebacks

c = get_config()  # noqa: F821 (provided by traitlets when this file is loaded)

c.CourseDirectory.course_id = "cnn-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".DS_Store"]

# The stub that replaces a solution region in the student's copy.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograding: a cell that runs longer than this (seconds) is interrupted and
# scores 0; the rest of the notebook still runs.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
# The grading kernel's own log: ipykernel warns on every start that it listens on
# localhost TCP (its messages are still signed with the connection key); one such
# line per submission buries the grading report, so only its errors are shown.
c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]
# nbgrader scores a test cell 0 when anything reaches stderr. Library warnings
# (a NumPy RuntimeWarning, a torch UserWarning) must not cost a correct answer
# its points, so stderr output that is a Python warning is dropped before scoring.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"\w*Warning: "
# A runaway print loop cannot flood the autograded notebook.
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100

# Feedback returned to students shows their answers, the visible tests and the
# messages of failed checks, never the code of the hidden tests (neither in the
# cell nor quoted by the traceback of a failed hidden check).
c.GenerateFeedback.preprocessors = [
    GetGrades,
    ShortenHiddenTracebacks,
    ClearHiddenTests,
    CSSHTMLHeaderPreprocessor,
]
c.ClearHiddenTests.enforce_metadata = True
