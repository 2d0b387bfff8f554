"""Reliable, ordered, fragmented messages over one peer link (sans-IO).

One sequence space per link numbers fragments. The sender keeps a window of
fragments in flight, retransmits on timeout with exponential backoff (and
early, once a later fragment is selectively acknowledged), and estimates the
round-trip time from first transmissions only. The receiver drops duplicates,
buffers a window of early fragments, delivers messages in order (so each
channel is in order) and acknowledges cumulatively plus selective ranges.
Whatever a peer sends, the receiver holds at most ``MAX_BUFFERED_BYTES`` for it
(an oversized message is refused at its first fragment) and an acknowledgement
costs work bounded by the send window. Pure: ``now`` is passed in; touches nothing.
"""

from __future__ import annotations

from collections import Counter, deque

from omerta_transport_udp import wire
from omerta_transport_udp.errors import MessageTooLargeError, SendQueueFullError

#: Largest message accepted for sending and reassembly (the issue asks for at least 1 MiB).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: Fragments in flight per link; about 300 KiB at the default MTU, below socket buffers.
SEND_WINDOW = 256
#: Sequence numbers ahead of the next expected one that a receiver buffers.
RECEIVE_WINDOW = 1024
#: Bytes of early (out-of-order) fragments a receiver holds per link: a full receive window of
#: full-size fragments at the default MTU (1.2 MiB) fits; fragments beyond it are dropped unacked,
#: so the sender retransmits them once the gap fills.
MAX_EARLY_BYTES = 2 * 1024 * 1024
#: What one link may hold for a peer at most: the message being reassembled plus the early fragments.
MAX_BUFFERED_BYTES = MAX_MESSAGE_BYTES + MAX_EARLY_BYTES
#: Bytes a link accepts into its send queue before :class:`SendQueueFullError`.
MAX_QUEUED_BYTES = 64 * 1024 * 1024
INITIAL_RTO_S = 1.0
MIN_RTO_S = 0.2
MAX_RTO_S = 8.0


class _Message:
    __slots__ = ("channel", "data", "unacked")

    def __init__(self, channel: bytes, data: bytes) -> None:
        self.channel = channel
        self.data = data
        self.unacked = 0


class Fragment:
    __slots__ = ("deadline", "first", "last", "length", "message", "offset", "retries", "sent_at", "seq")

    def __init__(self, seq: int, message: _Message, offset: int, length: int, first: bool, last: bool) -> None:
        self.seq = seq
        self.message = message
        self.offset = offset
        self.length = length
        self.first = first
        self.last = last
        self.sent_at = 0.0
        self.deadline = 0.0
        self.retries = -1  # -1: never sent

    def encode(self) -> bytes:
        msg = self.message
        flags = (wire.FLAG_FIRST if self.first else 0) | (wire.FLAG_LAST if self.last else 0)
        data = msg.data[self.offset : self.offset + self.length]
        return wire.encode_reliable_frame(self.seq, flags, data, len(msg.data), msg.channel)


