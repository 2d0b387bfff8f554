"""Replays of the inputs that fuzzing found (issue 12): each is refused, counted and bounded.

An authenticated peer sends crafted plaintext over a real session; the receiver must refuse an
oversized message at its first fragment, hold a bounded number of bytes per peer, refuse packets
and frames above its MTU, and spend bounded work on any acknowledgement.
"""

from __future__ import annotations

import struct
import time
from collections import Counter

from omerta_transport_udp import wire
from omerta_transport_udp.core import TransportCore
from omerta_transport_udp.reliable import MAX_BUFFERED_BYTES, MAX_EARLY_BYTES, MAX_MESSAGE_BYTES, ReliableLink

from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.transport import Delivery


def sealed(sender: TransportCore, peer: PeerId, plaintext: bytes) -> bytes:
    """A data packet on ``sender``'s live session to ``peer``: authenticated, whatever it says."""
    keypair = sender.peers[peer].current
    assert keypair is not None
    return sender._seal(keypair, plaintext)


def first(seq: int, data: bytes, total: int, *, last: bool = False) -> bytes:
    flags = wire.FLAG_FIRST | (wire.FLAG_LAST if last else 0)
    return wire.encode_reliable_frame(seq, flags, data, total, b"chat")


def middle(seq: int, data: bytes, *, last: bool = False) -> bytes:
    return wire.encode_reliable_frame(seq, wire.FLAG_LAST if last else 0, data)


def receiver_link(pair) -> ReliableLink:
    return pair.b.peers[pair.a.peer_id].link


def test_message_announcing_4_gib_is_refused_at_its_first_fragment(pair) -> None:
    pair.connect()
    room = pair.b.settings.max_plaintext - wire.RELIABLE_FRAME_HEADER
    chunk = b"\xaa" * room
    src = pair.addr[id(pair.a)]
    pair.b.receive(sealed(pair.a, pair.b.peer_id, first(0, chunk[:1000], 2**32 - 1)), src, 0.0)
    # the replay sent 55,925 follow-on fragments; a few thousand show the same thing
    for seq in range(1, 3000):
        pair.b.receive(sealed(pair.a, pair.b.peer_id, middle(seq, chunk)), src, 0.0)
        assert receiver_link(pair).buffered_bytes == 0
    pair.b.receive(sealed(pair.a, pair.b.peer_id, middle(3000, chunk, last=True)), src, 0.0)
    assert pair.b.counters["dropped_reliable_refused"] == 1
    # the stream goes on: the next message is delivered
    pair.b.receive(sealed(pair.a, pair.b.peer_id, first(3001, b"next", 4, last=True)), src, 0.0)
    assert [d.data for d in pair.delivered(pair.b)] == [b"next"]


def test_message_of_exactly_the_limit_announced_is_not_refused() -> None:
    link = ReliableLink(1200)
    link.on_frame(wire.ReliableFrame(0, wire.FLAG_FIRST, b"x", MAX_MESSAGE_BYTES, "chat"))
    assert link.counters["dropped_reliable_refused"] == 0
    assert link.buffered_bytes == 1


def test_fragments_beyond_the_announced_total_end_the_message() -> None:
    link = ReliableLink(1200)
    link.on_frame(wire.ReliableFrame(0, wire.FLAG_FIRST, b"x" * 100, 150, "chat"))
    for seq in range(1, 50):
        link.on_frame(wire.ReliableFrame(seq, 0, b"y" * 100))
    assert link.buffered_bytes == 0
    assert link.counters["dropped_reliable_malformed"] == 1
    assert link.on_frame(wire.ReliableFrame(50, wire.FLAG_FIRST | wire.FLAG_LAST, b"ok", 2, "chat")) == [
        ("chat", b"ok")
    ]


def test_out_of_order_fragments_are_bounded_in_bytes() -> None:
    # The replay: 1,023 out-of-order 60 KB fragments (58.5 MiB held). A link that allowed such frames
    # (a 64 KiB MTU) still holds at most MAX_EARLY_BYTES of them.
    link = ReliableLink(65535)
    for seq in range(1, 1024):
        link.on_frame(wire.ReliableFrame(seq, 0, b"z" * 60_000))
        assert link.buffered_bytes <= MAX_EARLY_BYTES
    assert link.counters["dropped_reliable_window"] > 0


def test_buffered_bytes_per_peer_never_exceed_the_bound() -> None:
    link = ReliableLink(65535)
    link.on_frame(wire.ReliableFrame(0, wire.FLAG_FIRST, b"a" * 60_000, MAX_MESSAGE_BYTES, "chat"))
    for seq in range(1, 1024):
        link.on_frame(wire.ReliableFrame(seq, 0, b"b" * 60_000))
        assert link.buffered_bytes <= MAX_BUFFERED_BYTES


