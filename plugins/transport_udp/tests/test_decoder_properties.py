"""Random and mutated bytes never crash the decoder or the core; every rejected packet is counted."""

from __future__ import annotations

import nacl.signing
from hypothesis import given, settings
from hypothesis import strategies as st
from omerta_transport_udp import wire
from omerta_transport_udp.core import TransportCore
from omerta_transport_udp.reliable import ReliableLink

from omerta_core.interfaces.common import Endpoint
from omerta_core.interfaces.transport import Delivery

SOURCE = Endpoint("198.18.7.7", 7)
CORE = TransportCore(nacl.signing.SigningKey.generate())


@given(st.binary(max_size=2000))
def test_frame_decoder_only_raises_wire_error(data: bytes) -> None:
    try:
        frames = wire.decode_frames(data)
    except wire.WireError:
        return
    link = ReliableLink(1200)
    for frame in frames:
        if isinstance(frame, wire.ReliableFrame):
            link.on_frame(frame)
        elif isinstance(frame, wire.AckFrame):
            link.on_ack(frame, 0.0)


@given(st.binary(max_size=1500))
def test_core_survives_random_packets(data: bytes) -> None:
    before = sum(CORE.counters.values())
    CORE.receive(data, SOURCE, 1.0)
    assert sum(CORE.counters.values()) > before
    assert not any(e for e in CORE.events if type(e).__name__ == "Delivered")
    CORE.events.clear()
    CORE.outputs.clear()


@given(kind=st.sampled_from(range(0x10, 0x20)), body=st.binary(max_size=300))
def test_core_survives_packets_with_a_session_prefix(kind: int, body: bytes) -> None:
    CORE.receive(bytes([kind]) + body, SOURCE, 1.0)
    assert not any(type(e).__name__ == "Delivered" for e in CORE.events)
    CORE.events.clear()
    CORE.outputs.clear()


@settings(max_examples=200)
@given(st.data())
def test_mutated_real_packets_never_deliver(data: st.DataObject) -> None:
    a = TransportCore(nacl.signing.SigningKey.generate())
    b = TransportCore(nacl.signing.SigningKey.generate())
    b.register_channel("x")
    a.add_peer(b.peer_id, [SOURCE], 0.0)
    b.receive(a.outputs.pop()[1], SOURCE, 0.0)
    a.receive(b.outputs.pop()[1], SOURCE, 0.0)
    a.outputs.clear()
    a.send(b.peer_id, "x", b"secret", Delivery.DATAGRAM, 0.0)
    packet = bytearray(a.outputs.pop()[1])
    positions = data.draw(st.lists(st.integers(0, len(packet) - 1), min_size=1, max_size=4, unique=True))
    for position in positions:
        packet[position] ^= data.draw(st.integers(1, 255))
    b.receive(bytes(packet), SOURCE, 0.0)
    assert not any(type(e).__name__ == "Delivered" for e in b.events)