class ReliableLink:
    """Both directions of the reliable stream between this node and one peer incarnation."""

    def __init__(self, max_frame_bytes: int, counters: Counter[str] | None = None) -> None:
        self.max_frame_bytes = max_frame_bytes
        #: What the receiving side dropped and why (the core passes its own, so ``omerta status`` shows them).
        self.counters: Counter[str] = Counter() if counters is None else counters
        # sending
        self._messages: deque[_Message] = deque()
        self._unsent: deque[Fragment] = deque()
        self._in_flight: dict[int, Fragment] = {}
        self._next_seq = 0
        self._queued_bytes = 0
        self._next_deadline = float("inf")
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.rto = INITIAL_RTO_S
        self.retransmits = 0
        # receiving
        self.expected = 0
        self._early: dict[int, wire.ReliableFrame] = {}
        self._early_bytes = 0
        self._partial: list[bytes] = []
        self._partial_channel = ""
        self._partial_total = 0
        self._partial_size = 0
        #: The message being received was refused (too large or malformed): drop its fragments up to its last.
        self._discarding = False
        self.ack_pending = False

    # -- sending ----------------------------------------------------------------

    def queue(self, channel: str, data: bytes) -> None:
        if len(data) > MAX_MESSAGE_BYTES:
            raise MessageTooLargeError(f"reliable messages are at most {MAX_MESSAGE_BYTES} bytes, got {len(data)}")
        if self._queued_bytes + len(data) > MAX_QUEUED_BYTES:
            raise SendQueueFullError(f"send queue holds {self._queued_bytes} bytes already")
        message = _Message(wire.check_channel_name(channel), data)
        self._messages.append(message)
        self._queued_bytes += len(data)
        self._fragment(message)

    def _fragment(self, message: _Message) -> None:
        offset = 0
        total = len(message.data)
        first = True
        while first or offset < total:
            room = self.max_frame_bytes - wire.RELIABLE_FRAME_HEADER
            if first:
                room -= wire.FIRST_FRAGMENT_EXTRA + len(message.channel)
            length = min(room, total - offset)
            last = offset + length >= total
            self._unsent.append(Fragment(self._next_seq, message, offset, length, first, last))
            self._next_seq += 1
            message.unacked += 1
            offset += length
            first = False

    @property
    def unacked(self) -> int:
        return len(self._in_flight) + len(self._unsent)

    @property
    def max_retries(self) -> int:
        return max((f.retries for f in self._in_flight.values()), default=0)

    def has_due(self, now: float) -> bool:
        if self._unsent and self._window_open():
            return True
        return now >= self._next_deadline

    def next_deadline(self) -> float:
        """When :meth:`due` next returns fragments without any input (``-inf``: now; ``inf``: never)."""
        if self._unsent and self._window_open():
            return float("-inf")
        if not self._in_flight:
            return float("inf")  # everything acknowledged: the retransmission timer is moot
        return self._next_deadline

    def _window_open(self) -> bool:
        if not self._in_flight:
            return True
        lowest = next(iter(self._in_flight))
        return self._unsent[0].seq < lowest + SEND_WINDOW

    def due(self, now: float) -> list[Fragment]:
        """Fragments to transmit now (retransmissions first); marks them sent."""
        out: list[Fragment] = []
        if now >= self._next_deadline:
            next_deadline = float("inf")
            for fragment in self._in_flight.values():
                if fragment.deadline <= now:
                    self._mark_sent(fragment, now)
                    self.retransmits += 1
                    out.append(fragment)
                next_deadline = min(next_deadline, fragment.deadline)
            self._next_deadline = next_deadline
        while self._unsent and self._window_open():
            fragment = self._unsent.popleft()
            self._in_flight[fragment.seq] = fragment
            self._mark_sent(fragment, now)
            self._next_deadline = min(self._next_deadline, fragment.deadline)
            out.append(fragment)
        return out

    def _mark_sent(self, fragment: Fragment, now: float) -> None:
        fragment.retries += 1
        fragment.sent_at = now
        fragment.deadline = now + min(MAX_RTO_S, self.rto * (2**fragment.retries))

    def on_ack(self, ack: wire.AckFrame, now: float) -> None:
        """Apply one acknowledgement; costs O(fragments it acknowledges + ranges), whatever it claims."""
        newest_sample: float | None = None
        in_flight = self._in_flight
        while in_flight:
            seq = next(iter(in_flight))
            if seq >= ack.next_expected:
                break
            newest_sample = self._acked(in_flight.pop(seq), now, newest_sample)
        highest = -1
        if in_flight:
            # Only sequence numbers in flight can be acknowledged; they span at most SEND_WINDOW.
            lowest = next(iter(in_flight))
            ceiling = min(self._next_seq, lowest + SEND_WINDOW)
            for start, count in ack.ranges:
                highest = max(highest, start + count)
                for seq in range(max(start, lowest), min(start + count, ceiling)):
                    fragment = in_flight.pop(seq, None)
                    if fragment is not None:
                        newest_sample = self._acked(fragment, now, newest_sample)
        if newest_sample is not None:
            self._update_rtt(newest_sample)
        if highest >= 0 and self.srtt is not None:
            # A later fragment arrived, so earlier ones still missing after one RTT are likely lost.
            for fragment in in_flight.values():
                if fragment.seq >= highest:
                    break
                if now - fragment.sent_at > self.srtt * 1.25:
                    fragment.deadline = now
                    self._next_deadline = now
        while self._messages and self._messages[0].unacked == 0:
            self._queued_bytes -= len(self._messages.popleft().data)

    def _acked(self, fragment: Fragment, now: float, sample: float | None) -> float | None:
        fragment.message.unacked -= 1
        return now - fragment.sent_at if fragment.retries == 0 else sample

    def _update_rtt(self, sample: float) -> None:
        if self.srtt is None:
            self.srtt = sample
            self.rttvar = sample / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - sample)
            self.srtt = 0.875 * self.srtt + 0.125 * sample
        self.rto = min(MAX_RTO_S, max(MIN_RTO_S, self.srtt + 4 * self.rttvar))

    # -- receiving --------------------------------------------------------------

    @property
    def buffered_bytes(self) -> int:
        """Bytes held for the peer: early fragments and the message being reassembled."""
        return self._early_bytes + self._partial_size

    def on_frame(self, frame: wire.ReliableFrame) -> list[tuple[str, bytes]]:
        """Accept one fragment; return the messages it completes, in order."""
        seq = frame.seq
        self.ack_pending = True
        if seq < self.expected or seq in self._early:
            self.counters["reliable_duplicates"] += 1
            return []
        if seq >= self.expected + RECEIVE_WINDOW:
            self.counters["dropped_reliable_window"] += 1
            return []
        size = len(frame.data)
        if size + wire.RELIABLE_FRAME_HEADER > self.max_frame_bytes:
            self.counters["dropped_reliable_oversize"] += 1
            return []
        delivered: list[tuple[str, bytes]] = []
        if seq != self.expected:
            if self._early_bytes + size > MAX_EARLY_BYTES:
                self.counters["dropped_reliable_window"] += 1
                return []
            self._early[seq] = frame
            self._early_bytes += size
            return delivered
        message = self._assemble(frame)
        self.expected += 1
        if message is not None:
            delivered.append(message)
        while self.expected in self._early:
            early = self._early.pop(self.expected)
            self._early_bytes -= len(early.data)
            message = self._assemble(early)
            self.expected += 1
            if message is not None:
                delivered.append(message)
        return delivered

    def _assemble(self, frame: wire.ReliableFrame) -> tuple[str, bytes] | None:
        if frame.flags & wire.FLAG_FIRST:
            if self._partial or self._discarding:
                self.counters["dropped_reliable_malformed"] += 1  # the previous message never got its last fragment
            self._reset_partial()
            if frame.total > MAX_MESSAGE_BYTES:
                self.counters["dropped_reliable_refused"] += 1
                self._discarding = not frame.flags & wire.FLAG_LAST
                return None
            self._partial_channel = frame.channel
            self._partial_total = frame.total
        elif self._discarding:
            self._discarding = not frame.flags & wire.FLAG_LAST
            return None
        elif not self._partial:
            self.counters["dropped_reliable_malformed"] += 1
            return None
        self._partial_size += len(frame.data)
        if self._partial_size > self._partial_total:
            self.counters["dropped_reliable_malformed"] += 1
            self._reset_partial()
            self._discarding = not frame.flags & wire.FLAG_LAST
            return None
        self._partial.append(frame.data)
        if not frame.flags & wire.FLAG_LAST:
            return None
        parts, complete = self._partial, self._partial_size == self._partial_total
        self._reset_partial()
        if not complete:
            self.counters["dropped_reliable_malformed"] += 1
            return None
        return self._partial_channel, b"".join(parts)

    def _reset_partial(self) -> None:
        self._partial = []
        self._partial_size = 0
        self._discarding = False

    def take_ack(self) -> bytes | None:
        if not self.ack_pending:
            return None
        self.ack_pending = False
        ranges: list[tuple[int, int]] = []
        for seq in sorted(self._early):
            if ranges and ranges[-1][0] + ranges[-1][1] == seq:
                ranges[-1] = (ranges[-1][0], ranges[-1][1] + 1)
            elif len(ranges) < wire.MAX_ACK_RANGES:
                ranges.append((seq, 1))
            else:
                break
        return wire.encode_ack_frame(self.expected, ranges)

    # -- peer restart -----------------------------------------------------------

    def reset(self) -> None:
        """The peer restarted: renumber undelivered messages from 0 and forget what it sent."""
        pending = [m for m in self._messages if m.unacked > 0]
        self._messages = deque()
        self._unsent.clear()
        self._in_flight.clear()
        self._next_seq = 0
        self._next_deadline = float("inf")
        self._queued_bytes = 0
        for message in pending:
            message.unacked = 0
            self._messages.append(message)
            self._queued_bytes += len(message.data)
            self._fragment(message)
        self.expected = 0
        self._early.clear()
        self._early_bytes = 0
        self._reset_partial()
        self.ack_pending = False
