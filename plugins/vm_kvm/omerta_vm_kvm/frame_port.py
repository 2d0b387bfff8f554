"""A VM's TAP as an :class:`~omerta_core.interfaces.hypervisor.OffloadPort`.

QEMU holds the TAP's file descriptor, so the node sits on the other side of
the link: a packet socket bound to the TAP inside the VM's namespace, where
what the guest sends arrives as received frames and what the node sends goes
to the guest. The socket ignores the frames it sends itself
(``PACKET_IGNORE_OUTGOING``), is non-blocking and is read from the event
loop.

It reads and writes a virtio-net header before every frame
(``PACKET_VNET_HDR``), so the guest's NIC may offload segmentation and
checksums: a TCP burst of up to 64 KiB the guest sends is read as one
super-frame, and one written is delivered to the guest whole (or segmented by
the kernel if the guest's NIC cannot take it). Every header read from the
guest and every one handed to it is checked
(:func:`omerta_core.interfaces.vnet.check`); a bad one is dropped and counted
(``dropped_bad_vnet``). Touches only the socket it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter

from omerta_core.interfaces import vnet
from omerta_core.interfaces.hypervisor import FrameHandler, OffloadHandler

#: Ethernet header without VLAN tag or FCS.
ETHERNET_HEADER = vnet.ETHERNET_HEADER
#: Frames read per readiness callback before yielding to the loop.
RECEIVE_BATCH = 64
#: The largest read: a virtio-net header and a 64 KiB super-frame.
RECEIVE_BYTES = vnet.HEADER_BYTES + vnet.MAX_OFFLOAD_FRAME
#: Socket buffers for bursts of full frames (forced when running as root).
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SOL_PACKET = 263
#: Linux ``PACKET_VNET_HDR``: a virtio-net header before every frame read and written.
PACKET_VNET_HDR = 15
#: Linux ``PACKET_IGNORE_OUTGOING`` (4.20+): do not hand our own sends back to us.
PACKET_IGNORE_OUTGOING = 23


class PacketSocketFramePort:
    """Ethernet frames of one VM, finished or offloaded, through a packet socket on its TAP."""

    def __init__(self, sock: socket.socket, mtu: int) -> None:
        self._sock = sock
        self._mtu = mtu
        self._max_frame = mtu + ETHERNET_HEADER
        self._handler: FrameHandler | None = None
        self._offload_handler: OffloadHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading = False
        self._counters: Counter[str] = Counter()
        sock.setblocking(False)
        sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        for forced, option in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
            try:
                sock.setsockopt(socket.SOL_SOCKET, forced, SOCKET_BUFFER_BYTES)
            except OSError:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)

    @property
    def mtu(self) -> int:
        return self._mtu

    def send(self, frame: bytes) -> bool:
        if len(frame) > self._max_frame or len(frame) < ETHERNET_HEADER:
            self._counters["dropped_size"] += 1
            return False
        if self._write(vnet.NONE + frame):
            self._counters["to_vm_frames"] += 1
            self._counters["to_vm_bytes"] += len(frame)
            return True
        return False

    def send_offload(self, data: bytes) -> bool:
        try:
            vnet.check(data)
        except vnet.VnetHeaderError:
            self._counters["dropped_bad_vnet"] += 1
            return False
        if self._write(data):
            self._counters["to_vm_offloaded"] += 1
            self._counters["to_vm_bytes"] += len(data) - vnet.HEADER_BYTES
            return True
        return False

    def _write(self, data: bytes) -> bool:
        if self._sock.fileno() < 0:
            self._counters["dropped_closed"] += 1
            return False
        try:
            self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            self._counters["dropped_busy"] += 1
            return False
        except OSError:
            self._counters["dropped_error"] += 1
            return False
        return True

    def on_frames(self, handler: FrameHandler | None) -> None:
        self._handler = handler
        self._watch()

    def on_offload(self, handler: OffloadHandler | None) -> None:
        self._offload_handler = handler
        self._watch()

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def close(self) -> None:
        self._handler = self._offload_handler = None
        self._watch()
        self._sock.close()

    def _watch(self) -> None:
        wanted = self._handler is not None or self._offload_handler is not None
        if wanted and not self._reading and self._sock.fileno() >= 0:
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._sock.fileno(), self._readable)
            self._reading = True
        elif not wanted and self._reading:
            if self._loop is not None and self._sock.fileno() >= 0:
                self._loop.remove_reader(self._sock.fileno())
            self._reading = False

    def _readable(self) -> None:
        recv = self._sock.recv
        counters = self._counters
        header = vnet.HEADER_BYTES
        for _ in range(RECEIVE_BATCH):
            try:
                data = recv(RECEIVE_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                counters["receive_errors"] += 1
                return
            if not data[0] & vnet.F_NEEDS_CSUM and not data[1]:  # finished ("data valid" is a hint)
                counters["from_vm_frames"] += 1
                counters["from_vm_bytes"] += len(data) - header
                if self._handler is not None:
                    self._handler(data[header:])
            else:
                self._from_vm_offloaded(data)

    def _from_vm_offloaded(self, data: bytes) -> None:
        counters = self._counters
        try:
            vnet.check(data)
        except vnet.VnetHeaderError:
            counters["dropped_bad_vnet"] += 1
            return
        counters["from_vm_offloaded"] += 1
        counters["from_vm_bytes"] += len(data) - vnet.HEADER_BYTES
        if data[1]:
            counters["from_vm_super_frames"] += 1
        if self._offload_handler is None:
            counters["dropped_offload"] += 1
            return
        self._offload_handler(data)
