"""Relay server and client state machines, wired back to back in memory (no sockets)."""

from __future__ import annotations

from dataclasses import dataclass, field

from omerta_transport_relay import client, server, stun, wire

from omerta_core.identity import Identity
from omerta_core.interfaces.common import Endpoint, PeerId

RELAY_AT = Endpoint("198.18.1.2", 4000)


@dataclass
class Member:
    """A relay client with its NAT-mapped source endpoint."""

    identity: Identity
    endpoint: Endpoint
    pool: client.RelayPool = field(init=False)
    events: list[object] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pool = client.RelayPool(self.identity.peer_id, self.identity.sign)


def make_member(port: int) -> Member:
    return Member(Identity.generate(), Endpoint("198.18.5.2", port))


class Net:
    """Carries datagrams between members and relays until nothing is in flight."""

    def __init__(self, relays: dict[Endpoint, server.RelayServer], members: list[Member]) -> None:
        self.relays = relays
        self.members = {m.endpoint: m for m in members}
        self.dead: set[Endpoint] = set()

    def deliver(self, source: Endpoint, target: Endpoint, data: bytes, now: float) -> None:
        queue = [(source, target, data)]
        while queue:
            src, dst, payload = queue.pop(0)
            if dst in self.relays:
                if dst in self.dead:
                    continue
                for out in self.relays[dst].receive(payload, src, now):
                    queue.append((dst, out.endpoint, out.data))
            elif dst in self.members:
                member = self.members[dst]
                link = member.pool.link_at(src)
                assert link is not None
                replies, event = member.pool.receive(link, wire.decode(payload), now)
                queue.extend((dst, src, reply) for reply in replies)
                if event is not None:
                    member.events.append(event)

    def tick(self, now: float) -> None:
        for member in self.members.values():
            for target, data in member.pool.poll(now):
                self.deliver(member.endpoint, target, data, now)
        for relay in self.relays.values():
            relay.expire(now)


def setup(count: int = 2, relays: int = 1) -> tuple[Net, list[Member], list[PeerId]]:
    relay_ids = [Identity.generate().peer_id for _ in range(relays)]
    servers = {Endpoint("198.18.1.2", 4000 + i): server.RelayServer(relay_ids[i]) for i in range(relays)}
    members = [make_member(20000 + i) for i in range(count)]
    for member in members:
        for (endpoint, _), relay_id in zip(servers.items(), relay_ids, strict=True):
            member.pool.add_relay(relay_id, endpoint)
    return Net(servers, members), members, relay_ids


def test_allocation_answers_a_challenge_then_reports_the_observed_endpoint() -> None:
    net, (alice, _), _ = setup()
    net.tick(0.0)
    link = alice.pool.links[0]
    assert link.healthy(0.0)
    assert link.observed == alice.endpoint
    relay = net.relays[RELAY_AT]
    assert relay.counters["challenges_sent"] == 2
    assert relay.by_peer[alice.identity.peer_id].endpoint == alice.endpoint


def test_packets_are_forwarded_unchanged_between_allocated_clients() -> None:
    net, (alice, bob), _ = setup()
    net.tick(0.0)
    target, data = alice.pool.send(bob.identity.peer_id, b"\x14sealed-session-bytes", 0.1) or (None, b"")
    assert target == RELAY_AT
    net.deliver(alice.endpoint, RELAY_AT, data, 0.1)
    assert bob.events == [
        client.Delivered(alice.pool.links[0].relay, alice.identity.peer_id, b"\x14sealed-session-bytes")
    ]


