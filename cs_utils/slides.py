"""Lecture notebooks as self-contained reveal.js slide decks (``make slides``).

Each deck is ONE html file that works offline: reveal.js, its theme and fonts, the speaker-notes
plugin and MathJax 3 (SVG output, no web fonts to fetch) are inlined, and the figures are already
base64 images inside the notebook. Nothing is fetched from a CDN, so a lecturer can present from
a USB stick on a machine without Jupyter or network.

The JavaScript and CSS come from the npm packages ``reveal.js`` and ``mathjax``, installed by the
Makefile into ``build/slides-vendor/node_modules`` (``--assets``). Notebooks are executed first
(outputs are not stored in git), then exported with nbconvert's reveal template, whose head and
script blocks are replaced here by inlined assets.

    python -m cs_utils.slides --assets build/slides-vendor/node_modules --out slides lectures/*.ipynb
"""

from __future__ import annotations

import argparse
import base64
import copy
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ASSETS = Path("build") / "slides-vendor" / "node_modules"

# The notebook cells are laid out on a 16:9 canvas that reveal.js scales to the screen.
DECK_WIDTH = 1280
DECK_HEIGHT = 720

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "Interactive demo: open this lecture in JupyterLab (make lab) and run the cell to use its controls."
# The default text form of a widget, e.g. "VBox(children=(IntSlider(value=3), ...))": not worth showing.
_WIDGET_REPR = re.compile(r"^[A-Z]\w*\(")


@dataclass(frozen=True)
class DeckAssets:
    """The inlined text of the front-end files a deck needs."""

    reveal_js: str
    notes_js: str
    reveal_css: str
    theme_css: str
    mathjax_js: str
    versions: str

    @classmethod
    def load(cls, node_modules: str | Path = DEFAULT_ASSETS, theme: str = "white") -> "DeckAssets":
        """Read reveal.js and MathJax from an npm ``node_modules`` folder.

        Raises FileNotFoundError naming the missing file and the command that installs it.
        """
        root = Path(node_modules)
        files = {
            "reveal_js": root / "reveal.js" / "dist" / "reveal.js",
            "notes_js": root / "reveal.js" / "plugin" / "notes" / "notes.js",
            "reveal_css": root / "reveal.js" / "dist" / "reveal.css",
            "theme_css": root / "reveal.js" / "dist" / "theme" / f"{theme}.css",
            # The -full component bundles every TeX extension, so nothing is loaded on demand,
            # and SVG output needs no font files.
            "mathjax_js": root / "mathjax" / "es5" / "tex-svg-full.js",
        }
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"slide assets not found: {', '.join(missing)}; run `make slides` (it installs "
                f"reveal.js and MathJax with npm into {DEFAULT_ASSETS}) or pass --assets DIR"
            )
        text = {k: p.read_text(encoding="utf-8") for k, p in files.items()}
        text["theme_css"] = inline_css_urls(text["theme_css"], files["theme_css"].parent)
        versions = ", ".join(
            f"{name} {_package_version(root / name)}" for name in ("reveal.js", "mathjax")
        )
        return cls(**text, versions=versions)


def _package_version(package_dir: Path) -> str:
    import json

    try:
        return json.loads((package_dir / "package.json").read_text())["version"]
    except (OSError, KeyError, ValueError):
        return "?"


_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}", re.S)
_IMPORT = re.compile(r"@import\s+url\(\s*['\"]?([^'\")]+)['\"]?\s*\)\s*;?")
_URL = re.compile(r"url\(\s*['\"]?([^'\")]+?)['\"]?\s*\)")
_MIME = {".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".png": "image/png",
         ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".gif": "image/gif"}


def _data_uri(path: Path) -> str:
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _is_remote(url: str) -> bool:
    return url.startswith(("http:", "https:", "//"))


def inline_css_urls(css: str, base: Path) -> str:
    """Resolve local ``@import`` and ``url(...)`` references of a stylesheet into the text.

    Fonts are reduced to their WOFF file (every current browser reads it), so each face is
    embedded once rather than in four formats. Remote imports are dropped: a deck must not reach
    the network.
    """

    def repl_import(m: re.Match) -> str:
        target = m.group(1)
        if _is_remote(target):
            return ""
        path = (base / target).resolve()
        return inline_css_urls(path.read_text(encoding="utf-8"), path.parent)

    css = _IMPORT.sub(repl_import, css)

    def repl_font_face(m: re.Match) -> str:
        block = m.group(0)
        woff = [u for u in _URL.findall(block) if u.split("?")[0].endswith(".woff")]
        if not woff:
            return block
        body = re.sub(r"\bsrc\s*:[^;]*;", "", block[block.index("{") + 1 : -1])
        src = _data_uri(base / woff[0].split("?")[0])
        return "@font-face {" + body.strip() + f"\n  src: url({src}) format('woff');\n}}"

    css = _FONT_FACE.sub(repl_font_face, css)

    def repl_url(m: re.Match) -> str:
        url = m.group(1)
        if url.startswith("data:") or url.startswith("#"):
            return m.group(0)
        if _is_remote(url):
            return "url()"
        path = base / url.split("?")[0].split("#")[0]
        return f"url({_data_uri(path)})" if path.is_file() else "url()"

    return _URL.sub(repl_url, css)


