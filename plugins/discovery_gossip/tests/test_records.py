"""Peer records and gossip frames: forged, unsigned, stale, foreign and garbage input is rejected and counted."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st
from omerta_discovery_gossip import wire
from omerta_discovery_gossip.errors import RecordError, WireError
from omerta_discovery_gossip.network import Network
from omerta_discovery_gossip.peer_record import create_record, record_from_wire
from omerta_discovery_gossip.swim import Membership

from omerta_core.identity import Identity
from omerta_core.interfaces.common import Endpoint
from omerta_core.interfaces.discovery import Liveness

ALICE = Identity.from_seed(b"a" * 32)
MALLORY = Identity.from_seed(b"m" * 32)
HERE = Endpoint("198.18.0.1", 4000)


def make_record(network: Network, version: int = 5, identity: Identity = ALICE):
    return create_record(identity, network.id, (HERE,), version, capabilities={"cpus": 4})


def receiver(network: Network) -> Membership:
    return Membership(Identity.from_seed(b"r" * 32), network, version=1, now=0.0)


def ping_frame(network: Network, *records_wire: list) -> bytes:
    updates = [msgpack.packb([1, r]) for r in records_wire]
    return network.seal(wire.encode(wire.Ping(1), updates))


def test_a_signed_record_round_trips(network: Network) -> None:
    record = make_record(network)
    assert record_from_wire(msgpack.unpackb(msgpack.packb(record.to_wire()))) == record


def test_forged_record_is_rejected(network: Network) -> None:
    forged = replace(make_record(network), endpoints=(Endpoint("198.18.9.9", 1),))
    with pytest.raises(RecordError, match="bad signature"):
        record_from_wire(forged.to_wire())
    signed_by_mallory = replace(make_record(network), signature=MALLORY.sign(make_record(network).signed_bytes()))
    with pytest.raises(RecordError, match="bad signature"):
        record_from_wire(signed_by_mallory.to_wire())


def test_unsigned_record_is_rejected(network: Network) -> None:
    unsigned = replace(make_record(network), signature=b"")
    with pytest.raises(RecordError, match="unsigned"):
        record_from_wire(unsigned.to_wire())


def test_only_its_own_peer_may_sign_a_record(network: Network) -> None:
    with pytest.raises(RecordError):
        make_record(network).signed_by(MALLORY)


def test_capabilities_travel_only_in_their_canonical_form(network: Network) -> None:
    record = make_record(network)
    assert record.to_wire()[4] == '{"cpus":4}'
    for text in ('{"cpus": 4}', '{"cpus":4,"cpus":4}', '{"cpus":4.0}'):
        item = record.to_wire()
        item[4] = text
        with pytest.raises(RecordError, match=r"canonical|integer"):
            record_from_wire(item)


@pytest.mark.parametrize("capabilities", [{"price": 0.5}, {"big": 2**53}, {"x": [float("nan")]}])
def test_capabilities_without_a_portable_form_cannot_be_advertised(network: Network, capabilities: dict) -> None:
    with pytest.raises(RecordError, match="capabilities"):
        create_record(ALICE, network.id, (HERE,), 1, capabilities=capabilities)


@given(st.binary(max_size=300))
def test_garbage_frames_are_dropped_and_counted(data: bytes) -> None:
    network = Network("lab", bytes(range(32)))
    core = receiver(network)
    assert core.receive(ALICE.peer_id, data, 1.0) == []
    assert core.counters["bad_mac"] + core.counters["malformed"] >= 1


@given(st.binary(max_size=300))
def test_wire_decode_raises_only_wire_error(data: bytes) -> None:
    with contextlib.suppress(WireError):
        wire.decode(data)


def test_valid_record_is_adopted_forged_and_unsigned_are_counted(network: Network) -> None:
    core = receiver(network)
    good = make_record(network)
    forged = replace(good, version=9)
    unsigned = replace(make_record(network, identity=MALLORY), signature=b"")
    core.receive(MALLORY.peer_id, ping_frame(network, forged.to_wire(), unsigned.to_wire()), 1.0)
    assert core.member(ALICE.peer_id) is None
    assert core.counters["rejected_records"] == 2
    core.receive(MALLORY.peer_id, ping_frame(network, good.to_wire()), 1.0)
    member = core.member(ALICE.peer_id)
    assert member is not None and member.record == good and member.liveness is Liveness.ALIVE


def test_stale_record_never_replaces_a_newer_one(network: Network) -> None:
    core = receiver(network)
    new, old = make_record(network, version=7), make_record(network, version=3)
    core.receive(MALLORY.peer_id, ping_frame(network, new.to_wire()), 1.0)
    core.receive(MALLORY.peer_id, ping_frame(network, old.to_wire()), 2.0)
    member = core.member(ALICE.peer_id)
    assert member is not None and member.record.version == 7
    assert core.counters["stale_records"] == 1


def test_record_of_another_network_is_rejected_even_inside_a_valid_frame(network: Network) -> None:
    other = Network("other", bytes(32))
    core = receiver(network)
    core.receive(MALLORY.peer_id, ping_frame(network, make_record(other).to_wire()), 1.0)
    assert core.member(ALICE.peer_id) is None
    assert core.counters["foreign_records"] == 1


def test_frame_sealed_with_another_network_key_is_dropped(network: Network) -> None:
    impostor = Network("impostor", bytes(32))
    core = receiver(network)
    frame = bytearray(ping_frame(impostor, make_record(network).to_wire()))
    frame[:8] = network.id  # claim the right network, but the MAC is keyed with the wrong key
    core.receive(MALLORY.peer_id, bytes(frame), 1.0)
    assert core.member(ALICE.peer_id) is None
    assert core.counters["bad_mac"] == 1


def test_ping_is_answered_with_an_ack_that_reflects_the_source(network: Network) -> None:
    core = receiver(network)
    actions = core.receive(ALICE.peer_id, network.seal(wire.encode(wire.Ping(42))), 1.0, source=HERE)
    acks = [wire.decode(network.open(a.frame) or b"") for a in actions if getattr(a, "peer", None) == ALICE.peer_id]
    assert any(isinstance(m, wire.Ack) and m.seq == 42 and m.observed == HERE for m in acks)


BOB = Identity.from_seed(b"b" * 32)


def reflect(core: Membership, network: Network, reporter: Identity, observed: Endpoint) -> None:
    core.receive(reporter.peer_id, network.seal(wire.encode(wire.Sync(None, [], observed=observed))), 1.0)


def test_reflected_endpoint_enters_our_record_once_two_members_confirm_it(network: Network) -> None:
    core = Membership(ALICE, network, version=1, now=0.0, local_endpoints=(Endpoint("0.0.0.0", 4000),))
    assert core.record.endpoints == ()
    core.tick(0.0)
    reflect(core, network, MALLORY, HERE)
    reflect(core, network, MALLORY, HERE)
    assert core.record.endpoints == ()  # one member, however often, cannot plant an address
    reflect(core, network, BOB, HERE)
    assert core.record.endpoints == (HERE,)
    assert core.record.version == 2 and core.record.is_valid()


@pytest.mark.parametrize(
    "host",
    ["127.0.0D1", "0.0.0.0", "::", "example.org", "224.0.0.1", "255.255.255.255", "fe80::1", "198.018.0.1"],
)
def test_reflection_that_is_not_a_unicast_address_never_enters_our_record(network: Network, host: str) -> None:
    # The replay: a mutated message made a node publish "127.0.0D1:38822" in its own signed record.
    core = Membership(ALICE, network, version=1, now=0.0, local_endpoints=(HERE,))
    before = core.record
    for reporter in (MALLORY, BOB, Identity.from_seed(b"c" * 32)):
        reflect(core, network, reporter, Endpoint(host, 38822))
    assert core.record == before
    assert core.counters["reflections_refused"] == 3


def update_frame(network: Network, *updates: wire.Update) -> bytes:
    return network.seal(wire.encode(wire.Ping(1), [wire.encode_update(u) for u in updates]))


def test_dead_member_stays_dead_until_a_newer_record_and_its_tombstone_expires(network: Network) -> None:
    core = receiver(network)
    core.receive(MALLORY.peer_id, ping_frame(network, make_record(network, version=5).to_wire()), 1.0)
    core.receive(MALLORY.peer_id, update_frame(network, wire.Dead(ALICE.peer_id, 5)), 2.0)
    core.receive(MALLORY.peer_id, ping_frame(network, make_record(network, version=5).to_wire()), 3.0)
    member = core.member(ALICE.peer_id)
    assert member is not None and member.liveness is Liveness.DEAD
    core.receive(MALLORY.peer_id, update_frame(network, wire.Suspect(ALICE.peer_id, 4)), 3.0)
    assert core.counters["stale_updates"] == 1
    core.tick(2.0 + core.settings.tombstone_s)
    assert core.member(ALICE.peer_id) is None
    core.receive(MALLORY.peer_id, ping_frame(network, make_record(network, version=6).to_wire()), 4.0)
    member = core.member(ALICE.peer_id)
    assert member is not None and member.liveness is Liveness.ALIVE and member.record.version == 6


def test_suspicion_about_ourselves_is_refuted_with_a_newer_signed_record(network: Network) -> None:
    core = Membership(ALICE, network, version=10, now=0.0, local_endpoints=(HERE,))
    core.receive(MALLORY.peer_id, update_frame(network, wire.Suspect(ALICE.peer_id, 10)), 1.0)
    assert core.record.version == 11 and core.record.is_valid()
    assert core.counters["refutations"] == 1
