"""Gossip's decoders raise only their own error; a SWIM core never raises on a received frame.

Random input and mutations of real messages, records, invites and stored files (``omerta_core.fuzz``),
as sent by a member that holds the network key (the frame's MAC is valid) and by one that does not.
"""

from __future__ import annotations

import random
from pathlib import Path

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omerta_discovery_gossip import wire
from omerta_discovery_gossip.errors import InviteError, NetworkError, RecordError, WireError
from omerta_discovery_gossip.invite import create_invite, parse_invite
from omerta_discovery_gossip.network import Network
from omerta_discovery_gossip.network_store import NetworkStore
from omerta_discovery_gossip.peer_cache import FILE_NAME as PEER_CACHE_FILE
from omerta_discovery_gossip.peer_cache import PeerCache
from omerta_discovery_gossip.peer_record import create_record, record_from_wire
from omerta_discovery_gossip.swim import Membership

from omerta_core.fuzz import mutate, only_raises
from omerta_core.identity import Identity
from omerta_core.interfaces.common import Endpoint

NETWORK = Network("lab", bytes(range(32)))
ALICE = Identity.from_seed(b"a" * 32)
BOB = Identity.from_seed(b"b" * 32)
HERE = Endpoint("198.18.0.1", 4000)
RECORD = create_record(ALICE, NETWORK.id, (HERE,), 5, (BOB.peer_id,), {"cpus": 4, "relay": True})
MESSAGES = [
    wire.encode(wire.Ping(7), [wire.encode_update(wire.Alive(RECORD))]),
    wire.encode(wire.Ack(7, observed=HERE), [wire.encode_update(wire.Suspect(ALICE.peer_id, 5))]),
    wire.encode(wire.PingReq(8, BOB.peer_id), [wire.encode_update(wire.Dead(ALICE.peer_id, 5))]),
    wire.encode(wire.Sync([(bytes(8), 3)], [RECORD], want_reply=True, observed=HERE, part=(1, 4))),
]
INVITE = create_invite(ALICE, NETWORK, [f"{BOB.peer_id}@198.18.0.2:7700", "[fd00::1]:7700"], ttl_s=60, now=1000)
STORE_FILE = (
    b'[{"name": "lab", "key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", '
    b'"bootstrap": ["198.18.0.2:7700"], "joined_at": 1.5}]'
)


def swim() -> Membership:
    core = Membership(BOB, NETWORK, version=1, now=0.0, local_endpoints=(HERE,))
    core.tick(0.0)
    return core


CORE = swim()


@given(st.binary(max_size=600))
def test_messages_of_random_bytes(data: bytes) -> None:
    only_raises(WireError, lambda: wire.decode(data))
    CORE.receive(ALICE.peer_id, NETWORK.seal(data), 1.0, HERE)
    CORE.receive(ALICE.peer_id, data, 1.0, HERE)


@settings(max_examples=300)
@given(st.sampled_from(MESSAGES), st.randoms(use_true_random=False))
def test_messages_mutated_inside_a_valid_frame(message: bytes, rng: random.Random) -> None:
    body = mutate(message, rng)
    only_raises(WireError, lambda: wire.decode(body))
    before = CORE.record
    CORE.receive(ALICE.peer_id, NETWORK.seal(body), 1.0, HERE)
    # whatever a member sends, our own record keeps listing only addresses
    assert all(e == HERE or e.host[0].isdigit() or ":" in e.host for e in CORE.record.endpoints), CORE.record
    assert CORE.record.version >= before.version


@settings(max_examples=200)
@given(st.randoms(use_true_random=False))
def test_records_mutated(rng: random.Random) -> None:
    raw = mutate(msgpack.packb(RECORD.to_wire()), rng)
    item = only_raises((ValueError, msgpack.ExtraData), lambda: msgpack.unpackb(raw))
    only_raises(RecordError, lambda: record_from_wire(item))


@given(st.text(max_size=300))
def test_invites_of_random_text(text: str) -> None:
    only_raises(InviteError, lambda: parse_invite(text, now=1030))
    only_raises(InviteError, lambda: parse_invite("omerta://join/" + text, now=1030))


@settings(max_examples=300)
@given(st.randoms(use_true_random=False))
def test_invites_mutated(rng: random.Random) -> None:
    link = INVITE.link()
    mutated = mutate(link.encode(), rng).decode("utf-8", "replace")
    only_raises(InviteError, lambda: parse_invite(mutated, now=1030))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.randoms(use_true_random=False))
def test_network_store_file_mutated(tmp_path: Path, rng: random.Random) -> None:
    (tmp_path / "networks.json").write_bytes(mutate(STORE_FILE, rng))
    only_raises(NetworkError, lambda: NetworkStore(tmp_path).load())


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
@given(st.binary(min_size=1, max_size=2000))
def test_peer_cache_file_damaged(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / PEER_CACHE_FILE
    for stale in tmp_path.iterdir():
        stale.unlink()
    path.write_bytes(data)
    cache = PeerCache(tmp_path)
    try:
        cache.save(NETWORK.id, [RECORD], 1.0)
        assert cache.load(NETWORK.id) == [RECORD]
    finally:
        cache.close()
