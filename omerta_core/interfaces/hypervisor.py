"""What a hypervisor backend provides: ephemeral VMs that always get deleted.

Touches nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from omerta_core.interfaces.common import PeerId, Service


class VmState(enum.Enum):
    ADMITTED = "admitted"
    CREATING = "creating"
    BOOTING = "booting"
    READY = "ready"
    PAUSED = "paused"
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
    #: The id the VM is to get (32 lowercase hex digits), chosen by the caller so that it can name the VM to
    #: others before it exists (the rental tells its consumer, who builds the VM's VPN gateway meanwhile).
    #: ``None``: the hypervisor picks one. An id in use or malformed is refused like any bad request.
    vm_id: str | None = None


@dataclass(frozen=True)
class VmInfo:
    vm_id: str
    consumer: PeerId
    state: VmState
    created_at: float
    expires_at: float
    console_log: str | None = None
    #: The MAC address of the VM's only NIC, where the hypervisor gives it one.
    mac: str | None = None
    #: The guest's SSH host public key (``TYPE BASE64``), where the hypervisor learned it over a trusted
    #: path (the guest's console before any consumer could log in, or a key it put in the guest's seed).
    ssh_host_key: str | None = None


#: Called with each Ethernet frame a frame port receives from its VM.
FrameHandler = Callable[[bytes], None]
#: Called with each offloaded frame (a virtio-net header and its frame, :mod:`omerta_core.interfaces.vnet`).
OffloadHandler = Callable[[bytes], None]


@runtime_checkable
class FramePort(Protocol):
    """One VM's only NIC, seen from the node: Ethernet frames in and out.

    The kvm plugin implements it on the VM's TAP; a macOS backend would on a
    ``VZFileHandleNetworkDeviceAttachment``; the VPN's consumer gateway on its
    own TAP. Frames are whole Ethernet frames without FCS. A port never blocks:
    a frame it cannot take now is dropped and counted. A port that also carries
    TCP super-frames is an :class:`OffloadPort`.
    """

    @property
    def mtu(self) -> int:
        """The largest IP packet the VM's NIC is configured for (its frames are 14 bytes more)."""

    def send(self, frame: bytes) -> bool:
        """Hand one frame to the VM; ``False`` (and a counted drop) when it cannot be taken now."""

    def on_frames(self, handler: FrameHandler | None) -> None:
        """Call ``handler`` for every frame from the VM (``None`` stops receiving)."""

    def counters(self) -> dict[str, int]:
        """Frames and bytes in each direction, and drops by reason."""

    def close(self) -> None:
        """Stop receiving and release the port (idempotent); the VM's NIC stays."""


#: Called with the frames of one read burst from the VM, in order.
FrameBatchHandler = Callable[[list[bytes]], None]


@runtime_checkable
class BatchFramePort(FramePort, Protocol):
    """A frame port that also moves frames a burst at a time (optional; check with ``isinstance`` once).

    The VPN's tunnel then checks and sends a burst read in one wake-up together, and writes a run
    of frames received together in one loop, instead of one call per frame.
    """

    def on_frame_batch(self, handler: FrameBatchHandler | None) -> None:
        """Call ``handler`` with each burst of frames from the VM (instead of :meth:`on_frames`)."""

    def send_batch(self, frames: list[bytes], offset: int = 0) -> int:
        """:meth:`send` of each of ``frames`` in order (each frame behind ``offset`` bytes of its item: a
        tunnel's datagrams handed on without a copy of each frame); how many were taken."""


@runtime_checkable
class OffloadPort(FramePort, Protocol):
    """A frame port that also carries offloaded frames: a virtio-net header and the frame it describes.

    An offloaded frame (:mod:`omerta_core.interfaces.vnet`) is a TCP super-frame of up to 64 KiB that
    the receiver delivers whole or segments, or a frame whose checksum is left to the receiver: one
    per burst instead of one per segment. A VM whose NIC offloads segmentation and checksums hands
    its port such frames, and takes them. Finished frames still pass through :meth:`FramePort.send`
    and :meth:`FramePort.on_frames`. A port that yields offloaded frames also takes them, so the other
    end of a link may send it offloaded frames once it has received one. Every header a port yields
    from its VM has passed :func:`omerta_core.interfaces.vnet.check`, and callers hand it only headers
    that passed it; a frame it cannot take is dropped and counted.
    """

    def send_offload(self, data: bytes) -> bool:
        """Hand the VM ``data`` (a virtio-net header and its frame); ``False`` and a counted drop if not taken."""

    def on_offload(self, handler: OffloadHandler | None) -> None:
        """Call ``handler`` for every offloaded frame from the VM (``None``: they are dropped and counted)."""


@runtime_checkable
class Hypervisor(Service, Protocol):
    """Admits, creates, renews and deletes VMs; reclaims leftovers after a crash."""

    async def create(self, request: VmRequest, go: Callable[[], Awaitable[bool]] | None = None) -> VmInfo:
        """Admit and create a VM; raises a typed error and leaves nothing behind on failure.

        With ``go``, everything is made (disk, NIC, the VM itself) but the VM's CPUs are held before its first
        instruction until ``go()`` answers: ``True`` boots it, ``False`` deletes everything and raises. A caller
        that must not run a VM before some check (the rental's escrow confirmation) overlaps the making with it.
        """

    async def destroy(self, vm_id: str) -> None:
        """Delete a VM and every artefact it had."""

    async def renew(self, vm_id: str, seconds: int) -> VmInfo:
        """Extend a VM's lease."""

    def list(self) -> list[VmInfo]:
        """The VMs this node currently holds."""

    async def reclaim(self) -> int:
        """Delete every recorded artefact without a live owner; return how many were removed."""

    async def pause(self, vm_id: str) -> VmInfo:
        """Stop the VM's vCPUs, keeping its memory and NIC (its TCP connections survive a resume)."""

    async def resume(self, vm_id: str) -> VmInfo:
        """Run a paused VM again."""

    async def open_frame_port(self, vm_id: str) -> FramePort:
        """The VM's only NIC as a frame port; available from boot until deletion."""