def test_a_client_whose_socket_moved_reallocates_at_once_and_is_reached_there() -> None:
    """The transport restarted on a new port: the relay moves the allocation after one challenge, before the
    next refresh would have, and packets for the client go to its new endpoint."""
    net, (alice, bob), _ = setup()
    net.tick(0.0)
    relay = net.relays[RELAY_AT]
    del net.members[bob.endpoint]
    bob.endpoint = Endpoint(bob.endpoint.host, 31000)
    net.members[bob.endpoint] = bob
    assert not bob.pool.poll(0.2)  # the next refresh is not due yet ...
    bob.pool.reallocate(0.2)  # ... but the restart asks for one now
    net.tick(0.2)
    assert relay.by_peer[bob.identity.peer_id].endpoint == bob.endpoint
    assert bob.pool.links[0].observed == bob.endpoint and bob.pool.counters["reallocations"] == 1
    _, data = alice.pool.send(bob.identity.peer_id, b"\x14after-the-move", 0.3) or (None, b"")
    net.deliver(alice.endpoint, RELAY_AT, data, 0.3)
    assert bob.events[-1] == client.Delivered(relay.relay, alice.identity.peer_id, b"\x14after-the-move")


def test_unallocated_senders_are_ignored_and_counted() -> None:
    net, (_alice, bob), _ = setup()
    net.tick(0.0)
    stranger = Endpoint("198.18.9.9", 5555)
    relay = net.relays[RELAY_AT]
    assert relay.receive(wire.encode(wire.Send(bob.identity.peer_id, b"x")), stranger, 0.1) == []
    assert relay.counters["dropped_no_allocation"] == 1
    assert relay.receive(b"\xa5garbage", stranger, 0.1) == []
    assert relay.counters["dropped_malformed"] == 1


def test_a_signature_by_another_key_is_refused() -> None:
    relay_id = Identity.generate().peer_id
    relay = server.RelayServer(relay_id)
    source = Endpoint("198.18.5.2", 20000)
    victim, forger = Identity.generate(), Identity.generate()
    nonce = relay.nonce_for(source, 0.0)
    txid = bytes(12)
    signature = forger.sign(wire.allocation_statement(relay_id, txid, nonce, victim.peer_id))
    out = relay.receive(wire.encode(wire.Allocate(txid, nonce, victim.peer_id, signature)), source, 0.0)
    assert wire.decode(out[0].data) == wire.Refused(txid, wire.RefusalReason.BAD_SIGNATURE)
    assert not relay.by_peer


def test_a_replayed_allocation_from_another_endpoint_gets_only_a_challenge() -> None:
    net, (alice, _), _ = setup()
    net.tick(0.0)
    replay = alice.pool.links[0].allocate_request()
    thief = Endpoint("198.18.66.2", 20000)
    out = net.relays[RELAY_AT].receive(replay, thief, 1.0)
    assert isinstance(wire.decode(out[0].data), wire.Challenge)
    assert net.relays[RELAY_AT].by_peer[alice.identity.peer_id].endpoint == alice.endpoint


def test_unknown_destination_gets_no_route_and_the_client_skips_that_relay() -> None:
    net, (alice,), _ = setup(count=1, relays=2)
    net.tick(0.0)
    nobody = Identity.generate().peer_id
    first = alice.pool.send(nobody, b"\x14x", 0.1)
    assert first is not None and first[0] == Endpoint("198.18.1.2", 4000)
    net.deliver(alice.endpoint, first[0], first[1], 0.1)
    second = alice.pool.send(nobody, b"\x14x", 0.2)
    assert second is not None and second[0] == Endpoint("198.18.1.2", 4001)
    assert alice.pool.counters["no_route"] == 1


def test_clients_fail_over_to_the_second_relay_when_the_first_dies() -> None:
    net, (alice, bob), _ = setup(relays=2)
    first, second = Endpoint("198.18.1.2", 4000), Endpoint("198.18.1.2", 4001)
    now = 0.0
    net.tick(now)
    assert alice.pool.route(bob.identity.peer_id, now).endpoint == first  # type: ignore[union-attr]
    net.dead.add(first)
    while alice.pool.route(bob.identity.peer_id, now).endpoint == first:  # type: ignore[union-attr]
        now = round(now + 0.1, 1)
        net.tick(now)
    assert now <= client.DEAD_AFTER_S + client.REFRESH_INTERVAL_S
    out = alice.pool.send(bob.identity.peer_id, b"\x14after-failover", now)
    assert out is not None and out[0] == second
    net.deliver(alice.endpoint, second, out[1], now)
    assert bob.events[-1] == client.Delivered(bob.pool.links[1].relay, alice.identity.peer_id, b"\x14after-failover")
    assert alice.pool.counters["relays_lost"] == 1


