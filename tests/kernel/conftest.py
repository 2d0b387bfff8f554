"""Fixtures for kernel tests: plugins installed as real distributions on a path.

A fixture writes a module and a ``.dist-info`` directory (METADATA and
entry_points.txt) into a temporary directory; importlib.metadata finds it there
exactly as it finds a pip-installed distribution.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PluginFactory = Callable[..., Path]

#: What a plugin for this kernel's plugin API declares in its metadata.
FITTING = "omerta-node>=1,<2"


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginFactory]:
    """Return ``add(name, source, requires=FITTING)``: installs a one-module plugin ``name`` on a fresh path.

    ``requires`` is its ``Requires-Dist`` line (``None``: none).
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    added: list[str] = []

    def add(name: str, source: str, requires: str | None = FITTING) -> Path:
        module = f"omerta_test_{name}"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        dist = site / f"omerta_test_{name}-1.2.3.dist-info"
        dist.mkdir()
        metadata = f"Metadata-Version: 2.1\nName: omerta-test-{name}\nVersion: 1.2.3\n"
        if requires is not None:
            metadata += f"Requires-Dist: {requires}\n"
        (dist / "METADATA").write_text(metadata)
        (dist / "entry_points.txt").write_text(f"[omerta]\n{name} = {module}\n")
        added.append(module)
        return site

    yield add
    for module in added:
        sys.modules.pop(module, None)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m omerta_core ARGS`` as a user would run ``omerta``."""
    return subprocess.run(
        [sys.executable, "-m", "omerta_core", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's own configuration or state."""
    for name in list(os.environ):
        if name.startswith("OMERTA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


LIFECYCLE_PLUGIN = """
from pathlib import Path
from omerta_core import hookimpl

@hookimpl
def omerta_config_defaults():
    return {"greeting": "hello"}

@hookimpl
def omerta_node_started(node):
    greeting = node.plugin_config("{name}")["greeting"]
    (node.state_dir / "{name}-started").write_text(greeting)

@hookimpl
def omerta_node_stopping(node):
    (node.state_dir / "{name}-stopping").write_text("bye")

@hookimpl
def omerta_control_methods():
    return {"{name}.echo": lambda node, params: {"echo": params.get("text"), "peer": node.peer_id}}

@hookimpl
def omerta_node_status(node):
    return {"alive": True}
"""

UNUSABLE_PLUGIN = """
from omerta_core import hookimpl
from omerta_core.interfaces.hypervisor import Hypervisor
from omerta_core.records import ServiceRecord

@hookimpl
def omerta_services():
    return [ServiceRecord(name="{name}", provides=Hypervisor, factory=lambda node: None,
                             description="needs another OS", platforms=("plan9",))]
"""


def lifecycle_plugin(name: str) -> str:
    """Source of a plugin that records its lifecycle hooks in the state directory."""
    return LIFECYCLE_PLUGIN.replace("{name}", name)


def unusable_plugin(name: str) -> str:
    """Source of a plugin whose only backend is for another platform."""
    return UNUSABLE_PLUGIN.replace("{name}", name)
