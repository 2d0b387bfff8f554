"""The seam where the consumer's VPN attaches to a rented VM (the consumer-served VPN is its own plugin).

The rental core asks for ``AttachVpn``/``DetachVpn``; the adapter hands them to a :class:`VpnSeam`.
Until a VPN backend is installed the seam only records each attachment (``available`` false), so the
protocol, escrow and VM lifecycle run and are tested end to end, and ``omerta vm ssh``/``exec`` say
that a VPN is needed. A VPN backend (a gateway namespace per VM, as the ``vpn`` plugin provides)
fills in the VM's address on the gateway and the argv prefix that runs a command inside it, which is
all ``ssh``/``exec`` need. Touches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omerta_core.interfaces.common import PeerId

#: The address the test guest gives itself on its only NIC (the lab range), reported until a VPN assigns one.
GUEST_ADDRESS = "198.18.0.2"


@dataclass(frozen=True)
class Attachment:
    """A rented VM as the consumer reaches it."""

    provider: PeerId
    vm_id: str
    address: str
    #: Argv prefix that runs a command where the VM is reachable (inside the gateway namespace); empty: here.
    enter: tuple[str, ...] = ()


@dataclass
class VpnSeam:
    """Attachments of rented VMs to this consumer's VPN; a recorder while no VPN backend exists."""

    guest_address: str = GUEST_ADDRESS
    attached: dict[str, Attachment] = field(default_factory=dict)
    available: bool = False

    async def attach(self, rental: str, provider: PeerId, vm_id: str, address: str) -> None:
        self.attached[rental] = Attachment(provider, vm_id, address)

    async def detach(self, rental: str) -> None:
        self.attached.pop(rental, None)
