"""Relay and STUN decoders raise only their own error; the relay server and client never raise on a datagram.

Random bytes and mutations of real relay and STUN datagrams (``omerta_core.fuzz``).
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from omerta_transport_relay import client, server, stun, wire

from omerta_core.fuzz import mutate, only_raises
from omerta_core.identity import Identity
from omerta_core.interfaces.common import Endpoint

RELAY = Identity.from_seed(b"r" * 32)
ALICE = Identity.from_seed(b"a" * 32)
AT = Endpoint("198.18.1.2", 4000)
FROM = Endpoint("198.18.5.2", 20000)
TXID = bytes(range(12))

VALID = [
    wire.encode(wire.Allocate(TXID, bytes(16), ALICE.peer_id, bytes(64))),
    wire.encode(wire.Challenge(TXID, b"n" * 16)),
    wire.encode(wire.Allocated(TXID, 30, 4001, Endpoint("198.18.3.2", 20000))),
    wire.encode(wire.Allocated(TXID, 30, 0, Endpoint("fd00:1:3::2", 9))),
    wire.encode(wire.Refused(TXID, wire.RefusalReason.FULL)),
    wire.encode(wire.Send(ALICE.peer_id, b"\x14opaque")),
    wire.encode(wire.Data(ALICE.peer_id, b"\x14opaque")),
    wire.encode(wire.NoRoute(ALICE.peer_id)),
    wire.encode(wire.ProbeMe(TXID)),
    stun.encode_binding_request(TXID),
    stun.encode_binding_success(TXID, Endpoint("198.18.3.2", 20000)),
    stun.encode_binding_success(TXID, Endpoint("fd00::2", 9)),
]


def decode_stun(data: bytes) -> None:
    message = stun.decode(data)
    message.mapped_endpoint  # noqa: B018 -- decoding the address is part of the decoder


def check(data: bytes) -> None:
    only_raises(wire.RelayWireError, lambda: wire.decode(data))
    only_raises(stun.StunError, lambda: decode_stun(data))
    relay = server.RelayServer(RELAY.peer_id)
    relay.receive(data, FROM, 1.0)
    relay.receive(data, FROM, 1.0, on_other_port=True)
    pool = client.RelayPool(ALICE.peer_id, ALICE.sign)
    pool.add_relay(RELAY.peer_id, AT)
    link = pool.link_at(AT)
    assert link is not None
    message = only_raises(wire.RelayWireError, lambda: wire.decode(data))
    if message is not None:
        pool.receive(link, message, 1.0)
    transaction = stun.BindingTransaction(AT, 0.0)
    transaction.receive(data, AT)


@given(st.binary(max_size=300))
def test_random_datagrams(data: bytes) -> None:
    check(data)


@settings(max_examples=300)
@given(st.sampled_from(VALID), st.randoms(use_true_random=False))
def test_mutated_datagrams(valid: bytes, rng: random.Random) -> None:
    check(mutate(valid, rng))
