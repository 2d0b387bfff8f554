"""What a hypervisor backend provides: ephemeral VMs that always get deleted.

Touches nothing.
"""

from __future__ import annotations

import enum
import socket
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from omerta_core.interfaces.common import PeerId, Service


class VmState(enum.Enum):
    ADMITTED = "admitted"
    CREATING = "creating"
    BOOTING = "booting"
    READY = "ready"
    RELEASING = "releasing"
    DELETED = "deleted"
    FAILED = "failed"


@dataclass(frozen=True)
class VmRequest:
    """A consumer's request for one ephemeral VM."""

    consumer: PeerId
    image: str
    vcpus: int = 1
    memory_mib: int = 512
    disk_gib: int = 4
    lease_seconds: int = 3600
    ssh_public_key: str | None = None


@dataclass(frozen=True)
class VmInfo:
    vm_id: str
    consumer: PeerId
    state: VmState
    created_at: float
    expires_at: float
    console_log: str | None = None


@runtime_checkable
class Hypervisor(Service, Protocol):
    """Admits, creates, renews and deletes VMs; reclaims leftovers after a crash."""

    async def create(self, request: VmRequest) -> VmInfo:
        """Admit and create a VM; raises a typed error and leaves nothing behind on failure."""

    async def destroy(self, vm_id: str) -> None:
        """Delete a VM and every artefact it had."""

    async def renew(self, vm_id: str, seconds: int) -> VmInfo:
        """Extend a VM's lease."""

    def list(self) -> list[VmInfo]:
        """The VMs this node currently holds."""

    async def reclaim(self) -> int:
        """Delete every recorded artefact without a live owner; return how many were removed."""


@runtime_checkable
class VmFrames(Protocol):
    """Optional, for hypervisors that give each VM one NIC the node itself carries."""

    async def open_frames(self, vm_id: str) -> socket.socket:
        """A packet socket on the VM's only NIC: each send and receive is one Ethernet frame."""
