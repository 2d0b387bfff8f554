"""A TAP file descriptor as a :class:`~omerta_core.interfaces.hypervisor.FramePort`.

The consumer's gateway holds its TAP's descriptor itself (the namespace helper
created the TAP and passed the descriptor over a Unix socket), so each read is
one frame the gateway's kernel sends towards the VM and each write one frame
from the VM (``received_*`` and ``sent_*`` counters are seen from the TAP's
owner). Also serves the benchmark's stand-in VM. Non-blocking, read from the
event loop: each wake-up reads until the TAP is empty (at most
:data:`RECEIVE_BATCH` frames), and a batch handler gets
the burst in one call (it is a ``BatchFramePort``); :meth:`TapFramePort.send_batch` writes a run of frames
in one loop (a TAP takes one frame per write), on a TAP with vnet headers joining runs of one UDP flow into
super-frames the kernel segments back into the same frames (:mod:`omerta_vpn.gro`).

A TAP opened with vnet headers (:func:`omerta_vpn.tun.open_tap` ``vnet=True``)
also takes offloaded frames (:meth:`TapFramePort.send_offload`: a virtio-net
header and a frame, e.g. a TCP super-frame of up to 64 KiB that the kernel
delivers whole or segments) and, with offloads on (opened so, or from
:meth:`TapFramePort.enable_offloads` on), yields them
(:meth:`TapFramePort.on_offload`); plain frames pass as plain frames either way.
Touches only the descriptor it is given.
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections import Counter
from collections.abc import Sequence

from omerta_core.interfaces.hypervisor import FrameBatchHandler, FrameHandler, OffloadHandler
from omerta_vpn import gro
from omerta_vpn.codec import MAX_OFFLOAD_FRAME, VNET_F_NEEDS_CSUM, VNET_HEADER_BYTES, VNET_NONE
from omerta_vpn.tun import set_offload

ETHERNET_HEADER = 14
RECEIVE_BATCH = 64
#: A TAP silent this long before it became readable most likely holds one frame (a ping, a keystroke): the
#: first read's frame is handed over at once, not after a read that finds the TAP empty (a system call and
#: an exception, tens of µs on a cold CPU). More queued is read on the loop's next turn (readiness is
#: level-triggered); a steady stream reads batches until empty, as before. The udp transport does the same.
QUIET_S = 0.001
#: Errors that say the kernel takes no UDP super-frames (before Linux 4.18): frames one by one from then on.
GRO_REFUSED = frozenset({errno.EINVAL, errno.EOPNOTSUPP})


class TapFramePort:
    """Frames through a TAP descriptor this process owns."""

    def __init__(self, fd: int, mtu: int, *, vnet: bool = False) -> None:
        self._fd = fd
        self._mtu = mtu
        self._vnet = vnet
        self._gro = vnet
        self._max_frame = mtu + ETHERNET_HEADER
        self._handler: FrameHandler | None = None
        self._batch_handler: FrameBatchHandler | None = None
        self._offload_handler: OffloadHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_readable = 0.0
        self._counters: Counter[str] = Counter()
        os.set_blocking(fd, False)

    @property
    def mtu(self) -> int:
        return self._mtu

    def send(self, frame: bytes) -> bool:
        if not ETHERNET_HEADER <= len(frame) <= self._max_frame:
            self._counters["dropped_size"] += 1
            return False
        return self._write(frame, "sent_frames")

    def send_batch(self, frames: list[bytes], offset: int = 0) -> int:
        """Write the frames behind ``offset`` bytes in each of ``frames`` in order, counting as :meth:`send`
        (``sent_frames`` counts frames, not writes).

        A TAP takes one frame per write; with vnet headers a run of UDP frames of one flow goes as one
        super-frame the kernel gives back exactly (:mod:`omerta_vpn.gro`), unless the kernel refused one.
        """
        if self._fd < 0:
            self._counters["dropped_closed"] += len(frames)
            return 0
        low, high = ETHERNET_HEADER + offset, self._max_frame + offset
        fitting, lengths = frames, set(map(len, frames))
        if lengths and not (low <= min(lengths) and max(lengths) <= high):
            fitting = [frame for frame in frames if low <= len(frame) <= high]
            self._counters["dropped_size"] += len(frames) - len(fitting)
            lengths = set(map(len, fitting))
        if not self._vnet:
            sent = self._write_each(fitting, None, offset)
        elif not self._gro or len(fitting) < 2:
            sent = self._write_each(fitting, VNET_NONE, offset)
        else:
            sent = self._write_joined(fitting, offset, lengths)
        self._counters["sent_frames"] += sent
        return sent

    def _write_joined(self, frames: list[bytes], offset: int, lengths: set[int]) -> int:
        fd, writev, counters = self._fd, os.writev, self._counters
        sent = 0
        for buffers, carried in gro.plan(frames, offset=offset, lengths=lengths):
            try:
                writev(fd, buffers)
            except (BlockingIOError, InterruptedError):
                counters["dropped_busy"] += len(carried)
                continue
            except OSError as exc:
                if len(carried) > 1 and exc.errno in GRO_REFUSED:  # a kernel without UDP super-frames
                    self._gro = False
                    sent += self._write_each(carried, VNET_NONE, offset)
                else:
                    counters["dropped_error"] += len(carried)
                continue
            sent += len(carried)
            if len(carried) > 1:
                counters["sent_joined_writes"] += 1
                counters["sent_joined_frames"] += len(carried)
        return sent

    def _write_each(self, frames: Sequence[bytes], prefix: bytes | None, offset: int = 0) -> int:
        """Write the frames behind ``offset`` bytes in ``frames`` one per write (after ``prefix``, a vnet header,
        if given); the number written."""
        fd, write, writev, counters = self._fd, os.write, os.writev, self._counters
        sent = 0
        for frame in frames:
            try:
                if prefix is not None:
                    writev(fd, (prefix, frame[offset:] if offset else frame))
                else:
                    write(fd, frame[offset:] if offset else frame)
            except (BlockingIOError, InterruptedError):
                counters["dropped_busy"] += 1
                continue
            except OSError:
                counters["dropped_error"] += 1
                continue
            sent += 1
        return sent

    def send_offload(self, data: bytes) -> bool:
        if not self._vnet:
            self._counters["dropped_offload"] += 1
            return False
        self._counters["sent_offloaded"] += 1
        if data[1]:  # a GSO type: a TCP super-frame, delivered whole or segmented by the kernel
            self._counters["sent_super_frames"] += 1
        return self._write(data, "sent_frames", vnet=False)

    def enable_offloads(self) -> None:
        """From now on read TCP super-frames and partial checksums as offloaded frames (needs vnet headers)."""
        if self._vnet and self._fd >= 0:
            set_offload(self._fd)

    def _write(self, data: bytes, counter: str, *, vnet: bool = True) -> bool:
        if self._fd < 0:
            self._counters["dropped_closed"] += 1
            return False
        try:
            if vnet and self._vnet:
                os.writev(self._fd, (VNET_NONE, data))
            else:
                os.write(self._fd, data)
        except (BlockingIOError, InterruptedError):
            self._counters["dropped_busy"] += 1
            return False
        except OSError:
            self._counters["dropped_error"] += 1
            return False
        self._counters[counter] += 1
        return True

    def on_frames(self, handler: FrameHandler | None) -> None:
        self._handler = handler
        self._watch()

    def on_frame_batch(self, handler: FrameBatchHandler | None) -> None:
        self._batch_handler = handler
        self._watch()

    def on_offload(self, handler: OffloadHandler | None) -> None:
        self._offload_handler = handler
        self._watch()

    def _watch(self) -> None:
        if self._fd < 0:
            return
        wanted = any(h is not None for h in (self._handler, self._batch_handler, self._offload_handler))
        if wanted and self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._fd, self._readable)
        elif not wanted and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop = None

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def close(self) -> None:
        if self._fd < 0:
            return
        self._handler = self._batch_handler = self._offload_handler = None
        self._watch()
        os.close(self._fd)
        self._fd = -1

    def _readable(self) -> None:
        """Read until the TAP is empty (at most :data:`RECEIVE_BATCH` frames; one after a silence, see
        :data:`QUIET_S`): a batch handler gets the finished frames in one call (offloaded ones, in between, go
        first to theirs), a frame handler one by one."""
        read, fd, vnet = os.read, self._fd, self._vnet
        size = VNET_HEADER_BYTES + MAX_OFFLOAD_FRAME if vnet else 65536
        counters = self._counters
        batch: list[bytes] = []
        received = 0
        now = time.monotonic()
        reads = 1 if now - self._last_readable >= QUIET_S else RECEIVE_BATCH
        self._last_readable = now
        for _ in range(reads):
            try:
                data = read(fd, size)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                counters["receive_errors"] += 1
                break
            received += 1
            if not vnet:
                batch.append(data)
            elif not data[0] & VNET_F_NEEDS_CSUM and not data[1]:  # a finished frame ("data valid" is a hint)
                batch.append(data[VNET_HEADER_BYTES:])
            elif self._offload_handler is not None:
                counters["received_offloaded"] += 1
                if batch:
                    self._hand_over(batch)
                    batch = []
                self._offload_handler(data)
            else:
                counters["dropped_offload"] += 1
        counters["received_frames"] += received
        if batch:
            self._hand_over(batch)

    def _hand_over(self, frames: list[bytes]) -> None:
        if self._batch_handler is not None:
            self._batch_handler(frames)
            return
        for frame in frames:
            if self._handler is None:  # a handler may stop receiving (a VM being deleted)
                return
            self._handler(frame)
