"""cs_utils.slides without a browser: asset inlining, widget fallbacks, no CDN in the decks.

The browser half (reveal.js starts offline, math typeset, every slide reachable) is in
tests/test_browser.py::test_deck_works_offline.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat
import pytest

from cs_utils import slides

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "build" / "slides-vendor" / "node_modules"
have_assets = pytest.mark.skipif(
    not (ASSETS / "reveal.js").is_dir() or not (ASSETS / "mathjax").is_dir(),
    reason=f"reveal.js/MathJax not installed in {ASSETS}: `make slides` installs them with npm",
)


def test_inline_css_resolves_imports_and_keeps_only_woff(tmp_path):
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    woff = bytes(range(40))
    (fonts / "face.woff").write_bytes(woff)
    (fonts / "face.ttf").write_bytes(b"not wanted")
    (fonts / "face.css").write_text(
        "@font-face {\n  font-family: 'Face';\n  src: url('./face.eot');\n"
        "  src: url('./face.eot?#iefix') format('embedded-opentype'),\n"
        "       url('./face.woff') format('woff'), url('./face.ttf') format('truetype');\n"
        "  font-weight: normal;\n}\n"
    )
    (tmp_path / "dot.png").write_bytes(b"\x89PNG fake")
    css = (
        "@import url(./fonts/face.css);\n"
        "@import url(https://fonts.example.org/css?family=Lato);\n"
        "h1 { background: url(dot.png); }\n"
        "h2 { background: url(data:image/png;base64,AAAA); }\n"
        "h3 { background: url(https://cdn.example.org/x.png); }\n"
    )
    out = slides.inline_css_urls(css, tmp_path)

    assert "@import" not in out and "example.org" not in out
    assert "font-family: 'Face'" in out and "font-weight: normal" in out
    uris = re.findall(r"url\((data:[^)]*)\)", out)
    decoded = {u.split(";")[0]: base64.b64decode(u.split(",", 1)[1]) for u in uris if ";base64," in u}
    assert decoded["data:font/woff"] == woff  # the font file itself, byte for byte
    assert decoded["data:image/png"] in (b"\x89PNG fake", base64.b64decode("AAAA"))
    assert "face.eot" not in out and "face.ttf" not in out and b"not wanted" not in decoded.values()
    assert out.count("src:") == 1


def test_missing_assets_say_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"reveal\.js.*make slides"):
        slides.DeckAssets.load(tmp_path)


def _widget_notebook():
    nb = nbformat.v4.new_notebook()
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.cells = [
        nbformat.v4.new_code_cell("demo()", outputs=[
            nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}),
            nbformat.v4.new_output("display_data", data={
                "application/vnd.jupyter.widget-view+json": view,
                "text/plain": "VBox(children=(IntSlider(value=3), Output()))"}),
        ]),
        nbformat.v4.new_code_cell("custom()", outputs=[
            nbformat.v4.new_output("display_data", data={
                "application/vnd.jupyter.widget-view+json": view,
                "text/plain": "[interactive demo: the static figure above shows the same <thing>]"}),
        ]),
    ]
    return nb


def test_prepare_for_deck_replaces_widgets_and_keeps_figures():
    nb = _widget_notebook()
    ready = slides.prepare_for_deck(nb)

    assert "widgets" not in ready.metadata
    generic, custom = ready.cells[0].outputs[1].data, ready.cells[1].outputs[0].data
    assert set(generic) == {"text/html"} and slides.WIDGET_NOTE in generic["text/html"]
    assert "VBox" not in generic["text/html"]
    # A widget that describes itself for kernel-less readers keeps its own words, escaped.
    assert "static figure above" in custom["text/html"] and "&lt;thing&gt;" in custom["text/html"]
    assert ready.cells[0].outputs[0].data["image/png"] == "iVBORw0KGgo="
    # The original is untouched.
    assert "widgets" in nb.metadata
    assert "application/vnd.jupyter.widget-view+json" in nb.cells[0].outputs[1].data


def test_deck_path():
    assert slides.deck_path(Path("lectures/01_convolution_1d.ipynb"), Path("slides")) == Path(
        "slides/01_convolution_1d.slides.html")


@have_assets
def test_deck_is_self_contained(tmp_path):
    """No <script src>, <link href> or CSS url() pointing anywhere: everything is inside the file."""
    nb = _widget_notebook()
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(
        "# Output size\n\n$W_2 = (W_1 - F + 2P)/S + 1$ and $$\\sum_k x_k$$.",
        metadata={"slideshow": {"slide_type": "slide"}}))
    nb.cells.append(nbformat.v4.new_markdown_cell("Notes", metadata={"slideshow": {"slide_type": "notes"}}))
    assets = slides.DeckAssets.load(ASSETS)
    html = slides.render_deck(nb, assets, name="t")

    assert not re.findall(r"<script[^>]*\bsrc=", html)
    assert not re.findall(r"<link[^>]*\bhref=", html)
    assert not re.findall(r"url\(\s*['\"]?(?:https?:)?//", html)
    assert not re.findall(r"(?:unpkg\.com|cdnjs|jsdelivr\.net/npm/(?:reveal|mathjax|@jupyter))", html.split("<script>")[0])
    # reveal.js and MathJax are inlined (their text is in the file), and initialised.
    assert assets.reveal_js[:200] in html and "Reveal.initialize(" in html
    assert "window.MathJax" in html and len(html) > len(assets.mathjax_js)
    # The TeX reaches the page untouched for MathJax; the dollars are not eaten by markdown.
    assert "$W_2 = (W_1 - F + 2P)/S + 1$" in html and "$$\\sum_k x_k$$" in html
    assert '<aside class="notes">' in html
    assert "cnn-widget-note" in html and "jupyter-widgets/html-manager" not in html
    assert "</script" not in assets.mathjax_js or "<\\/script" in html


@have_assets
def test_cli_writes_decks_and_reports_missing_assets(tmp_path, capsys):
    src = tmp_path / "01_tiny.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny\n\n$a^2$", metadata={"slideshow": {"slide_type": "slide"}}),
                nbformat.v4.new_code_cell("print(6 * 7)", metadata={"slideshow": {"slide_type": "slide"}})]
    nbformat.write(nb, src)
    out = tmp_path / "decks"
    assert slides.main([str(src), "--out", str(out), "--assets", str(ASSETS)]) == 0
    deck = out / "01_tiny.slides.html"
    text = deck.read_text()
    assert "42" in text  # executed before export: the output of the cell is in the deck
    assert str(deck) in capsys.readouterr().out

    assert slides.main([str(src), "--out", str(out), "--assets", str(tmp_path / "nowhere")]) == 2
    assert "make slides" in capsys.readouterr().err
