"""The sans-IO tunnel cores: the provider's end and the consumer's end of one VM's link.

:class:`ProviderTunnel` is fed the VM's frames, the consumer's datagrams and
the time; it returns the datagrams to send and queues what the node must do
(:class:`Rogue` reports, :class:`PauseVm`, :class:`ResumeVm`, :class:`DeleteVm`)
in :attr:`ProviderTunnel.actions`. It enforces: a frame whose source MAC is
not the VM's is dropped and counted as rogue; frames while the consumer is not
heard from are dropped and counted; a consumer gone longer than the grace
pauses the VM, and longer still deletes it. :class:`ConsumerLink` is the
consumer's end: datagrams from the provider in, frames for the gateway out.

Both ends send a keepalive every ``keepalive_s`` they sent nothing else, so each
hears the other at least that often and each side's NAT keeps (or, after
forgetting it, makes anew) its mapping; an end that stops hearing the other
for ``consumer_timeout_s`` asks for a fresh handshake (:class:`PathWatch`),
which finds another path (a relay, a new address) when the old one is gone.
Both take ``now`` from their caller. Touches nothing.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

from omerta_core.interfaces.vpn import TunnelState
from omerta_vpn import codec


class RoguePolicy(enum.Enum):
    """What the provider does once a VM has sent ``rogue_threshold`` rogue frames."""

    KILL = "kill"
    PAUSE = "pause"


class FramesMode(enum.Enum):
    """How frames larger than one datagram are treated."""

    #: The guest's MTU makes every frame fit; a larger one is dropped and counted.
    FIT = "fit"
    #: Larger frames are split into up to four datagrams and joined again.
    FRAGMENT = "fragment"


@dataclass(frozen=True)
class Timing:
    #: Each end sends a keepalive this often when it has nothing else to send.
    keepalive_s: float = 1.0
    #: Nothing heard from the consumer for this long: its session is not live, frames are dropped;
    #: either end hearing nothing for this long asks the transport for a new handshake (and again as often).
    consumer_timeout_s: float = 3.0
    #: Nothing heard for this long: the VM is paused (the lease's grace).
    lease_grace_s: float = 30.0
    #: Paused this long without the consumer coming back: the VM is deleted.
    delete_after_s: float = 60.0


@dataclass(frozen=True)
class Rogue:
    reason: str
    count: int
    action: str  # "none", "pause", "kill"


@dataclass(frozen=True)
class PauseVm:
    reason: str


@dataclass(frozen=True)
class ResumeVm:
    pass


@dataclass(frozen=True)
class DeleteVm:
    reason: str


Action = Rogue | PauseVm | ResumeVm | DeleteVm


class FrameRun(NamedTuple):
    """Finished frames in a row, each behind ``offset`` bytes of its item (for one ``send_batch``).

    A batch of whole-frame datagrams is handed on as it came, the frames not cut out of their datagrams
    (a copy of every frame saved); ``offset`` is then the tunnel header's size, else 0.
    """

    frames: list[bytes]
    offset: int

    def cut(self) -> list[bytes]:
        """The frames alone (a copy of each unless ``offset`` is 0)."""
        if not self.offset:
            return self.frames
        return [frame[self.offset :] for frame in self.frames]


@dataclass(slots=True)
class Received:
    """What a batch of datagrams carried: runs of finished frames and offloaded frames between them, in
    order; how many datagrams did not parse."""

    runs: list[FrameRun | codec.Offloaded]
    malformed: int
    offloaded: bool


_first_byte = itemgetter(0)

#: The longest wait between two reconnect requests while the other end stays silent (it doubles up to this).
MAX_RECONNECT_INTERVAL_S = 30.0


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


class PathWatch:
    """One end's view of the other: what it sent and heard when, its keepalives and its reconnect requests.

    Why both ends keep alive: a NAT that forgot its mapping only makes a new one for a packet
    going out. A provider that sent nothing while its consumer was unheard (it drops the VM's
    frames then) left its NAT closed to the consumer for good, and the tunnel died.
    """

    def __init__(self, tunnel: int, timing: Timing) -> None:
        self.tunnel = tunnel
        self.timing = timing
        self.last_sent = -math.inf
        self.last_heard: float | None = None
        self._next_reconnect = -math.inf
        self._reconnect_interval = timing.consumer_timeout_s

    def sent(self, now: float) -> None:
        self.last_sent = now

    def heard(self, now: float) -> None:
        self.last_heard = now
        self._next_reconnect = -math.inf
        self._reconnect_interval = self.timing.consumer_timeout_s

    def keepalive_due(self, now: float) -> bytes | None:
        """A keepalive to send now, if nothing else went to the other end for a keepalive interval."""
        if now - self.last_sent < self.timing.keepalive_s:
            return None
        self.last_sent = now
        return codec.encode_keepalive(self.tunnel)

    def reconnect_due(self, now: float) -> bool:
        """Whether to ask for a new handshake now: the other end, once heard, has been silent too long.

        First after ``consumer_timeout_s`` of silence, then after twice as long each time (up to
        :data:`MAX_RECONNECT_INTERVAL_S`): an end that is gone for good (a deleted VM's tunnel)
        costs a handshake now and then, not every few seconds.
        """
        if self.last_heard is None or now - self.last_heard < self.timing.consumer_timeout_s:
            return False
        if now < self._next_reconnect:
            return False
        self._next_reconnect = now + self._reconnect_interval
        self._reconnect_interval = min(2 * self._reconnect_interval, MAX_RECONNECT_INTERVAL_S)
        return True


class FrameCarrier:
    """One direction's frames to datagrams (whole, or fragments) and the other's back, with counters.

    Shared by both ends of a tunnel; ``sent`` and ``received`` name the counters of carried frames.
    """

    def __init__(
        self, tunnel: int, max_datagram: int, mode: FramesMode, counters: Counter[str], sent: str, received: str
    ) -> None:
        self.tunnel = tunnel
        self.max_datagram = max_datagram
        self.mode = mode
        self.counters = counters
        self.sent = sent
        self.received = received
        self._max_whole = max_datagram - codec.HEADER_BYTES
        self._frame_header = codec.encode_frame(tunnel, b"")
        self._frame_ids = 0
        self._offload_ids = 0
        self._reassembler = codec.Reassembler()
        self._offloads = codec.Reassembler(
            codec.MAX_PARTIAL_OFFLOADS, codec.VNET_HEADER_BYTES + codec.MAX_OFFLOAD_FRAME
        )

    def encode(self, frame: bytes) -> list[bytes]:
        """The datagrams carrying ``frame``: none (dropped and counted) when it cannot be carried."""
        if len(frame) <= self._max_whole:
            self.counters[self.sent] += 1
            return [codec.encode_frame(self.tunnel, frame)]
        if self.mode is FramesMode.FRAGMENT and len(frame) <= codec.MAX_FRAME:
            self._frame_ids += 1
            pieces = codec.encode_fragments(self.tunnel, self._frame_ids, frame, self.max_datagram)
            if pieces:
                self.counters[self.sent] += 1
                self.counters["fragmented_frames"] += 1
                return pieces
        self.counters["dropped_too_big"] += 1
        return []

    def encode_batch(self, frames: Sequence[bytes]) -> list[bytes]:
        """The datagrams carrying ``frames``, in order (:meth:`encode` of each, with frames that fit whole
        taking the short way)."""
        header = self._frame_header
        max_whole = self._max_whole
        datagrams: list[bytes] = []
        whole = 0
        for frame in frames:
            if len(frame) <= max_whole:
                datagrams.append(header + frame)
                whole += 1
            else:
                datagrams.extend(self.encode(frame))
        self.counters[self.sent] += whole
        return datagrams

    def encode_offload(self, data: bytes) -> list[bytes]:
        """The datagrams carrying ``data`` (a vnet header and its frame, e.g. a TCP super-frame)."""
        self._offload_ids += 1
        pieces = codec.encode_offload(self.tunnel, self._offload_ids, data, self.max_datagram)
        if pieces:
            self.counters[self.sent] += 1
            self.counters["offloaded_frames"] += 1
        else:
            self.counters["dropped_too_big"] += 1
        return pieces

    def receive(self, data: bytes) -> bytes | codec.Offloaded | None:
        """:meth:`decode` of the datagram ``data`` of this tunnel; raises only :class:`codec.CodecError`.

        A whole frame takes the short way: no decoded datagram is made for it.
        """
        if codec.MIN_FRAME_DATAGRAM <= len(data) <= codec.MAX_FRAME_DATAGRAM and data[0] == codec.KIND_FRAME:
            self.counters[self.received] += 1
            return data[codec.HEADER_BYTES :]
        return self.decode(codec.decode(data))

    def receive_batch(self, datas: Sequence[bytes]) -> Received:
        """:meth:`receive` of each datagram of ``datas`` (this tunnel's, in order), the frames in runs.

        A datagram that does not parse is counted in :attr:`Received.malformed` and skipped. A batch of whole
        frames alone (the usual one) is checked in C and handed on as it came: one run behind the header.
        """
        lowest, highest, kind = codec.MIN_FRAME_DATAGRAM, codec.MAX_FRAME_DATAGRAM, codec.KIND_FRAME
        header = codec.HEADER_BYTES
        if (
            datas
            and lowest <= min(lengths := set(map(len, datas)))
            and max(lengths) <= highest
            and set(map(_first_byte, datas)) == {kind}
        ):
            self.counters[self.received] += len(datas)
            return Received([FrameRun(list(datas), header)], 0, offloaded=False)
        received = Received([], 0, offloaded=False)
        runs = received.runs
        frames: list[bytes] = []
        whole = 0
        for data in datas:
            if lowest <= len(data) <= highest and data[0] == kind:
                frames.append(data[header:])
                whole += 1
                continue
            try:
                frame = self.decode(codec.decode(data))
            except codec.CodecError:
                received.malformed += 1
                continue
            if type(frame) is bytes:
                frames.append(frame)
            elif type(frame) is codec.Offloaded:
                if frames:
                    runs.append(FrameRun(frames, 0))
                    frames = []
                runs.append(frame)
                received.offloaded = True
        if frames:
            runs.append(FrameRun(frames, 0))
        self.counters[self.received] += whole
        return received

    def decode(self, datagram: codec.Datagram) -> bytes | codec.Offloaded | None:
        """The whole frame ``datagram`` completes, if any (keepalives carry none)."""
        if type(datagram) is codec.Frame:
            self.counters[self.received] += 1
            return datagram.frame
        if type(datagram) is codec.OffloadPiece:
            data = datagram.piece if datagram.count == 1 else self._offloads.add(datagram)
            self.counters["dropped_offload_pieces"] = self._offloads.dropped
            if data is None:
                return None
            try:
                codec.check_offloaded(data)
            except codec.CodecError:
                self.counters["dropped_bad_offload"] += 1
                return None
            self.counters[self.received] += 1
            return codec.Offloaded(data)
        if type(datagram) is codec.Fragment:
            frame = self._reassembler.add(datagram)
            self.counters["dropped_fragments"] = self._reassembler.dropped
            if frame is not None:
                self.counters[self.received] += 1
            return frame
        return None


class ProviderTunnel:
    """One VM's tunnel on its provider."""

    def __init__(
        self,
        vm_id: str,
        vm_mac: str,
        *,
        max_datagram: int,
        now: float,
        mode: FramesMode = FramesMode.FIT,
        timing: Timing | None = None,
        policy: RoguePolicy = RoguePolicy.KILL,
        rogue_threshold: int = 1,
    ) -> None:
        self.vm_id = vm_id
        self.tunnel = codec.tunnel_id(vm_id)
        self.vm_mac = mac_bytes(vm_mac)
        self.max_datagram = max_datagram
        self.mode = mode
        self.timing = timing or Timing()
        self.policy = policy
        self.rogue_threshold = rogue_threshold
        self.counters: Counter[str] = Counter()
        self.actions: list[Action] = []
        self.opened = now
        #: When the VM became ready: the consumer's grace runs from then (a boot may take longer).
        self.ready_at: float | None = None
        self.watch = PathWatch(self.tunnel, self.timing)
        self.paused_at: float | None = None
        self.acted_on_rogue = False
        self.deleting = False
        self.carrier = FrameCarrier(
            self.tunnel, max_datagram, mode, self.counters, "frames_to_consumer", "frames_to_vm"
        )

    # -- state ---------------------------------------------------------------------

    @property
    def last_heard(self) -> float | None:
        return self.watch.last_heard

    def live(self, now: float) -> bool:
        last_heard = self.watch.last_heard
        return last_heard is not None and now - last_heard < self.timing.consumer_timeout_s

    def state(self, now: float) -> TunnelState:
        if self.deleting:
            return TunnelState.CLOSED
        if self.paused_at is not None:
            return TunnelState.PAUSED
        return TunnelState.UP if self.live(now) else TunnelState.WAITING

    # -- frames from the VM --------------------------------------------------------

    def from_vm(self, frame: bytes, now: float) -> list[bytes]:
        """The datagrams that carry ``frame`` to the consumer (none if it is dropped)."""
        return self._carried(self.carrier.encode(frame), now) if self._admit(frame[6:12], now) else []

    def from_vm_batch(self, frames: Sequence[bytes], now: float) -> list[bytes]:
        """The datagrams that carry ``frames`` (read together from the VM, in order) to the consumer.

        Every frame is checked as :meth:`from_vm` checks it. While the consumer is live, a run of frames
        from the VM's MAC is encoded together; from the first frame that fails the check on, each frame
        goes through :meth:`from_vm`, and none after one that has the VM deleted.
        """
        if self.paused_at is not None or not self.live(now):
            return self._one_by_one(frames, 0, now)
        vm_mac = self.vm_mac
        for index, frame in enumerate(frames):
            if frame[6:12] != vm_mac:
                datagrams = self.carrier.encode_batch(frames[:index]) if index else []
                return self._carried(datagrams, now) + self._one_by_one(frames, index, now)
        return self._carried(self.carrier.encode_batch(frames), now)

    def _one_by_one(self, frames: Sequence[bytes], start: int, now: float) -> list[bytes]:
        datagrams: list[bytes] = []
        for frame in frames[start:]:
            if self.deleting:
                self.counters["dropped_deleting"] += 1
                continue
            datagrams += self.from_vm(frame, now)
        return datagrams

    def from_vm_offload(self, data: bytes, now: float) -> list[bytes]:
        """The datagrams that carry ``data`` (a vnet header and a frame, e.g. a TCP super-frame) to the consumer."""
        source = codec.VNET_HEADER_BYTES + 6
        return (
            self._carried(self.carrier.encode_offload(data), now) if self._admit(data[source : source + 6], now) else []
        )

    def _carried(self, datagrams: list[bytes], now: float) -> list[bytes]:
        if datagrams:
            self.watch.sent(now)
        return datagrams

    def _admit(self, source_mac: bytes, now: float) -> bool:
        """Whether a frame from ``source_mac`` may go to the consumer now; refusals are counted, rogues acted on."""
        if source_mac != self.vm_mac:
            self.counters["rogue_foreign_mac"] += 1
            self._rogue("foreign-source-mac")
            return False
        if self.paused_at is not None or not self.live(now):
            self.counters["dropped_no_session"] += 1
            return False
        return True

    def _rogue(self, reason: str) -> None:
        count = self.counters["rogue_frames"] = self.counters["rogue_frames"] + 1
        action = "none"
        if count >= self.rogue_threshold and not self.acted_on_rogue:
            self.acted_on_rogue = True
            action = self.policy.value
            if self.policy is RoguePolicy.KILL:
                self.deleting = True
                self.actions.append(DeleteVm("rogue"))
            elif self.paused_at is None:
                self.paused_at = math.inf  # paused for good: the consumer's return does not resume it
                self.actions.append(PauseVm("rogue"))
        # report the first rogue frame, the one acted on, then every power of two: bounded, still telling
        if count == 1 or action != "none" or count & (count - 1) == 0:
            self.actions.append(Rogue(reason, count, action))

    # -- datagrams from the consumer -----------------------------------------------

    def from_consumer(self, datagram: codec.Datagram, now: float) -> bytes | codec.Offloaded | None:
        """The frame to hand to the VM, if ``datagram`` completes one."""
        self._heard(now)
        return self.carrier.decode(datagram)

    def receive(self, data: bytes, now: float) -> bytes | codec.Offloaded | None:
        """:meth:`from_consumer` of the undecoded datagram ``data``; raises only :class:`codec.CodecError`,
        and then the consumer is not heard."""
        frame = self.carrier.receive(data)
        self._heard(now)
        return frame

    def _heard(self, now: float) -> None:
        self.watch.heard(now)
        if self.paused_at is not None and self.paused_at != math.inf and not self.deleting:
            self.paused_at = None
            self.actions.append(ResumeVm())

    # -- time ----------------------------------------------------------------------

    def keepalive_due(self, now: float) -> bytes | None:
        """A keepalive for the consumer (see :class:`PathWatch`); none once the VM is being deleted."""
        return None if self.deleting else self.watch.keepalive_due(now)

    def reconnect_due(self, now: float) -> bool:
        return not self.deleting and self.watch.reconnect_due(now)

    def vm_ready(self, now: float) -> None:
        """The VM finished booting: from now on a missing consumer costs it its grace."""
        if self.ready_at is None:
            self.ready_at = now

    def tick(self, now: float) -> None:
        if self.deleting or self.ready_at is None:
            return
        since = self.last_heard if self.last_heard is not None else self.ready_at
        if self.paused_at is None and now - since >= self.timing.lease_grace_s:
            self.paused_at = now
            self.actions.append(PauseVm("consumer-gone"))
        elif self.paused_at is not None and now - self.paused_at >= self.timing.delete_after_s:
            self.deleting = True
            self.actions.append(DeleteVm("consumer-gone"))

    def next_deadline(self) -> float:
        if self.deleting or self.ready_at is None:
            return math.inf
        if self.paused_at is not None:
            return self.paused_at + self.timing.delete_after_s
        since = self.last_heard if self.last_heard is not None else self.ready_at
        return since + self.timing.lease_grace_s


class ConsumerLink:
    """The consumer's end of one VM's tunnel: frames for its gateway, keepalives for the provider."""

    def __init__(
        self, vm_id: str, *, max_datagram: int, mode: FramesMode = FramesMode.FIT, timing: Timing | None = None
    ) -> None:
        self.vm_id = vm_id
        self.tunnel = codec.tunnel_id(vm_id)
        self.max_datagram = max_datagram
        self.mode = mode
        self.timing = timing or Timing()
        self.counters: Counter[str] = Counter()
        self.watch = PathWatch(self.tunnel, self.timing)
        self.carrier = FrameCarrier(self.tunnel, max_datagram, mode, self.counters, "frames_to_vm", "frames_from_vm")
        #: The provider sent an offloaded frame, so its port takes them too (``OffloadPort``): from now on
        #: the gateway may hand this end TCP super-frames for the VM.
        self.provider_takes_offloads = False

    def from_gateway(self, frame: bytes, now: float) -> list[bytes]:
        datagrams = self.carrier.encode(frame)
        if datagrams:
            self.watch.sent(now)
        return datagrams

    def from_gateway_offload(self, data: bytes, now: float) -> list[bytes]:
        """The datagrams that carry ``data`` (a vnet header and a frame, e.g. a TCP super-frame) to the VM."""
        if not self.provider_takes_offloads:
            self.counters["dropped_offload"] += 1
            return []
        datagrams = self.carrier.encode_offload(data)
        if datagrams:
            self.watch.sent(now)
        return datagrams

    def from_gateway_batch(self, frames: Sequence[bytes], now: float) -> list[bytes]:
        """The datagrams carrying ``frames`` (read together from the gateway, in order)."""
        datagrams = self.carrier.encode_batch(frames)
        if datagrams:
            self.watch.sent(now)
        return datagrams

    def from_provider(self, datagram: codec.Datagram, now: float) -> bytes | codec.Offloaded | None:
        self.watch.heard(now)
        frame = self.carrier.decode(datagram)
        if type(frame) is codec.Offloaded:
            self.provider_takes_offloads = True
        return frame

    def receive(self, data: bytes, now: float) -> bytes | codec.Offloaded | None:
        """:meth:`from_provider` of the undecoded datagram ``data``; raises only :class:`codec.CodecError`,
        and then the provider is not heard."""
        frame = self.carrier.receive(data)
        self.watch.heard(now)
        if type(frame) is codec.Offloaded:
            self.provider_takes_offloads = True
        return frame

    def receive_batch(self, datas: Sequence[bytes], now: float) -> Received:
        """:meth:`receive` of each of ``datas`` (datagrams of this tunnel that arrived together, in order):
        the frames in runs, the datagrams that did not parse counted; the provider is heard if any did."""
        received = self.carrier.receive_batch(datas)
        if received.malformed < len(datas):
            self.watch.heard(now)
        if received.offloaded:
            self.provider_takes_offloads = True
        return received

    def keepalive_due(self, now: float) -> bytes | None:
        """A keepalive to send now, if nothing else went to the provider for a keepalive interval."""
        return self.watch.keepalive_due(now)

    def reconnect_due(self, now: float) -> bool:
        return self.watch.reconnect_due(now)
