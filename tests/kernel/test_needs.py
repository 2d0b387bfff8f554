"""Needs and provisions: selection completed by default providers, start order, unmet needs, conflicts.

Each plugin here is a real distribution on a path (see ``plugin_site``); the kinds are Protocol classes
declared by the plugins themselves, so these tests also show a kind the kernel has never heard of.
"""

from __future__ import annotations

import pytest

from omerta_core.cli import check_command_conflicts
from omerta_core.errors import ConflictError, DependencyCycleError, UnmetNeedError
from omerta_core.plugins import PluginHost
from omerta_core.records import Need, ServiceRecord
from omerta_core.services import start_order

from .conftest import run_cli
from .test_node import running_node

#: A plugin that declares the kind ``Bell`` and provides it, logging start and stop into the state directory.
BELL = """
from typing import Protocol
from omerta_core import hookimpl
from omerta_core.records import ServiceRecord

class Bell(Protocol):
    def ring(self) -> str: ...

class Brass:
    def __init__(self, node):
        self.node = node
    async def start(self):
        with open(self.node.state_dir / "order", "a") as f:
            f.write("start {name}\\n")
    async def stop(self):
        with open(self.node.state_dir / "order", "a") as f:
            f.write("stop {name}\\n")
    def status(self):
        return {{}}
    def ring(self):
        return "ding from {name}"

@hookimpl
def omerta_services():
    return [ServiceRecord(name="{name}", provides=Bell, factory=Brass, description="a bell", default={default})]
"""

#: A plugin that needs a ``Bell`` (imported from the bell plugin's module: the kind is the contract).
RINGER = """
from omerta_core import hookimpl
from omerta_core.records import Need, ServiceRecord
from omerta_test_bell import Bell

class Ringer:
    def __init__(self, node):
        self.node = node
    async def start(self):
        with open(self.node.state_dir / "order", "a") as f:
            f.write("start ringer " + self.node.service(Bell).ring() + "\\n")
    async def stop(self):
        with open(self.node.state_dir / "order", "a") as f:
            f.write("stop ringer\\n")
    def status(self):
        return {}

@hookimpl
def omerta_services():
    return [ServiceRecord(name="ringer", provides=type("Ringing", (), {}), factory=Ringer,
                          description="rings", needs=(Need(Bell, install="omerta-test-bell"),))]
"""


def bell(name: str = "bell", *, default: bool = False) -> str:
    return BELL.replace("{name}", name).replace("{default}", str(default)).replace("{{}}", "{}")


def test_a_need_is_filled_by_the_only_installed_provider(plugin_site) -> None:
    plugin_site("bell", bell())
    plugin_site("ringer", RINGER)
    host = PluginHost.load(["ringer"])
    assert list(host.loaded) == ["ringer", "bell"]
    assert [(p.plugin, p.kind, p.needed_by) for p in host.pulled_in] == [("bell", "bell", "ringer")]


def test_the_default_marked_provider_wins_over_others_and_config_over_both(plugin_site) -> None:
    plugin_site("bell", bell())
    own_kind = "class Bell(Protocol):\n    def ring(self) -> str: ...\n"
    plugin_site("gong", bell("gong", default=True).replace(own_kind, "from omerta_test_bell import Bell\n"))
    plugin_site("ringer", RINGER)
    assert list(PluginHost.load(["ringer"]).loaded) == ["ringer", "gong"]
    assert list(PluginHost.load(["ringer"], defaults={"bell": "bell"}).loaded) == ["ringer", "bell"]


def test_a_need_nothing_installed_meets_is_one_line_naming_it_and_what_to_install(plugin_site) -> None:
    plugin_site("bell", "")  # the kind's module exists, but nothing provides a Bell
    plugin_site(
        "ringer",
        RINGER.replace("from omerta_test_bell import Bell", "from typing import Protocol\nclass Bell(Protocol): ..."),
    )
    with pytest.raises(UnmetNeedError) as err:
        PluginHost.load(["ringer"])
    assert (
        str(err.value)
        == "ringer needs a bell, and no installed plugin provides one; try `pip install omerta-test-bell`"
    )


