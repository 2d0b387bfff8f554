"""Hook implementations of the ``vpn`` plugin, registered through the ``omerta`` entry point.

Registers the VPN backend (started after the transport and hypervisor, which it
finds through the node), its configuration defaults and its control methods.
Touches nothing itself.
"""

from __future__ import annotations

from typing import Any

import omerta_core
from omerta_core.hookspecs import ControlMethod
from omerta_core.records import VpnRecord
from omerta_vpn import control
from omerta_vpn.service import VpnService
from omerta_vpn.settings import CONFIG_DEFAULTS, parse_settings


def build(node: Any) -> VpnService:
    return VpnService(node, parse_settings(node.plugin_config("vpn")))


@omerta_core.hookimpl
def omerta_vpns() -> list[VpnRecord]:
    return [
        VpnRecord(
            name="vpn",
            factory=build,
            description="consumer-served VPN: VM frames over the mesh to a rootless gateway on the consumer",
        )
    ]


@omerta_core.hookimpl
def omerta_config_defaults() -> dict[str, Any]:
    return dict(CONFIG_DEFAULTS)


@omerta_core.hookimpl
def omerta_control_methods() -> dict[str, ControlMethod]:
    return control.METHODS
