"""What a consumer gateway is, whatever the platform: a frame port for one VM's frames, and its addressing.

The Linux gateway (:mod:`omerta_vpn.gateway_linux`) is one implementation;
another platform's gateway replaces it by satisfying :class:`Gateway`. Also the
addressing plan shared by every gateway (:class:`GatewaySpec`). Pure; touches nothing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.hypervisor import FramePort
from omerta_core.interfaces.vpn import GatewayInfo, GatewayMode

#: The TAP standing for the VM's NIC inside a gateway namespace (each VM has its own namespace).
GATEWAY_TAP = "omvm0"
#: The gateway's own MAC on that link (locally administered).
GATEWAY_MAC = "02:6f:6d:00:00:01"


@dataclass(frozen=True)
class GatewaySpec:
    vm_id: str
    provider: PeerId
    mode: GatewayMode
    subnet: ipaddress.IPv4Network
    mtu: int
    directory: Path
    upstream_dns: bool = True
    lease_s: int = 3600

    @property
    def gateway_address(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def vm_address(self) -> str:
        return str(self.subnet.network_address + 2)


class Gateway(Protocol):
    """One rented VM's gateway on the consumer."""

    @property
    def port(self) -> FramePort:
        """Where the VM's frames go in and the gateway's frames for the VM come out."""

    def info(self) -> GatewayInfo:
        """Addresses, mode, MTU and how to run a command inside the gateway."""

    def allow_offloads(self) -> None:
        """The provider takes offloaded frames: from now on the port may yield them (TCP super-frames)."""

    async def start(self) -> None:
        """Create everything; return once DHCP is served."""

    async def stop(self) -> None:
        """Remove everything it created (idempotent)."""
