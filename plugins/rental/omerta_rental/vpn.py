"""The seam where the consumer's VPN attaches to a rented VM (the consumer-served VPN is its own plugin).

Until a VPN backend is installed, :class:`VpnSeam` only records which rentals would be attached,
so the protocol, escrow and VM lifecycle run and are tested end to end; ``omerta vm ssh``/``exec``
then say that a VPN is needed. A VPN backend replaces it through :meth:`attach`/:meth:`detach`.
Touches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omerta_core.interfaces.common import PeerId

#: The address the test guest gives itself on its only NIC (the lab range).
GUEST_ADDRESS = "198.18.0.2"


@dataclass
class VpnSeam:
    """Attachments of rented VMs to this consumer's VPN; a recorder while no VPN backend exists."""

    guest_address: str = GUEST_ADDRESS
    attached: dict[str, tuple[PeerId, str, str]] = field(default_factory=dict)
    available: bool = False

    async def attach(self, rental: str, provider: PeerId, vm_id: str, address: str) -> None:
        self.attached[rental] = (provider, vm_id, address)

    async def detach(self, rental: str) -> None:
        self.attached.pop(rental, None)
