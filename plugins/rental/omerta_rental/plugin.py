"""Hook implementations of the ``rental`` plugin, registered through the ``omerta`` entry point.

The rental protocol is a service of this plugin's own kind (:class:`~omerta_rental.service.Rentals`):
it needs a transport and a ledger, uses a hypervisor (to provide VMs) and discovery (offers) when
present, and so starts after them and stops before them. It adds its own hook for third-party
admission rules to the node's plugin manager, and serves the ``rental.*`` control methods and the
``omerta offers`` and ``omerta vm`` commands. Touches nothing itself.
"""

from __future__ import annotations

from typing import Any

import click

import omerta_core
from omerta_core.hookspecs import ControlMethod
from omerta_core.interfaces.discovery import Discovery
from omerta_core.interfaces.hypervisor import Hypervisor
from omerta_core.interfaces.ledger import Ledger
from omerta_core.interfaces.transport import Transport
from omerta_core.interfaces.vpn import Vpn
from omerta_core.node import NodeContext
from omerta_core.records import Need, ServiceRecord
from omerta_rental import control, hookspecs
from omerta_rental.admission import Candidate
from omerta_rental.cli import offers_command, vm_group
from omerta_rental.service import Rentals, RentalService
from omerta_rental.settings import CONFIG_DEFAULTS, parse_settings
from omerta_rental.vpn import VpnSeam


def build(node: NodeContext) -> RentalService:
    manager = node.host.manager
    if not hasattr(manager.hook, "omerta_rental_admission"):
        manager.add_hookspecs(hookspecs)
    service = RentalService(node, parse_settings(node.plugin_config("rental")), VpnSeam(node.find(Vpn)))

    def third_party_rules(candidate: Candidate) -> list[str | None]:
        return list(manager.hook.omerta_rental_admission(candidate=candidate))

    service.admission_hook = third_party_rules
    return service


@omerta_core.hookimpl
def omerta_services() -> list[ServiceRecord]:
    return [
        ServiceRecord(
            name="rental",
            provides=Rentals,
            needs=(
                Need(Transport, install="omerta-transport-udp"),
                Need(Ledger, install="omerta-ledger-omt"),
                Need(Hypervisor, optional=True),
                Need(Discovery, optional=True),
                Need(Vpn, optional=True),
            ),
            factory=build,
            description="renting VMs: offers, admission, escrow, lease, release, settlement",
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
    return [offers_command, vm_group]
