"""Relay datagram encoding: every message round-trips; anything else raises RelayWireError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from omerta_transport_relay import wire

from omerta_core.identity import Identity
from omerta_core.interfaces.common import Endpoint

A = Identity.generate().peer_id
TXID = bytes(range(12))

MESSAGES = [
    wire.Allocate(TXID, bytes(16), A, bytes(64)),
    wire.Challenge(TXID, b"n" * 16),
    wire.Allocated(TXID, 30, 4001, Endpoint("198.18.3.2", 20000)),
    wire.Allocated(TXID, 30, 0, Endpoint("fd00:1:3::2", 9)),
    wire.Refused(TXID, wire.RefusalReason.FULL),
    wire.Send(A, b"\x14opaque"),
    wire.Data(A, b"\x14opaque"),
    wire.NoRoute(A),
    wire.ProbeMe(TXID),
    wire.Probed(TXID),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: wire.Message) -> None:
    encoded = wire.encode(message)
    assert wire.is_relay_datagram(encoded)
    assert wire.decode(encoded) == message


def test_relay_datagrams_never_look_like_transport_or_stun_packets() -> None:
    for message in MESSAGES:
        first = wire.encode(message)[0]
        assert not 0x10 <= first <= 0x1F
        assert first & 0xC0  # STUN messages start with two zero bits


@pytest.mark.parametrize("data", [b"", b"\xa1short", b"\xa5" + bytes(32), b"\xa4" + TXID + b"\x09", b"\xaf"])
def test_malformed_datagrams_raise(data: bytes) -> None:
    with pytest.raises(wire.RelayWireError):
        wire.decode(data)


@given(st.sampled_from(list(wire.Kind)), st.binary(max_size=200))
def test_decode_raises_only_relay_wire_error(kind: wire.Kind, body: bytes) -> None:
    try:
        message = wire.decode(bytes([kind]) + body)
    except wire.RelayWireError:
        return
    assert wire.encode(message)[0] == kind
