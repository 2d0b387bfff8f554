"""Fixtures for the release checks: every distribution of this tree built once per session."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from .distributions import PROJECT_DIRS, TEMPLATE, build


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with an sdist and a wheel of every distribution in this tree."""
    out = tmp_path_factory.mktemp("dist")
    for project_dir in PROJECT_DIRS:
        build(project_dir, out)
    return out


def render_template_plugin(name: str, out: Path, dependencies: list[str] | None = None) -> Path:
    """Render ``contrib/plugin-template`` as a third party would; optionally replace its dependencies."""
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out), extra_context={"name": name}))
    if dependencies is not None:
        pyproject = project / "pyproject.toml"
        text = pyproject.read_text()
        declared = re.search(r"^dependencies = \[.*\]$", text, re.MULTILINE)
        assert declared is not None
        pyproject.write_text(text.replace(declared[0], f"dependencies = {json.dumps(dependencies)}"))
    return project