def test_a_flooding_client_is_throttled_without_touching_other_clients() -> None:
    net, (flooder, victim, alice, bob), _ = setup(count=4)
    net.tick(0.0)
    relay = net.relays[RELAY_AT]
    flood = wire.encode(wire.Send(victim.identity.peer_id, b"\x14" + bytes(1000)))
    forwarded = sum(bool(relay.receive(flood, flooder.endpoint, 1.0)) for _ in range(5000))
    assert forwarded == server.PACKET_BURST
    assert relay.by_peer[flooder.identity.peer_id].throttled == 5000 - server.PACKET_BURST
    normal = wire.encode(wire.Send(bob.identity.peer_id, b"\x14hello"))
    assert all(relay.receive(normal, alice.endpoint, 1.0) for _ in range(100))
    # sustained: one more second of flooding at 10,000 packets/s gets the burst plus about one second's rate
    later = sum(
        bool(relay.receive(flood, flooder.endpoint, 11.0 + step / 100)) for step in range(100) for _ in range(100)
    )
    assert server.PACKETS_PER_S <= later <= server.PACKETS_PER_S + server.PACKET_BURST


def test_allocations_expire_without_refresh() -> None:
    net, (_alice, _), _ = setup()
    net.tick(0.0)
    relay = net.relays[RELAY_AT]
    relay.expire(server.ALLOCATION_LIFETIME_S + 0.1)
    assert not relay.by_peer and not relay.by_endpoint


def test_one_host_cannot_fill_the_relay() -> None:
    relay_id = Identity.generate().peer_id
    relay = server.RelayServer(relay_id)
    refused = 0
    for port in range(20000, 20000 + server.MAX_ALLOCATIONS_PER_HOST + 3):
        source = Endpoint("198.18.5.2", port)
        me = Identity.generate()
        nonce = relay.nonce_for(source, 0.0)
        signature = me.sign(wire.allocation_statement(relay_id, bytes(12), nonce, me.peer_id))
        out = relay.receive(wire.encode(wire.Allocate(bytes(12), nonce, me.peer_id, signature)), source, 0.0)
        refused += isinstance(wire.decode(out[0].data), wire.Refused)
    assert refused == 3
    assert len(relay.by_peer) == server.MAX_ALLOCATIONS_PER_HOST


def test_relay_answers_stun_and_probes_from_its_other_port() -> None:
    relay = server.RelayServer(Identity.generate().peer_id, other_port=4001)
    source = Endpoint("198.18.5.2", 20000)
    txn = stun.BindingTransaction(RELAY_AT, 0.0)
    out = relay.receive(txn.poll(0.0) or b"", source, 0.0)
    assert txn.receive(out[0].data, RELAY_AT) and txn.result == source
    other_port = relay.receive(wire.encode(wire.ProbeMe(bytes(12))), source, 0.0)
    assert other_port == [server.Outgoing(source, wire.encode(wire.Probed(bytes(12))), from_other_port=True)]
    on_other = relay.receive(stun.encode_binding_request(bytes(12)), source, 0.0, on_other_port=True)
    assert on_other[0].from_other_port and stun.decode(on_other[0].data).mapped_endpoint == source
    assert relay.receive(wire.encode(wire.ProbeMe(bytes(12))), source, 0.0, on_other_port=True) == []


def test_control_requests_are_rate_limited_per_host() -> None:
    relay = server.RelayServer(Identity.generate().peer_id)
    source = Endpoint("198.18.5.2", 20000)
    request = stun.encode_binding_request(bytes(12))
    answered = sum(bool(relay.receive(request, source, 0.0)) for _ in range(1000))
    assert answered == server.CONTROL_BURST
    assert relay.counters["throttled_control"] == 1000 - server.CONTROL_BURST
