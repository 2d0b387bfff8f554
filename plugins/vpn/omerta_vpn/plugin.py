"""Hook implementations of the ``vpn`` plugin, registered through the ``omerta`` entry point.

Registers the VPN backend (it provides ``Vpn``, needs a ``Transport`` and uses
a ``Hypervisor`` when one runs), its configuration defaults and its control
methods and the ``omerta vpn`` commands.
Touches nothing itself.
"""

from __future__ import annotations

from typing import Any

import click

import omerta_core
from omerta_core.hookspecs import ControlMethod
from omerta_core.interfaces.hypervisor import Hypervisor
from omerta_core.interfaces.transport import Transport
from omerta_core.interfaces.vpn import Vpn
from omerta_core.node import NodeContext
from omerta_core.records import Need, ServiceRecord
from omerta_vpn import control
from omerta_vpn.cli import vpn_group
from omerta_vpn.service import VpnService
from omerta_vpn.settings import CONFIG_DEFAULTS, parse_settings


def build(node: NodeContext) -> VpnService:
    return VpnService(node, parse_settings(node.plugin_config("vpn")))


@omerta_core.hookimpl
def omerta_services() -> list[ServiceRecord]:
    return [
        ServiceRecord(
            name="vpn",
            provides=Vpn,
            factory=build,
            description="consumer-served VPN: VM frames over the mesh to a rootless gateway on the consumer",
            # a provider's hypervisor starts first, so the VPN can tunnel its VMs; a consumer needs none
            needs=(Need(Transport, install="omerta-transport-udp"), Need(Hypervisor, optional=True)),
        )
    ]


@omerta_core.hookimpl
def omerta_config_defaults() -> dict[str, Any]:
    return dict(CONFIG_DEFAULTS)


@omerta_core.hookimpl
def omerta_control_methods() -> dict[str, ControlMethod]:
    return control.METHODS


@omerta_core.hookimpl
def omerta_cli_commands() -> list[click.Command]:
    return [vpn_group]
