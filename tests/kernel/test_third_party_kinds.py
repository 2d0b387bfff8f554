"""Third parties add a service kind with no kernel change, and a conflicting control method stops the node.

Three plugins are written as real projects into a temporary directory and pip-installed (no-deps, so
nothing but them changes): ``greeter`` declares the kind ``Greeter`` and provides it; ``doorbell``
needs a ``Greeter`` and calls it; ``copycat`` serves a control method ``greeter`` already serves.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from omerta_core.control import client

from .conftest import run_cli
from .test_node import running_node

GREETER = """
from typing import Protocol

from omerta_core import hookimpl
from omerta_core.records import ServiceRecord


class Greeter(Protocol):
    def greet(self, name: str) -> str: ...


class HelloGreeter:
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def status(self) -> dict[str, str]:
        return {"greets": "hello"}
    def greet(self, name: str) -> str:
        return f"hello, {name}"


@hookimpl
def omerta_services():
    return [ServiceRecord(name="hello", provides=Greeter, factory=lambda node: HelloGreeter(), description="greets")]


@hookimpl
def omerta_control_methods():
    return {"greeter.greet": lambda node, params: node.service(Greeter).greet(params["name"])}
"""

DOORBELL = """
from typing import Protocol

from omerta_core import hookimpl
from omerta_core.records import Need, ServiceRecord
from omerta_tp_greeter.plugin import Greeter


class Doorbell(Protocol):
    def ring(self) -> str: ...


class Bell:
    def __init__(self, node) -> None:
        self.node = node
        self.greeting = ""
    async def start(self) -> None:
        self.greeting = self.node.service(Greeter).greet("visitor")
    async def stop(self) -> None: ...
    def status(self) -> dict[str, str]:
        return {"greeting": self.greeting}
    def ring(self) -> str:
        return self.greeting


@hookimpl
def omerta_services():
    return [ServiceRecord(name="bell", provides=Doorbell, needs=(Need(Greeter, install="omerta-tp-greeter"),),
                          factory=Bell, description="rings with a greeting")]
"""

COPYCAT = """
from omerta_core import hookimpl


@hookimpl
def omerta_control_methods():
    return {"greeter.greet": lambda node, params: "me too"}
"""


def write_project(root: Path, name: str, source: str) -> Path:
    project = root / f"omerta-tp-{name}"
    package = project / f"omerta_tp_{name}"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(textwrap.dedent(source))
    (project / "pyproject.toml").write_text(
        textwrap.dedent(f"""
        [build-system]
        requires = ["hatchling>=1.24"]
        build-backend = "hatchling.build"

        [project]
        name = "omerta-tp-{name}"
        version = "1.0.0"
        dependencies = ["omerta-node>=1,<2"]

        [project.entry-points.omerta]
        {name} = "omerta_tp_{name}.plugin"

        [tool.hatch.build.targets.wheel]
        packages = ["omerta_tp_{name}"]
        """)
    )
    return project


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True, timeout=300)


@pytest.fixture(scope="module")
def third_parties(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    root = tmp_path_factory.mktemp("third-parties")
    projects = [
        write_project(root, n, s) for n, s in [("greeter", GREETER), ("doorbell", DOORBELL), ("copycat", COPYCAT)]
    ]
    pip("install", "--no-deps", *map(str, projects))
    try:
        yield
    finally:
        pip("uninstall", "-y", "omerta-tp-greeter", "omerta-tp-doorbell", "omerta-tp-copycat")


@pytest.mark.slow
def test_a_new_kind_is_provided_needed_and_called_with_no_kernel_change(third_parties: None, tmp_path: Path) -> None:
    with running_node(tmp_path / "state", "--plugins", "doorbell") as state:
        status = client.call(state, "status")
        assert status["pulled_in"] == {"greeter": "doorbell"}
        assert status["services"]["doorbell"]["bell"] == {"greeting": "hello, visitor"}
        assert status["services"]["greeter"]["hello"] == {"greets": "hello"}
        assert client.call(state, "greeter.greet", {"name": "ada"}) == "hello, ada"


@pytest.mark.slow
def test_plugins_lists_the_new_kind_as_provided_and_needed(third_parties: None) -> None:
    result = run_cli("plugins", "--plugins", "greeter,doorbell", "--json")
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert listed["greeter"]["provides"] == ["greeter"]
    assert listed["doorbell"]["needs"] == ["a greeter"]


@pytest.mark.slow
def test_a_control_method_served_twice_stops_the_node_naming_both(third_parties: None, tmp_path: Path) -> None:
    result = run_cli("node", "--plugins", "greeter,copycat", "--state-dir", str(tmp_path / "state"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: control method 'greeter.greet' is registered by both greeter and copycat"
    )
