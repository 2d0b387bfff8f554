"""A third party's plugin, made from the template and pip-installed, works with no kernel change."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from omerta_core.control import client

from .conftest import run_cli
from .test_node import running_node

TEMPLATE = Path(__file__).resolve().parents[2] / "contrib" / "plugin-template"
NAME = "thirdparty"


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True, timeout=300)


@pytest.fixture(scope="module")
def installed_third_party(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("rendered")
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out), extra_context={"name": NAME}))
    pip("install", "--no-deps", str(project))
    try:
        yield project
    finally:
        pip("uninstall", "-y", f"omerta-{NAME}")


def test_listed_with_its_hooks(installed_third_party: Path) -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert listed[NAME]["distribution"] == f"omerta-{NAME}"
    assert listed[NAME]["version"] == "0.1.0"
    assert listed[NAME]["hooks"] == ["omerta_cli_commands", "omerta_node_started", "omerta_node_status"]


def test_its_command_and_node_hooks_run(installed_third_party: Path, tmp_path: Path) -> None:
    assert run_cli(NAME).stdout == f"hello from {NAME}\n"
    with running_node(tmp_path / "state", "--plugins", NAME) as state:
        assert client.call(state, "status")["plugin_status"] == {NAME: {"hello": NAME}}


def test_the_templates_own_test_passes(installed_third_party: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(installed_third_party / "tests")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
