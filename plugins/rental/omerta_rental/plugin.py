"""Hook implementations of the ``rental`` plugin, registered through the ``omerta`` entry point.

The rental protocol is not a backend kind of its own: it is the node's job of joining the
backends (transport, ledger, hypervisor, discovery) into renting a VM. So it starts when the node
has started every backend (``omerta_node_started``), stops before they stop, adds its own hook for
third-party admission rules, and serves the ``rental.*`` control methods and the ``omerta offers``
and ``omerta vm`` commands. Touches nothing itself.
"""

from __future__ import annotations

from typing import Any

import click

import omerta_core
from omerta_core.hookspecs import ControlMethod
from omerta_rental import control, hookspecs
from omerta_rental.admission import Candidate
from omerta_rental.cli import offers_command, vm_group
from omerta_rental.service import RentalService
from omerta_rental.settings import CONFIG_DEFAULTS, parse_settings
from omerta_rental.vpn import VpnSeam


@omerta_core.hookimpl
def omerta_config_defaults() -> dict[str, Any]:
    return dict(CONFIG_DEFAULTS)


@omerta_core.hookimpl
async def omerta_node_started(node: Any) -> None:
    if not (node.has_service("transport") and node.has_service("ledger")):
        node.log.warning("rental needs a transport and a ledger (e.g. --plugins udp,gossip,omt,rental); not started")
        return
    manager = node.host.manager
    if not hasattr(manager.hook, "omerta_rental_admission"):
        manager.add_hookspecs(hookspecs)
    service = RentalService(node, parse_settings(node.plugin_config("rental")), VpnSeam())

    def third_party_rules(candidate: Candidate) -> list[str | None]:
        return list(manager.hook.omerta_rental_admission(candidate=candidate))

    service.admission_hook = third_party_rules
    await service.start()
    control.SERVICES[id(node)] = service


@omerta_core.hookimpl
async def omerta_node_stopping(node: Any) -> None:
    service = control.SERVICES.pop(id(node), None)
    if service is not None:
        await service.stop()


@omerta_core.hookimpl
def omerta_node_status(node: Any) -> dict[str, Any]:
    service = control.SERVICES.get(id(node))
    return {"running": False} if service is None else service.status()


@omerta_core.hookimpl
def omerta_control_methods() -> dict[str, ControlMethod]:
    return control.METHODS


@omerta_core.hookimpl
def omerta_cli_commands() -> list[click.Command]:
    return [offers_command, vm_group]
