"""Fixtures for the release checks: every distribution of this tree built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from .distributions import PROJECT_DIRS, build


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with an sdist and a wheel of every distribution in this tree."""
    out = tmp_path_factory.mktemp("dist")
    for project_dir in PROJECT_DIRS:
        build(project_dir, out)
    return out