def test_packet_above_the_mtu_is_refused_before_decryption(pair) -> None:
    # The replay: a 60,047-byte frame delivered with MTU 1280.
    pair.connect()
    packet = sealed(pair.a, pair.b.peer_id, first(0, b"q" * 60_000, 60_000, last=True))
    pair.b.receive(packet, pair.addr[id(pair.a)], 0.0)
    assert pair.delivered(pair.b) == []
    assert pair.b.counters["dropped_oversize"] == 1


def test_reliable_frame_above_the_link_frame_size_is_refused() -> None:
    link = ReliableLink(1200)
    assert link.on_frame(wire.ReliableFrame(0, wire.FLAG_FIRST | wire.FLAG_LAST, b"q" * 1200, 1200, "chat")) == []
    assert link.counters["dropped_reliable_oversize"] == 1
    assert link.buffered_bytes == 0


def worst_ack(next_expected: int) -> bytes:
    """One ack frame of 32 maximal ranges, as the fuzzer sent them."""
    ranges = [(next_expected + 1 + i * 65_536, 65_535) for i in range(wire.MAX_ACK_RANGES)]
    return wire.encode_ack_frame(next_expected, ranges)


def test_packet_of_many_ack_frames_is_refused(pair) -> None:
    # The replay: 321 ack frames x 32 ranges; at MTU 1280, six fit. One ack per packet is allowed.
    pair.connect()
    acks = worst_ack(0) * 6
    assert len(acks) <= pair.b.settings.max_plaintext
    pair.b.receive(sealed(pair.a, pair.b.peer_id, acks), pair.addr[id(pair.a)], 0.0)
    assert pair.b.counters["dropped_malformed_frame"] == 1


def test_overlapping_ack_ranges_are_refused() -> None:
    frame = wire.encode_ack_frame(0, [(10, 100), (20, 100)])
    try:
        wire.decode_frames(frame)
    except wire.WireError:
        return
    raise AssertionError("overlapping ack ranges were accepted")


class CountingDict(dict[int, object]):
    pops = 0

    def pop(self, *args: object) -> object:  # type: ignore[override]
        CountingDict.pops += 1
        return super().pop(*args)


def test_ack_work_is_bounded_by_the_send_window(pair) -> None:
    pair.connect()
    for i in range(300):
        pair.a.send(pair.b.peer_id, "chat", b"m%d" % i, Delivery.RELIABLE, 0.0)
    pair.a.flush(0.0)
    pair.a.outputs.clear()
    link = pair.a.peers[pair.b.peer_id].link
    link._in_flight = CountingDict(link._in_flight)  # type: ignore[assignment]
    CountingDict.pops = 0
    for frame in (worst_ack(0), wire.encode_ack_frame(0, [(1 + i * 8, 7) for i in range(wire.MAX_ACK_RANGES)])):
        (ack,) = wire.decode_frames(frame)
        assert isinstance(ack, wire.AckFrame)
        link.on_ack(ack, 0.1)
    # before the fix: 32 ranges x 1,024 lookups each; now at most one per fragment in flight
    assert CountingDict.pops <= 2 * 256


def test_worst_ack_packet_costs_little_cpu(pair) -> None:
    # The replay: a 1.2 KB packet took 4.3 ms of CPU in on_ack. Now it is one bounded ack frame.
    pair.connect()
    for i in range(300):
        pair.a.send(pair.b.peer_id, "chat", b"m%d" % i, Delivery.RELIABLE, 0.0)
    pair.a.flush(0.0)
    packets = [sealed(pair.b, pair.a.peer_id, worst_ack(0)) for _ in range(200)]
    source = pair.addr[id(pair.b)]
    started = time.process_time()
    for packet in packets:
        pair.a.receive(packet, source, 0.0)
    per_packet = (time.process_time() - started) / len(packets)
    assert per_packet < 0.0005, f"{per_packet * 1000:.2f} ms of CPU per ack packet"


def test_frames_per_packet_are_bounded() -> None:
    frame = struct.pack("<BQBH", wire.FRAME_RELIABLE, 1, 0, 0)
    try:
        wire.decode_frames(frame * (wire.MAX_FRAMES_PER_PACKET + 1))
    except wire.WireError:
        return
    raise AssertionError("a packet of too many frames was accepted")


def test_link_counters_reach_the_core(pair) -> None:
    pair.connect()
    assert isinstance(receiver_link(pair).counters, Counter)
    assert receiver_link(pair).counters is pair.b.counters
