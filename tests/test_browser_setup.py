"""What `make setup` and `make lab` promise, checked without a browser.

JupyterLab 4 with the extensions the course needs, enabled and compatible, as
`jupyter labextension list` reports them under the course's configuration (jupyter/).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "jupyter"


def _jupyter(*args: str, tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(JUPYTER_CONFIG_PATH=str(CONFIG), JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_DATA_DIR=str(tmp_path / "data"))
    jupyter = Path(sys.executable).with_name("jupyter")
    proc = subprocess.run([str(jupyter), *args], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)


def test_lab_extensions_installed_and_enabled(tmp_path):
    listing = _jupyter("labextension", "list", tmp_path=tmp_path)
    assert re.search(r"JupyterLab v4\.\d+", listing), listing
    for ext in ("jupyterlab-rise", "@jupyter-widgets/jupyterlab-manager", "@jupyter/nbgrader"):
        line = next((ln for ln in listing.splitlines() if ln.strip().startswith(ext + " ")), None)
        assert line is not None, f"{ext} is not installed:\n{listing}"
        assert "enabled" in line and "OK" in line, f"{ext} is not enabled and compatible: {line.strip()}"
    # jupyterlab-rise pulls in a JupyterLab 3 MathJax extension; JupyterLab 4 has MathJax built in,
    # so the course configuration switches the old one off.
    old = next((ln for ln in listing.splitlines() if "@jupyterlab/mathjax3-extension" in ln and " v" in ln), None)
    if old is not None:
        assert "disabled" in old, old


def test_course_configuration_turns_off_news_and_opens_lectures():
    from traitlets.config.loader import PyFileConfigLoader

    # Loaded the way Jupyter loads it.
    config = PyFileConfigLoader("jupyter_server_config.py", path=str(CONFIG)).load_config()
    lab = config["LabApp"]
    assert lab["news_url"] is None
    assert lab["check_for_updates_class"].endswith("NeverCheckForUpdate")
    assert lab["default_url"] == "/lab/tree/lectures"
    settings = Path(lab["app_settings_dir"])
    overrides = json.loads((settings / "overrides.json").read_text())
    notification = overrides["@jupyterlab/apputils-extension:notification"]
    assert notification == {"fetchNews": "false", "checkForUpdates": False}
    page_config = json.loads((CONFIG / "labconfig" / "page_config.json").read_text())
    assert page_config["disabledExtensions"]["@jupyterlab/mathjax3-extension"] is True
    assert (REPO / "lectures").is_dir()