def _script_safe(js: str) -> str:
    """Text that can sit inside <script>...</script> without ending it early."""
    return js.replace("</script", "<\\/script")


# nbconvert's reveal template (index.html.j2 of template "reveal") with its head and scripts
# replaced: no jQuery, require.js, Mermaid or CDN links; everything comes from `resources.deck`.
DECK_TEMPLATE = r"""
{%- extends 'index.html.j2' -%}

{%- block header -%}
<!DOCTYPE html>
<html lang="{{ resources.language_code }}">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1.0" />
<meta name="generator" content="cs_utils.slides ({{ resources.deck.versions }})" />
{% set nb_title = nb.metadata.get('title', resources['metadata']['name']) | escape_html_keep_quotes %}
<title>{{ nb_title }}</title>
<style type="text/css">{{ resources.deck.reveal_css }}</style>
{% for css in resources.inlining.css -%}
<style type="text/css">{{ css }}</style>
{% endfor %}
{{ resources.include_css("static/index.css") }}
{{ resources.include_css("static/theme-light.css") }}
{{ resources.include_css("static/custom_reveal.css") }}
<style type="text/css">{{ resources.deck.theme_css }}</style>
<style type="text/css">
a.anchor-link { display: none; }
.highlight { margin: 0.4em; }
.jp-Notebook { padding: 0; }
:root {
  --jp-ui-font-size1: 22px;
  --jp-content-font-size1: 24px;
  --jp-code-font-size: 19px;
  --jp-cell-prompt-width: 0px;
}
.reveal .slides { text-align: left; }
.reveal .jp-InputPrompt, .reveal .jp-OutputPrompt { display: none; }
.reveal .jp-RenderedMarkdown h1 { font-size: 2.0em; }
.reveal .jp-RenderedMarkdown h2 { font-size: 1.5em; }
.reveal .jp-RenderedMarkdown h3 { font-size: 1.2em; }
.reveal .jp-OutputArea-output img { max-height: {{ resources.deck.height - 160 }}px; width: auto; }
.reveal .jp-OutputArea-output svg { max-width: 100%; }
.reveal mjx-container[display="true"] { margin: 0.4em 0; }
.cnn-widget-note { font-style: italic; color: #555; font-size: 0.8em; }
</style>
<script>
window.MathJax = {
  tex: {
    inlineMath: [['$', '$'], ['\\(', '\\)']],
    displayMath: [['$$', '$$'], ['\\[', '\\]']],
    processEscapes: true,
    processEnvironments: true,
    tags: 'ams'
  },
  svg: { fontCache: 'global' },
  options: { ignoreHtmlClass: 'tex2jax_ignore', processHtmlClass: 'tex2jax_process' },
  startup: { typeset: true }
};
</script>
<script>{{ resources.deck.mathjax_js }}</script>
</head>
{%- endblock header -%}

{% block footer_js %}
<script>{{ resources.deck.reveal_js }}</script>
<script>{{ resources.deck.notes_js }}</script>
<script>
Reveal.initialize({
  controls: true,
  progress: true,
  history: true,
  hash: true,
  slideNumber: 'c/t',
  transition: 'slide',
  width: {{ resources.deck.width }},
  height: {{ resources.deck.height }},
  margin: 0.04,
  plugins: [RevealNotes]
});
// A slide taller than the canvas: shrink its figures (to no less than 60 % of their size, or
// 240 px) so that it fits, and if that is not enough, let it scroll instead of being cut off.
// Measured when the slide shows; data-cnn-fit records the outcome: fits, shrunk or scrolls;
// data-cnn-height the slide's height before fitting (canvas px) and data-cnn-scale the
// smallest factor a figure was shrunk by (1 when none was).
function cnnFit(slide) {
  if (!slide || slide.dataset.cnnFit) return;
  slide.dataset.cnnFit = 'pending';
  var limit = {{ resources.deck.height }} * 0.96;
  var imgs = Array.prototype.slice.call(slide.querySelectorAll('.jp-OutputArea-output img'));
  Promise.all(imgs.map(function (img) { return img.decode().catch(function () {}); })).then(function () {
    var height = slide.scrollHeight;
    var over = height - limit;
    var outcome = over > 0 ? 'shrunk' : 'fits';
    var scale = 1;
    if (over > 0 && imgs.length) {
      var before = imgs.map(function (img) { return img.offsetHeight; });
      imgs.forEach(function (img, i) {
        var h = before[i];
        img.style.maxHeight = Math.max(240, 0.6 * h, h - over / imgs.length) + 'px';
        img.style.width = 'auto';
      });
      imgs.forEach(function (img, i) {
        if (before[i] > 0) scale = Math.min(scale, img.offsetHeight / before[i]);
      });
    }
    if (slide.scrollHeight > limit) {
      slide.style.height = limit + 'px';
      slide.style.overflowY = 'auto';
      outcome = 'scrolls';
    }
    slide.dataset.cnnHeight = String(Math.round(height));
    slide.dataset.cnnScale = scale.toFixed(3);
    slide.dataset.cnnFit = outcome;
    Reveal.layout();
  });
}
Reveal.on('ready', function (event) { cnnFit(event.currentSlide); });
Reveal.on('slidechanged', function (event) { cnnFit(event.currentSlide); });
</script>
{% endblock footer_js %}
"""


