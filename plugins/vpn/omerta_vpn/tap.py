"""A TAP file descriptor as a :class:`~omerta_core.interfaces.hypervisor.FramePort`.

The consumer's gateway holds its TAP's descriptor itself (the namespace helper
created the TAP and passed the descriptor over a Unix socket), so each read is
one frame the gateway's kernel sends towards the VM and each write one frame
from the VM (``received_*`` and ``sent_*`` counters are seen from the TAP's
owner). Also serves the benchmark's stand-in VM. Non-blocking, read from the
event loop. Touches only the descriptor it is given.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter

from omerta_core.interfaces.hypervisor import FrameHandler

ETHERNET_HEADER = 14
RECEIVE_BATCH = 64


class TapFramePort:
    """Frames through a TAP descriptor this process owns."""

    def __init__(self, fd: int, mtu: int) -> None:
        self._fd = fd
        self._mtu = mtu
        self._max_frame = mtu + ETHERNET_HEADER
        self._handler: FrameHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._counters: Counter[str] = Counter()
        os.set_blocking(fd, False)

    @property
    def mtu(self) -> int:
        return self._mtu

    def send(self, frame: bytes) -> bool:
        if self._fd < 0:
            self._counters["dropped_closed"] += 1
            return False
        if not ETHERNET_HEADER <= len(frame) <= self._max_frame:
            self._counters["dropped_size"] += 1
            return False
        try:
            os.write(self._fd, frame)
        except (BlockingIOError, InterruptedError):
            self._counters["dropped_busy"] += 1
            return False
        except OSError:
            self._counters["dropped_error"] += 1
            return False
        self._counters["sent_frames"] += 1
        return True

    def on_frames(self, handler: FrameHandler | None) -> None:
        if self._fd < 0:
            return
        if handler is not None and self._handler is None:
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._fd, self._readable)
        elif handler is None and self._handler is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
        self._handler = handler

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def close(self) -> None:
        if self._fd < 0:
            return
        self.on_frames(None)
        os.close(self._fd)
        self._fd = -1

    def _readable(self) -> None:
        read = os.read
        for _ in range(RECEIVE_BATCH):
            try:
                frame = read(self._fd, 65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._counters["receive_errors"] += 1
                return
            self._counters["received_frames"] += 1
            handler = self._handler
            if handler is None:
                return
            handler(frame)
