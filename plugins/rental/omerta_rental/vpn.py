"""The seam where the consumer's VPN attaches to a rented VM.

The rental core asks for ``AttachVpn``/``DetachVpn``; the adapter hands them to a :class:`VpnSeam`.
With a ``Vpn`` service running (the ``vpn`` plugin), attaching opens the consumer's gateway for the
VM (``Vpn.attach_gateway``): the VM's address is the one the gateway's DHCP leases it, and ``enter``
is the argv prefix that runs a command inside the gateway namespace, which is all ``omerta vm
ssh``/``exec`` need. The provider's side of the tunnel starts by itself when the VM's consumer is
another peer. Without a ``Vpn`` service the seam only records the attachment (``available`` false):
the protocol, escrow and VM lifecycle still run end to end, and ``ssh``/``exec`` say that a VPN is
needed. Touches nothing itself; the ``Vpn`` service touches what its docs say.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.vpn import Vpn

#: The address the test guest gives itself without a VPN (the lab range), reported until a VPN assigns one.
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
    """Attachments of rented VMs to this consumer's VPN."""

    vpn: Vpn | None = None
    guest_address: str = GUEST_ADDRESS
    attached: dict[str, Attachment] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.vpn is not None

    async def attach(self, rental: str, provider: PeerId, vm_id: str, address: str) -> Attachment:
        if self.vpn is None:
            attachment = Attachment(provider, vm_id, address)
        else:
            gateway = await self.vpn.attach_gateway(vm_id, provider)
            attachment = Attachment(provider, vm_id, gateway.vm_address, tuple(gateway.enter))
        self.attached[rental] = attachment
        return attachment

    async def detach(self, rental: str) -> None:
        attachment = self.attached.pop(rental, None)
        if attachment is not None and self.vpn is not None:
            await self.vpn.detach_gateway(attachment.vm_id)
