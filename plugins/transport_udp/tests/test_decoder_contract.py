"""The udp wire decoders raise only ``WireError``; the core never raises on a received packet.

Random bytes and mutations of real packets and real frame sequences (``omerta_core.fuzz``), both
as unauthenticated datagrams and as plaintext sealed on a live session (a peer sending garbage).
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from omerta_transport_udp import wire
from omerta_transport_udp.reliable import MAX_BUFFERED_BYTES

from omerta_core.fuzz import mutate, only_raises
from omerta_core.interfaces.common import Endpoint
from omerta_core.interfaces.transport import Delivery

from .conftest import Pair

A = Endpoint("198.18.0.1", 7700)
DECODERS = [
    wire.decode_frames,
    wire.decode_handshake_init,
    wire.decode_handshake_response,
    wire.decode_cookie_reply,
    wire.decode_data_header,
    wire.decode_identify,
]


def live_pair() -> tuple[Pair, list[bytes], list[bytes]]:
    """A connected pair, the packets of its handshake and traffic, and the plaintexts those carried."""
    pair = Pair()
    pair.a.add_peer(pair.b.peer_id, [pair.addr[id(pair.b)]], 0.0)
    pair.a.identify_request(pair.addr[id(pair.b)])
    pair.pump()
    pair.a.send(pair.b.peer_id, "chat", b"hello" * 50, Delivery.RELIABLE, 0.0)
    pair.a.send(pair.b.peer_id, "ctl", bytes(3000), Delivery.RELIABLE, 0.0)
    pair.a.send(pair.b.peer_id, "chat", b"dgram", Delivery.DATAGRAM, 0.0)
    pair.pump()
    plaintexts = [
        wire.encode_reliable_frame(0, wire.FLAG_FIRST | wire.FLAG_LAST, b"x" * 40, 40, b"chat"),
        wire.encode_ack_frame(3, [(5, 2), (9, 4)]) + wire.encode_reliable_frame(7, 0, b"y" * 100),
        wire.encode_datagram_frame(wire.channel_tag("chat"), b"payload"),
    ]
    return pair, [p for _, p in pair.captured], plaintexts


PAIR, PACKETS, PLAINTEXTS = live_pair()


@given(st.binary(max_size=1500))
def test_every_wire_decoder_on_random_bytes(data: bytes) -> None:
    for decode in DECODERS:
        only_raises(wire.WireError, lambda decode=decode: decode(data))


@given(st.sampled_from(PACKETS + PLAINTEXTS), st.randoms(use_true_random=False))
def test_every_wire_decoder_on_mutated_packets_and_frames(valid: bytes, rng: random.Random) -> None:
    data = mutate(valid, rng)
    for decode in DECODERS:
        only_raises(wire.WireError, lambda decode=decode: decode(data))


@settings(max_examples=200)
@given(st.sampled_from(PACKETS), st.randoms(use_true_random=False))
def test_core_takes_mutated_packets_without_raising(packet: bytes, rng: random.Random) -> None:
    before = PAIR.b.counters["received_packets"]
    PAIR.b.receive(mutate(packet, rng), A, 1.0)
    assert PAIR.b.counters["received_packets"] == before + 1
    PAIR.b.outputs.clear()
    PAIR.b.events.clear()


@settings(max_examples=300)
@given(st.lists(st.sampled_from(PLAINTEXTS), min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_authenticated_garbage_is_dropped_or_delivered_and_bounded(frames: list[bytes], rng: random.Random) -> None:
    """A peer with a real session sends mutated frame sequences: nothing raises, buffers stay bounded."""
    keypair = PAIR.a.peers[PAIR.b.peer_id].current
    assert keypair is not None
    plaintext = mutate(b"".join(frames), rng)[: PAIR.b.settings.max_plaintext]
    PAIR.b.receive(PAIR.a._seal(keypair, plaintext), A, 1.0)
    PAIR.b.flush(1.0)
    assert PAIR.b.peers[PAIR.a.peer_id].link.buffered_bytes <= MAX_BUFFERED_BYTES
    PAIR.b.outputs.clear()
    PAIR.b.events.clear()
