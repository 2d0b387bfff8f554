"""What the consumer-served VPN provides: tunnels on providers, gateways on consumers.

On a provider, a tunnel carries one VM's Ethernet frames (read from the
hypervisor's :class:`~omerta_core.interfaces.hypervisor.FramePort`) as datagrams
of the session with that VM's consumer, and nowhere else. On the consumer, a
gateway receives them into a TAP of its own network namespace, where a DHCP
server hands the VM its address and (in ``internet`` mode) the consumer's uplink
carries its traffic. Touches nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from omerta_core.interfaces.common import PeerId, Service


class GatewayMode(enum.Enum):
    """What a VM may reach through its consumer's gateway."""

    #: NAT out through the consumer's own uplink (and reach the gateway).
    INTERNET = "internet"
    #: Reach only the gateway address: the consumer, nothing beyond.
    ISOLATED = "isolated"


class TunnelState(enum.Enum):
    UP = "up"  # frames flow; the consumer was heard from recently
    WAITING = "waiting"  # the consumer has not been heard from (yet, or for a while)
    PAUSED = "paused"  # the consumer has been gone longer than the grace: the VM is paused
    CLOSED = "closed"


@dataclass(frozen=True)
class TunnelInfo:
    """A provider's view of one VM's tunnel."""

    vm_id: str
    consumer: PeerId
    state: TunnelState
    counters: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GatewayInfo:
    """A consumer's gateway for one rented VM."""

    vm_id: str
    provider: PeerId
    mode: GatewayMode
    #: The only address the gateway's DHCP server leases (to the VM).
    vm_address: str
    #: The consumer's end of the VM's link: its router and DNS server.
    gateway_address: str
    prefix_len: int
    #: The MTU the VM is told to use (DHCP option 26).
    mtu: int
    #: An argv prefix that runs a command inside the gateway's namespace (``[*enter, "ping", ...]``).
    enter: tuple[str, ...]
    counters: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RogueEvent:
    """A provider's report that a VM sent frames it may not send (``vm.rogue``)."""

    vm_id: str
    provider: PeerId
    reason: str  # "foreign-source-mac", ...
    count: int  # rogue frames so far
    action: str  # "none", "pause" or "kill"


#: Called with each ``vm.rogue`` event about a VM this node rents.
RogueListener = Callable[[RogueEvent], None]


@runtime_checkable
class Vpn(Service, Protocol):
    """Tunnels VMs' frames to their consumers and serves the consumers' gateways."""

    # -- provider side --
    async def start_tunnel(self, vm_id: str, consumer: PeerId) -> TunnelInfo:
        """Carry ``vm_id``'s frames to ``consumer`` (idempotent for the same consumer)."""

    async def stop_tunnel(self, vm_id: str) -> None:
        """Stop carrying ``vm_id``'s frames (idempotent)."""

    def tunnels(self) -> list[TunnelInfo]:
        """The tunnels this node serves as a provider."""

    # -- consumer side --
    async def attach_gateway(self, vm_id: str, provider: PeerId, *, mode: GatewayMode | None = None) -> GatewayInfo:
        """Create the gateway for a VM rented from ``provider``; return once it serves DHCP.

        ``mode`` ``None`` takes the node's configured default (``internet`` unless changed).
        """

    async def detach_gateway(self, vm_id: str) -> None:
        """Remove the gateway and everything it created (idempotent)."""

    def gateways(self) -> list[GatewayInfo]:
        """The gateways this node serves as a consumer."""

    def on_rogue(self, listener: RogueListener) -> None:
        """Call ``listener`` for every ``vm.rogue`` event a provider reports."""
