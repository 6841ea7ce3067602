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

.PHONY: setup ext lab test bench bench-grading clean browser slides test-slides

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
		CS_UTILS_REQUIRE_CYTHON=1 $(BIN)/python setup.py -q build_ext --inplace || exit 1; \
	fi; \
	$(BIN)/python -c "import cs_utils.im2col as m; print('cs_utils Cython extension built:', m.HAVE_CYTHON)"

# JupyterLab on the course root with the course's settings (jupyter/): the file browser opens on
# lectures/, no news or update pop-ups. A personal ~/.jupyter still takes precedence.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)
lab: setup
	JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		$(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) $(ROOT_FLAG)

test: setup browser test-slides
	$(BIN)/python -m pytest

# The decks the offline-deck tests open. A failure here must not stop the test run: without npm
# those tests skip and say why; a lecture that fails to export fails its own tests with the error.
test-slides: setup
	@$(MAKE) --no-print-directory slides || echo "WARNING: make slides failed; the slide-deck tests will say why"

bench: setup
	$(BIN)/python bench/conv.py

bench-grading: setup        ## grade 100 submissions on 1, 2 and 2 Dask workers (tens of minutes on 2 cores)
	$(BIN)/python bench/grading.py

clean:
	rm -rf build cs_utils/_fastops.c cs_utils/_fastops*.so .pytest_cache

# Debian's Chromium for the browser tests (tests/test_browser*.py drive it headless with
# Playwright; `playwright install` is never used). Installed with apt-get when missing and we
# are root; anywhere else the browser tests skip and say why.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then \
		echo "browser tests use $$($(CHROMIUM) --version 2>/dev/null)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the browser tests"; \
		export DEBIAN_FRONTEND=noninteractive; \
		( apt-get -o DPkg::Lock::Timeout=600 update -qq && \
		  apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null ) \
		|| echo "WARNING: could not install chromium: the browser tests will skip"; \
	else \
		echo "WARNING: $(CHROMIUM) missing and apt-get needs root: the browser tests will skip"; \
	fi

# Every lecture as one self-contained reveal.js deck, slides/NN_name.slides.html, that works
# offline: reveal.js and MathJax come from npm (pinned, fetched once into build/), and are inlined
# into each deck by cs_utils.slides, which executes the lecture first. `make -j2 slides` runs two.
SLIDE_ASSETS      := build/slides-vendor
REVEAL_JS_VERSION := 5.2.1
MATHJAX_VERSION   := 3.2.2
LECTURES          := $(wildcard lectures/[0-9]*.ipynb)
DECKS             := $(patsubst lectures/%.ipynb,slides/%.slides.html,$(LECTURES))

slides: $(DECKS)
	@echo "slides/: $(words $(DECKS)) decks; open one in any browser (no network needed)"

$(SLIDE_ASSETS)/.installed:
	@command -v npm >/dev/null || { echo "npm is needed once, to fetch reveal.js and MathJax"; exit 1; }
	npm install --prefix $(SLIDE_ASSETS) --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
		reveal.js@$(REVEAL_JS_VERSION) mathjax@$(MATHJAX_VERSION)
	touch $@

slides/%.slides.html: lectures/%.ipynb $(wildcard cs_utils/*.py) $(SLIDE_ASSETS)/.installed | setup
	$(BIN)/python -m cs_utils.slides --assets $(SLIDE_ASSETS)/node_modules --out slides $<

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

# Run every lecture notebook top to bottom (prints each one's execution time), and strip
# outputs from the lecture notebooks before committing them.
.PHONY: lectures strip-lectures
lectures: setup
	$(BIN)/python -m pytest -q -s tests/test_lectures.py

strip-lectures: $(STAMP)
	$(BIN)/python -m nbstripout --keep-id lectures/*.ipynb
