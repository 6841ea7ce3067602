"""The lecture notebooks: slide metadata on every cell, stored without outputs, and each one runs.

Execution uses nbclient with the kernel of this environment; a cell that raises fails the
test, and so does anything printed to stderr (a warning or a traceback shows in red on a
slide). The execution time of each lecture is recorded (``record_property``) and printed
with ``-s``; it is not asserted (speed is measured, not tested).
"""

import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LECTURES = ROOT / "lectures"
EXPECTED = [
    "01_convolution_1d",
    "02_filters_2d",
    "03_output_size",
    "04_building_layers",
    "05_backprop_pooling",
    "06_case_studies",
]
SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", "-"}


def _notebooks():
    return sorted(LECTURES.glob("[0-9][0-9]_*.ipynb"))


def _read(path):
    return nbformat.read(path, as_version=4)


def test_the_six_lectures_exist():
    assert [p.stem for p in _notebooks()] == EXPECTED


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_notebook_is_valid_and_every_cell_has_slide_metadata(path):
    nb = _read(path)
    nbformat.validate(nb)
    missing = [i for i, c in enumerate(nb.cells)
               if c.metadata.get("slideshow", {}).get("slide_type") not in SLIDE_TYPES]
    assert not missing, f"{path.name}: cells {missing} have no valid slideshow.slide_type"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].metadata["slideshow"]["slide_type"] == "slide"
    assert sum(c.metadata["slideshow"]["slide_type"] == "slide" for c in nb.cells) >= 5


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = _read(path)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; strip them (nbstripout)"
    assert "widgets" not in nb.metadata, f"{path.name}: saved widget state in the metadata; strip it"


def test_the_metadata_check_can_fail(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# x")])
    bad = tmp_path / "99_bad.ipynb"
    nbformat.write(nb, bad)
    with pytest.raises(AssertionError):
        test_notebook_is_valid_and_every_cell_has_slide_metadata(bad)


def _commented_out_markdown(nb):
    """Markdown cells whose every line starts with '#': prose pasted from a .py source with its
    comment marks left in, which renders as a stack of headings ('# # Title', '# * item')."""
    bad = []
    for i, c in enumerate(nb.cells):
        lines = [l for l in c.source.splitlines() if l.strip()]
        if c.cell_type == "markdown" and len(lines) > 1 and all(l.startswith("#") for l in lines):
            bad.append(i)
    return bad


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_markdown_is_not_commented_out(path):
    bad = _commented_out_markdown(_read(path))
    assert not bad, f"{path.name}: markdown cells {bad} have '#' before every line"


def test_the_commented_markdown_check_can_fail():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# # Title\n#\n# * item")])
    assert _commented_out_markdown(nb) == [0]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title\n\nSome prose.")])
    assert _commented_out_markdown(nb) == []


def _errors(nb):
    problems = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
            elif out.get("output_type") == "stream" and out.get("name") == "stderr":
                # a warning or a traceback: shown in red on the slide, whatever it says
                first = out.get("text", "").strip().splitlines()[:1]
                problems.append(f"cell {i}: output on stderr: {first[0] if first else ''}")
    return problems


def test_the_error_check_can_fail():
    """A lecture whose cell raises, or prints a warning, is reported with the cell number."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import warnings\nwarnings.warn('deprecated thing')"),
        nbformat.v4.new_code_cell("print('fine')"),
        nbformat.v4.new_code_cell("1 / 0"),
    ])
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True).execute()
    problems = _errors(nb)
    assert len(problems) == 2, problems
    assert problems[0].startswith("cell 0: output on stderr") and "deprecated thing" in problems[0]
    assert problems[1] == "cell 2: ZeroDivisionError: division by zero"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_lecture_runs_top_to_bottom(path, record_property):
    from nbclient import NotebookClient

    nb = _read(path)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(LECTURES)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    record_property("seconds", round(seconds, 1))
    print(f"{path.stem}: {seconds:.1f} s")
    assert not _errors(nb), _errors(nb)
    images = sum("image/png" in out.get("data", {}) for c in nb.cells for out in c.get("outputs", []))
    assert images >= 3, f"{path.name}: expected its figures to render, found {images} images"
