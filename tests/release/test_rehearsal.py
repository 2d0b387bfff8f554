"""Release rehearsal: everything uploaded to a real index on loopback, installed by name in a fresh venv.

What a stranger does after a release: ``pip install omerta-vm-kvm omerta-discovery-gossip``, then
``omerta node`` with those plugins. The kernel and the udp transport must arrive as dependencies,
resolved by name from the index; a third party's plugin made from the template goes the same way.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from omerta_core.testing import NodeProcess

from .conftest import render_template_plugin
from .distributions import build
from .package_index import PackageIndex, StrangerVenv, is_ours

#: The plugins named on the command line; the kernel adds udp, which gossip needs.
NODE_PLUGINS = "kvm,gossip"
THIRD_PARTY = "rehearsed"


@pytest.fixture(scope="module")
def index(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    """A running index with every distribution of this tree and a template-made plugin uploaded."""
    root = tmp_path_factory.mktemp("index")
    third_party = root / "third-party"
    build(render_template_plugin(THIRD_PARTY, root / "rendered"), third_party)
    with PackageIndex(root / "packages", root / "pypi-server.log") as started:
        started.upload(sorted(built.iterdir()))
        started.upload(sorted(third_party.iterdir()))
        yield started


@pytest.fixture(scope="module")
def stranger(index: PackageIndex, tmp_path_factory: pytest.TempPathFactory) -> tuple[StrangerVenv, dict[str, str]]:
    venv = StrangerVenv(tmp_path_factory.mktemp("stranger") / "venv", index)
    return venv, venv.install("omerta-vm-kvm", "omerta-discovery-gossip")


def test_the_kernel_and_udp_arrive_by_name_from_the_index(stranger: tuple[StrangerVenv, dict[str, str]]) -> None:
    venv, origins = stranger
    came = {name for name in origins if is_ours(name)}
    assert came == {"omerta-node", "omerta-vm-kvm", "omerta-discovery-gossip", "omerta-transport-udp"}
    assert all(origins[name].startswith(venv.index.url) for name in came)


def test_omerta_plugins_lists_what_came(stranger: tuple[StrangerVenv, dict[str, str]]) -> None:
    venv, _ = stranger
    result = venv.run("omerta", "plugins", "--json")
    assert result.returncode == 0, result.stderr
    listed = {p["name"]: p["distribution"] for p in json.loads(result.stdout)}
    assert listed == {"kvm": "omerta-vm-kvm", "gossip": "omerta-discovery-gossip", "udp": "omerta-transport-udp"}


def venv_launcher(venv: StrangerVenv) -> Any:
    """Start ``NodeProcess``'s ``python -m omerta_core ARGS`` as the venv's ``omerta ARGS``."""

    def launch(argv: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
        rest = argv[argv.index("omerta_core") + 1 :]
        return subprocess.Popen([str(venv.bin / "omerta"), *rest], env={**venv.env(), **env}, **kwargs)

    return launch


def test_omerta_node_runs_them(stranger: tuple[StrangerVenv, dict[str, str]], tmp_path: Path) -> None:
    venv, _ = stranger
    node = NodeProcess(tmp_path / "state", NODE_PLUGINS, launcher=venv_launcher(venv))
    try:
        node.start("plugins.udp.host=127.0.0.1", "plugins.udp.port=0")
        result = venv.run("omerta", "status", "--json", "--state-dir", str(node.state_dir))
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        assert set(status["plugins"]) == {"kvm", "gossip", "udp"}
        assert status["pulled_in"] == {"udp": "gossip"}
        running = {(kind, name) for kind, names in status["services"].items() for name in names}
        assert {("transport", "udp"), ("discovery", "gossip"), ("hypervisor", "kvm")} <= running
    finally:
        node.stop()


def test_a_third_party_plugin_from_the_template_installs_the_same_way(
    index: PackageIndex, tmp_path_factory: pytest.TempPathFactory
) -> None:
    venv = StrangerVenv(tmp_path_factory.mktemp("third-party") / "venv", index)
    origins = venv.install(f"omerta-{THIRD_PARTY}")
    assert {name for name in origins if is_ours(name)} == {f"omerta-{THIRD_PARTY}", "omerta-node"}
    listed = json.loads(venv.run("omerta", "plugins", "--json").stdout)
    assert [(p["name"], p["distribution"], p["usable"]) for p in listed] == [
        (THIRD_PARTY, f"omerta-{THIRD_PARTY}", True)
    ]
    assert venv.run("omerta", THIRD_PARTY).stdout == f"hello from {THIRD_PARTY}\n"
