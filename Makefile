# The course in two commands: `make lab` (start JupyterLab) and `make test`.
# Everything is installed into .venv from nothing; no step needs a GPU.

PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed
EXT    := cs_utils/_fastops.pyx

# nbgrader runs `alembic` by name: the venv's bin/ must be on PATH.
export PATH := $(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup ext lab test bench bench-grading clean

setup: $(STAMP) ext

# torch is pinned (torch==2.13.0, a CPU build here); installing it first keeps
# pip from ever resolving a newer release with its CUDA packages.
$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=77" wheel "Cython>=3.0"
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q --no-build-isolation -e ".[dev]"
	touch $(STAMP)

# (Re)build the Cython extension in place whenever the .pyx is newer than the .so.
ext: $(STAMP)
	@if [ ! -f $(EXT) ]; then echo "no $(EXT) yet"; exit 0; fi; \
	if [ ! -f "$$(ls cs_utils/_fastops*.so 2>/dev/null | head -n1)" ] || [ $(EXT) -nt "$$(ls cs_utils/_fastops*.so | head -n1)" ]; then \
		CS_UTILS_REQUIRE_CYTHON=1 $(BIN)/python setup.py -q build_ext --inplace; \
	fi; \
	$(BIN)/python -c "import cs_utils.im2col as m; print('cs_utils Cython extension built:', m.HAVE_CYTHON)"

lab: setup
	$(BIN)/jupyter lab --notebook-dir=$(CURDIR)

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/conv.py

bench-grading: setup        ## grade 100 submissions on 1, 2 and 2 Dask workers (tens of minutes on 2 cores)
	$(BIN)/python bench/grading.py

clean:
	rm -rf build cs_utils/_fastops.c cs_utils/_fastops*.so .pytest_cache

# ----------------------------------------------------------------------------
# Grading with nbgrader through `cs-course` (cs_utils/course.py). Graded work
# (submitted/, autograded/, feedback/, gradebook.db) lives in a workspace
# outside the repository, e.g.  make grade WORKSPACE=~/grading/term1 JOBS=2
# ----------------------------------------------------------------------------
WORKSPACE      ?=
ASSIGNMENT     ?=
JOBS           ?= 2
DEMO_WORKSPACE ?= $(or $(TMPDIR),/tmp)/cnn-course-grade-demo
BUNDLE         ?= $(CURDIR)/build/student-bundle

.PHONY: release release-check grade feedback report bundle grade-demo need-workspace

release: setup              ## regenerate assignments/ from solutions/, then prove nothing leaked
	$(BIN)/cs-course release

release-check: setup        ## fail if assignments/ is out of step with solutions/ or leaks
	$(BIN)/cs-course release --check

need-workspace:
	@test -n "$(WORKSPACE)" || { echo "usage: make $(MAKECMDGOALS) WORKSPACE=DIR [ASSIGNMENT=a1_convolution] [JOBS=2]"; exit 2; }

grade: setup need-workspace  ## autograde every submission of WORKSPACE, JOBS at a time
	$(BIN)/cs-course grade $(WORKSPACE) $(ASSIGNMENT) -j $(JOBS)

feedback: setup need-workspace
	$(BIN)/cs-course feedback $(WORKSPACE) $(ASSIGNMENT)

report: setup need-workspace
	$(BIN)/cs-course report $(WORKSPACE) $(ASSIGNMENT)

bundle: setup               ## the student-facing copy of the course, scanned for leaks
	$(BIN)/cs-course bundle $(BUNDLE) --force

grade-demo: setup           ## collect, grade, feedback and report on sample submissions; print the gradebook
	$(BIN)/cs-course demo $(DEMO_WORKSPACE) -j $(JOBS)
