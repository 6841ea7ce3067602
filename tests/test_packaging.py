"""The conda environment and pyproject.toml must list the same dependencies."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _normalise(req: str) -> tuple[str, str]:
    """Split 'Name[extra]>=1.0' into ('name', '>=1.0'), with names compared PEP 503 style."""
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", req)
    assert m, f"cannot parse requirement {req!r}"
    name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
    spec = ",".join(sorted(s.strip() for s in m.group(3).split(",") if s.strip()))
    return name, spec


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
    return dict(_normalise(r) for r in reqs)


def _environment_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    reqs = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for pip_req in dep["pip"]:
                if not pip_req.startswith("-e"):
                    reqs.update([_normalise(pip_req)])
        elif not dep.startswith(("python=", "python ")) and dep != "pip":
            # conda spells pins the same way as pip for the ones we use (>=, ==)
            reqs.update([_normalise(dep.replace("=", "==", 1) if re.match(r"^[\w-]+=[^=]", dep) else dep)])
    return reqs


def test_environment_yml_matches_pyproject():
    assert _environment_requirements() == _pyproject_requirements()


def test_torch_is_pinned():
    # A bare `torch` pulls the newest CUDA build (several GB); see DEVELOPERS.md.
    assert _pyproject_requirements()["torch"] == "==2.13.0"


def test_normalise_detects_a_difference():
    # The comparison itself must be able to fail.
    assert _normalise("Jupyterlab_Rise>=0.42") == ("jupyterlab-rise", ">=0.42")
    assert _normalise("numpy>=1.26") != _normalise("numpy>=2")