def test_cli_says_the_unmet_need_in_one_line(plugin_site, tmp_path) -> None:
    plugin_site(
        "ringer",
        RINGER.replace("from omerta_test_bell import Bell", "from typing import Protocol\nclass Bell(Protocol): ..."),
    )
    result = run_cli("node", "--plugins", "ringer", "--state-dir", str(tmp_path / "s"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Error: ringer needs a bell, and no installed plugin provides one; try `pip install omerta-test-bell`"
    ]


def test_backends_start_after_what_they_need_and_stop_before_it(plugin_site, tmp_path) -> None:
    plugin_site("bell", bell())
    plugin_site("ringer", RINGER)
    state = tmp_path / "state"
    with running_node(state, "--plugins", "ringer") as running:
        assert (running / "order").read_text().splitlines() == ["start bell", "start ringer ding from bell"]
    assert (state / "order").read_text().splitlines()[2:] == ["stop ringer", "stop bell"]


class Alpha:
    pass


class Beta:
    pass


def record(name: str, provides: type, *needs: type) -> ServiceRecord:
    return ServiceRecord(name, provides, lambda _n: None, "t", needs=tuple(Need(k) for k in needs))  # type: ignore[arg-type,return-value]


def test_start_order_is_topological_and_keeps_selection_order_for_ties() -> None:
    entries = [("b", record("b", Beta, Alpha)), ("x", record("x", Gamma)), ("a", record("a", Alpha))]
    assert [p for p, _ in start_order(entries)] == ["x", "a", "b"]


class Gamma:
    pass


def test_a_cycle_is_an_error_naming_it() -> None:
    entries = [("a", record("a", Alpha, Beta)), ("b", record("b", Beta, Alpha))]
    with pytest.raises(DependencyCycleError, match=r"cycle: .*\(a\).*\(b\)|cycle: .*\(b\).*\(a\)"):
        start_order(entries)


CLAIMS_STATUS = """
from omerta_core import hookimpl

@hookimpl
def omerta_control_methods():
    return {"status": lambda node, params: "mine"}
"""

CHANNEL_USER = """
from omerta_core import hookimpl
from omerta_core.interfaces.transport import Transport

@hookimpl
def omerta_node_started(node):
    node.service(Transport).on_message("shared.channel", lambda peer, data: None)
"""


def test_a_plugin_redefining_a_kernel_control_method_stops_the_node_naming_both(plugin_site, tmp_path) -> None:
    plugin_site("usurper", CLAIMS_STATUS)
    result = run_cli("node", "--plugins", "usurper", "--state-dir", str(tmp_path / "s"))
    assert result.returncode != 0
    assert (
        result.stderr.strip().splitlines()[-1]
        == "Error: control method 'status' is registered by both kernel and usurper"
    )


def test_two_plugins_adding_one_command_is_a_conflict_naming_both(plugin_site) -> None:
    command = """
import click
from omerta_core import hookimpl

@hookimpl
def omerta_cli_commands():
    return [click.Command("hello")]
"""
    plugin_site("one", command)
    plugin_site("two", command)
    result = run_cli("hello")
    assert result.returncode != 0
    assert "command 'hello' is registered by both one and two" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(ConflictError, match="both one and two"):
        check_command_conflicts(PluginHost.load(["one", "two"]))


def test_two_plugins_share_a_group_but_not_a_subcommand(plugin_site) -> None:
    group = """
import click
from omerta_core import hookimpl

group = click.Group("things", help="{name}'s things")
group.add_command(click.Command("{sub}", callback=lambda: click.echo("{name} {sub}")))

@hookimpl
def omerta_cli_commands():
    return [group]
"""
    plugin_site("alpha", group.format(name="alpha", sub="list"))
    plugin_site("beta", group.format(name="beta", sub="request"))
    assert run_cli("things", "list").stdout.strip() == "alpha list"
    assert run_cli("things", "request").stdout.strip() == "beta request"
    check_command_conflicts(PluginHost.load(["alpha", "beta"]))
    plugin_site("gamma", group.format(name="gamma", sub="list"))
    result = run_cli("things", "list")
    assert result.returncode != 0
    assert "command 'things list' is registered by both alpha and gamma" in result.stderr
    with pytest.raises(ConflictError, match="'things list' is registered by both alpha and gamma"):
        check_command_conflicts(PluginHost.load(["alpha", "gamma"]))
