"""A VM's TAP as a :class:`~omerta_core.interfaces.hypervisor.FramePort`.

QEMU holds the TAP's file descriptor, so the node sits on the other side of
the link: a packet socket bound to the TAP inside the VM's namespace, where
what the guest sends arrives as received frames and what the node sends goes
to the guest. The socket ignores the frames it sends itself
(``PACKET_IGNORE_OUTGOING``), is non-blocking and is read from the event
loop. Touches only the socket it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter

from omerta_core.interfaces.hypervisor import FrameHandler

#: Ethernet header without VLAN tag or FCS.
ETHERNET_HEADER = 14
#: Frames read per readiness callback before yielding to the loop.
RECEIVE_BATCH = 64
#: Socket buffers for bursts of full frames (forced when running as root).
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
#: Linux ``PACKET_IGNORE_OUTGOING`` (4.20+): do not hand our own sends back to us.
PACKET_IGNORE_OUTGOING = 23
SOL_PACKET = 263


class PacketSocketFramePort:
    """Ethernet frames of one VM through a packet socket on its TAP."""

    def __init__(self, sock: socket.socket, mtu: int) -> None:
        self._sock = sock
        self._mtu = mtu
        self._max_frame = mtu + ETHERNET_HEADER
        self._handler: FrameHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading = False
        self._counters: Counter[str] = Counter()
        sock.setblocking(False)
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
        if self._sock.fileno() < 0:
            self._counters["dropped_closed"] += 1
            return False
        if len(frame) > self._max_frame or len(frame) < ETHERNET_HEADER:
            self._counters["dropped_size"] += 1
            return False
        try:
            self._sock.send(frame)
        except (BlockingIOError, InterruptedError):
            self._counters["dropped_busy"] += 1
            return False
        except OSError:
            self._counters["dropped_error"] += 1
            return False
        self._counters["to_vm_frames"] += 1
        self._counters["to_vm_bytes"] += len(frame)
        return True

    def on_frames(self, handler: FrameHandler | None) -> None:
        self._handler = handler
        if handler is not None and not self._reading and self._sock.fileno() >= 0:
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._sock.fileno(), self._readable)
            self._reading = True
        elif handler is None:
            self._stop_reading()

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def close(self) -> None:
        self._stop_reading()
        self._handler = None
        self._sock.close()

    def _stop_reading(self) -> None:
        if self._reading and self._loop is not None and self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
        self._reading = False

    def _readable(self) -> None:
        recv = self._sock.recv
        counters = self._counters
        for _ in range(RECEIVE_BATCH):
            try:
                frame = recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                counters["receive_errors"] += 1
                return
            counters["from_vm_frames"] += 1
            counters["from_vm_bytes"] += len(frame)
            handler = self._handler
            if handler is None:
                return
            handler(frame)