def prepare_for_deck(nb):
    """A copy of an executed notebook ready for a kernel-less deck.

    Widget views cannot run without a kernel: each is replaced by a short note (the widget's own
    text form when it wrote one for this purpose, a generic note otherwise) while the lecture's
    static figure stays; the saved widget state is dropped so that the exporter does not link a
    widget renderer from a CDN.
    """
    import html

    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_MIME in data:
                text = str(data.get("text/plain", "")).strip()
                note = text if text and not _WIDGET_REPR.match(text) else WIDGET_NOTE
                out["data"] = {"text/html": f'<p class="cnn-widget-note">{html.escape(note)}</p>'}
    return nb


def execute_notebook(nb, cwd: Path, timeout: int = 600):
    """Run every cell (in ``cwd``, as JupyterLab would) and return the executed notebook."""
    from nbclient import NotebookClient

    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def render_deck(nb, assets: DeckAssets, name: str = "deck", width: int = DECK_WIDTH, height: int = DECK_HEIGHT) -> str:
    """HTML text of the reveal.js deck of an (executed) notebook."""
    from jinja2 import DictLoader
    from nbconvert.exporters import SlidesExporter

    exporter = SlidesExporter(
        extra_loaders=[DictLoader({"cnn_deck.html.j2": DECK_TEMPLATE})],
        template_file="cnn_deck.html.j2",
    )
    deck = {
        "reveal_js": _script_safe(assets.reveal_js),
        "notes_js": _script_safe(assets.notes_js),
        "mathjax_js": _script_safe(assets.mathjax_js),
        "reveal_css": assets.reveal_css,
        "theme_css": assets.theme_css,
        "versions": assets.versions,
        "width": width,
        "height": height,
    }
    html, _ = exporter.from_notebook_node(prepare_for_deck(nb), resources={"deck": deck, "metadata": {"name": name}})
    return html


def deck_path(notebook: Path, out_dir: Path) -> Path:
    """``lectures/01_x.ipynb`` -> ``<out_dir>/01_x.slides.html``."""
    return Path(out_dir) / f"{Path(notebook).stem}.slides.html"


def export_deck(notebook: str | Path, out_dir: str | Path, assets: DeckAssets, execute: bool = True, timeout: int = 600) -> Path:
    """Execute ``notebook`` (unless ``execute=False``) and write its deck into ``out_dir``."""
    import nbformat

    notebook = Path(notebook)
    nb = nbformat.read(notebook, as_version=4)
    if execute:
        nb = execute_notebook(nb, notebook.parent.resolve(), timeout=timeout)
    out = deck_path(notebook, Path(out_dir))
    out.parent.mkdir(parents=True, exist_ok=True)
    html = render_deck(nb, assets, name=notebook.stem)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)  # a half-written deck never replaces a good one
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cs_utils.slides",
        description="Export lecture notebooks as self-contained, offline reveal.js slide decks.",
    )
    parser.add_argument("notebooks", nargs="+", type=Path, help="notebooks to export")
    parser.add_argument("--out", type=Path, default=Path("slides"), help="output folder (default: slides)")
    parser.add_argument("--assets", type=Path, default=DEFAULT_ASSETS,
                        help=f"npm node_modules with reveal.js and mathjax (default: {DEFAULT_ASSETS})")
    parser.add_argument("--no-execute", action="store_true", help="export the stored outputs as they are")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default: 600)")
    args = parser.parse_args(argv)

    try:
        assets = DeckAssets.load(args.assets)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for nb in args.notebooks:
        start = time.perf_counter()
        out = export_deck(nb, args.out, assets, execute=not args.no_execute, timeout=args.timeout)
        size = out.stat().st_size / 2**20
        print(f"{out}  ({size:.1f} MiB, {time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
