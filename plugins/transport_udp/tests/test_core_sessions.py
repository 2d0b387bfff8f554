"""The sans-IO core: handshake, data, replay, tampering, roaming, restart, rekey, cookies."""

from __future__ import annotations

import random

import nacl.signing
import pytest
from omerta_transport_udp import wire
from omerta_transport_udp.core import Connected, Settings, TransportCore

from omerta_core.interfaces.common import Endpoint
from omerta_core.interfaces.transport import Delivery, PathState


def test_one_round_trip_to_first_data(pair) -> None:
    pair.a.add_peer(pair.b.peer_id, [pair.addr[id(pair.b)]], pair.now)
    pair.a.send(pair.b.peer_id, "chat", b"hello", Delivery.DATAGRAM, pair.now)
    # a: handshake init; nothing else until the response arrives
    assert [p[0] for _, p in pair.a.outputs] == [wire.HANDSHAKE_INIT]
    pair.b.receive(pair.a.outputs.pop()[1], pair.addr[id(pair.a)], pair.now)
    assert [p[0] for _, p in pair.b.outputs] == [wire.HANDSHAKE_RESPONSE]
    pair.a.receive(pair.b.outputs.pop()[1], pair.addr[id(pair.b)], pair.now)
    # the queued datagram goes out with the first data packet, right after the response
    assert pair.a.outputs[0][1][0] == wire.DATA
    pair.pump()
    got = pair.delivered(pair.b)
    assert [(d.peer, d.channel, d.data) for d in got] == [(pair.a.peer_id, "chat", b"hello")]
    assert pair.a.path_state(pair.b.peer_id, pair.now) is PathState.CONNECTED
    assert pair.b.path_state(pair.a.peer_id, pair.now) is PathState.CONNECTED


def test_data_overhead_is_at_most_32_bytes(pair) -> None:
    pair.connect()
    pair.a.send(pair.b.peer_id, "chat", b"x" * 100, Delivery.DATAGRAM, pair.now)
    (_, packet) = pair.a.outputs.pop()
    assert len(packet) - 100 <= 32


def test_reliable_large_message_is_fragmented_under_mtu(pair) -> None:
    pair.connect()
    big = bytes(range(256)) * 4096 + b"tail"  # a little over 1 MiB
    pair.a.send(pair.b.peer_id, "ctl", big, Delivery.RELIABLE, pair.now)
    for _ in range(200):
        pair.pump()
        pair.now += 0.01
        pair.a.tick(pair.now)
        pair.b.tick(pair.now)
    assert max(len(p) for _, p in pair.captured) <= pair.a.settings.mtu
    got = pair.delivered(pair.b)
    assert [d.data for d in got] == [big]


def test_replayed_packet_is_rejected_and_does_not_move_endpoint(pair) -> None:
    pair.connect()
    pair.a.send(pair.b.peer_id, "chat", b"once", Delivery.DATAGRAM, pair.now)
    (_, packet) = pair.a.outputs.pop()
    pair.b.receive(packet, pair.addr[id(pair.a)], pair.now)
    attacker = Endpoint("198.18.9.9", 4444)
    pair.b.receive(packet, attacker, pair.now)
    assert [d.data for d in pair.delivered(pair.b)] == [b"once"]
    assert pair.b.counters["dropped_replay"] == 1
    assert pair.b.route_of(pair.a.peer_id) == pair.addr[id(pair.a)]


def test_every_flipped_bit_is_rejected_and_counted(pair) -> None:
    pair.connect()
    pair.delivered(pair.b)
    pair.a.send(pair.b.peer_id, "chat", b"payload!", Delivery.DATAGRAM, pair.now)
    (_, packet) = pair.a.outputs.pop()

    def rejected() -> int:
        # a flipped first byte may leave the transport's prefix: such packets go to raw listeners
        return pair.b.counters["raw_received"] + sum(v for k, v in pair.b.counters.items() if k.startswith("dropped_"))

    before = rejected()
    for bit in range(len(packet) * 8):
        altered = bytearray(packet)
        altered[bit // 8] ^= 1 << (bit % 8)
        pair.b.receive(bytes(altered), Endpoint("198.18.9.9", 1), pair.now)
    after = rejected()
    assert pair.delivered(pair.b) == []
    assert after - before == len(packet) * 8
    assert pair.b.route_of(pair.a.peer_id) == pair.addr[id(pair.a)]


def test_fresh_authenticated_packet_moves_endpoint(pair) -> None:
    pair.connect()
    moved = Endpoint("198.18.0.77", 9000)
    pair.addr[id(pair.a)] = moved
    pair.a.send(pair.b.peer_id, "chat", b"from new address", Delivery.DATAGRAM, pair.now)
    pair.pump()
    assert pair.b.route_of(pair.a.peer_id) == moved
    pair.b.send(pair.a.peer_id, "chat", b"reply", Delivery.DATAGRAM, pair.now)
    assert pair.b.outputs[-1][0] == moved


def test_replay_window_accepts_reordering_within_window(pair) -> None:
    pair.connect()
    pair.delivered(pair.b)
    packets = []
    for i in range(3000):
        pair.a.send(pair.b.peer_id, "chat", str(i).encode(), Delivery.DATAGRAM, pair.now)
        packets.append(pair.a.outputs.pop()[1])
    for packet in reversed(packets):
        pair.b.receive(packet, pair.addr[id(pair.a)], pair.now)
    assert len(pair.delivered(pair.b)) == 3000
    assert pair.b.counters["dropped_replay"] == 0


def test_peer_restart_resumes_reliable_stream(pair) -> None:
    pair.connect()
    pair.a.send(pair.b.peer_id, "ctl", b"before", Delivery.RELIABLE, pair.now)
    pair.pump()
    assert [d.data for d in pair.delivered(pair.b)] == [b"before"]
    # a queues a message that b (about to die) never acknowledges
    pair.a.send(pair.b.peer_id, "ctl", b"in flight", Delivery.RELIABLE, pair.now)
    pair.a.flush(pair.now)
    pair.a.outputs.clear()
    # b restarts: same identity, new incarnation, new port; it knows a (from config) and connects
    pair.b = TransportCore(pair.key_b)
    pair.b.register_channel("ctl")
    pair.addr[id(pair.b)] = Endpoint("198.18.0.2", 7801)
    pair.b.add_peer(pair.a.peer_id, [pair.addr[id(pair.a)]], pair.now)
    pair.pump()
    assert [d.data for d in pair.delivered(pair.b)] == [b"in flight"]
    assert pair.a.route_of(pair.b.peer_id) == Endpoint("198.18.0.2", 7801)
    assert pair.a.counters["peer_restarts"] == 1
    pair.a.send(pair.b.peer_id, "ctl", b"after", Delivery.RELIABLE, pair.now)
    pair.pump()
    assert [d.data for d in pair.delivered(pair.b)] == [b"after"]


def test_replayed_handshake_init_is_rejected(pair) -> None:
    pair.a.add_peer(pair.b.peer_id, [pair.addr[id(pair.b)]], pair.now)
    (_, init) = pair.a.outputs[0]
    pair.pump()
    pair.b.receive(init, Endpoint("198.18.9.9", 1), pair.now)
    assert pair.b.counters["dropped_replayed_handshake"] == 1
    assert pair.b.route_of(pair.a.peer_id) == pair.addr[id(pair.a)]


def test_rekey_by_time_keeps_traffic_flowing(make_pair) -> None:
    pair = make_pair(Settings(rekey_after_s=10.0, reject_after_s=15.0))
    pair.connect()
    first = pair.a.peers[pair.b.peer_id].current
    for step in range(40):
        pair.now = step * 1.0
        pair.a.send(pair.b.peer_id, "ctl", str(step).encode(), Delivery.RELIABLE, pair.now)
        pair.a.tick(pair.now)
        pair.b.tick(pair.now)
        pair.pump()
    assert [d.data for d in pair.delivered(pair.b)] == [str(s).encode() for s in range(40)]
    assert pair.a.counters["rekeys"] >= 3
    assert pair.a.peers[pair.b.peer_id].current is not first


def test_expired_session_is_rejected(pair) -> None:
    pair.connect()
    pair.a.send(pair.b.peer_id, "chat", b"old", Delivery.DATAGRAM, pair.now)
    (_, packet) = pair.a.outputs.pop()
    pair.b.receive(packet, pair.addr[id(pair.a)], pair.now + pair.b.settings.reject_after_s + 1)
    assert pair.b.counters["dropped_expired_session"] == 1


def test_handshake_flood_gets_cookies_then_rate_limit() -> None:
    victim_key = nacl.signing.SigningKey.generate()
    victim = TransportCore(victim_key, Settings(under_load_per_s=5))
    flooder = TransportCore(nacl.signing.SigningKey.generate())
    source = Endpoint("198.18.5.5", 5555)
    for _ in range(50):
        flooder.probe(victim.peer_id, Endpoint("198.18.0.2", 7700), 0.0)
        victim.receive(flooder.outputs.pop()[1], source, 0.0)
    assert victim.counters["handshakes_answered"] == 5
    assert victim.counters["cookie_replies_sent"] >= 1
    assert victim.counters["dropped_rate_limited"] >= 1
    # still under load: a fresh attempt gets a cookie, and the next one (proving its address) gets through
    victim.outputs.clear()
    flooder.probe(victim.peer_id, Endpoint("198.18.0.2", 7700), 0.5)
    victim.receive(flooder.outputs.pop()[1], source, 0.5)
    (_, reply) = victim.outputs.pop()
    assert reply[0] == wire.COOKIE_REPLY
    flooder.receive(reply, Endpoint("198.18.0.2", 7700), 0.5)
    assert flooder.counters["cookies_received"] == 1
    flooder.probe(victim.peer_id, Endpoint("198.18.0.2", 7700), 0.6)
    victim.receive(flooder.outputs.pop()[1], source, 0.6)
    assert victim.counters["handshakes_answered"] == 6


def test_unknown_datagram_channel_is_counted(pair) -> None:
    pair.connect()
    pair.a.send(pair.b.peer_id, "nobody-listens", b"x", Delivery.DATAGRAM, pair.now)
    pair.pump()
    assert pair.b.counters["dropped_unknown_channel"] == 1


def test_simultaneous_handshakes_converge(pair) -> None:
    pair.a.add_peer(pair.b.peer_id, [pair.addr[id(pair.b)]], pair.now)
    pair.b.add_peer(pair.a.peer_id, [pair.addr[id(pair.a)]], pair.now)
    pair.pump()
    for i in range(5):
        pair.a.send(pair.b.peer_id, "ctl", bytes([i]), Delivery.RELIABLE, pair.now)
        pair.b.send(pair.a.peer_id, "ctl", bytes([i]), Delivery.RELIABLE, pair.now)
    pair.pump()
    assert [d.data for d in pair.delivered(pair.b)] == [bytes([i]) for i in range(5)]
    assert [d.data for d in pair.delivered(pair.a)] == [bytes([i]) for i in range(5)]


def test_connected_event_reports_restart(pair) -> None:
    pair.connect()
    events = [e for e in pair.a.events if isinstance(e, Connected)]
    assert events and not events[0].restarted


def test_idle_session_keeps_alive_and_rekeys(make_pair) -> None:
    pair = make_pair(Settings(keepalive_s=5.0, rekey_after_s=20.0, reject_after_s=30.0))
    pair.connect()
    for step in range(1, 121):
        pair.now = float(step)
        pair.a.tick(pair.now)
        pair.b.tick(pair.now)
        pair.pump()
    assert pair.a.counters["keepalives_sent"] >= 10
    assert pair.a.counters["rekeys"] >= 4
    assert pair.a.path_state(pair.b.peer_id, pair.now) is PathState.CONNECTED
    assert pair.b.path_state(pair.a.peer_id, pair.now) is PathState.CONNECTED


def test_path_state_degrades_then_reconnects_when_peer_goes_silent(pair) -> None:
    pair.connect()
    pair.a.send(pair.b.peer_id, "ctl", b"lost", Delivery.RELIABLE, pair.now)
    pair.a.flush(pair.now)
    pair.a.outputs.clear()  # b vanished: nothing arrives any more
    states = set()
    for step in range(1, 200):
        pair.now = step * 0.05
        pair.a.tick(pair.now)
        pair.a.outputs.clear()
        states.add(pair.a.path_state(pair.b.peer_id, pair.now))
    assert PathState.RECONNECTING in states
    assert pair.a.counters["reconnects"] >= 1
    # b comes back (same process): the handshake completes and the message is delivered
    pair.a.tick(pair.now + 10)
    pair.pump()
    pair.now += 10
    for _ in range(5):
        pair.now += 1
        pair.a.tick(pair.now)
        pair.pump()
    assert [d.data for d in pair.delivered(pair.b)] == [b"lost"]
    assert pair.a.path_state(pair.b.peer_id, pair.now) is PathState.CONNECTED


def test_sending_to_itself_is_a_clear_error(pair) -> None:
    import pytest  # noqa: PLC0415
    from omerta_transport_udp.errors import BadPeerError  # noqa: PLC0415

    with pytest.raises(BadPeerError):
        pair.a.send(pair.a.peer_id, "ctl", b"x", Delivery.RELIABLE, pair.now)


def test_peer_restarted_on_same_address_without_knowing_us_is_reconnected(pair) -> None:
    pair.connect()
    address = pair.addr[id(pair.b)]
    pair.b = TransportCore(pair.key_b)  # restarted, same identity and address, knows nobody
    pair.addr[id(pair.b)] = address
    pair.b.register_channel("ctl")
    pair.a.send(pair.b.peer_id, "ctl", b"are you there", Delivery.RELIABLE, pair.now)
    for _ in range(100):
        pair.now += 0.1
        pair.a.tick(pair.now)
        pair.b.tick(pair.now)
        pair.pump()
    assert [d.data for d in pair.delivered(pair.b)] == [b"are you there"]
    assert pair.b.counters["dropped_unknown_session"] >= 1
    assert pair.a.counters["reconnects"] >= 1 and pair.a.counters["peer_restarts"] == 1


def test_datagram_sender_facing_silence_reconnects(make_pair) -> None:
    pair = make_pair(Settings(keepalive_s=5.0))
    pair.connect()
    for step in range(1, 40):  # b is gone; a keeps sending datagrams and hears nothing
        pair.now = float(step)
        pair.a.send(pair.b.peer_id, "chat", b"frame", Delivery.DATAGRAM, pair.now)
        pair.a.tick(pair.now)
        pair.a.outputs.clear()
    assert pair.a.counters["reconnects"] >= 1


def test_dead_direct_path_falls_back_to_packet_path(pair) -> None:
    from omerta_transport_udp.core import PathRoute  # noqa: PLC0415

    pair.connect()
    for core in (pair.a, pair.b):
        core.register_path("relay", lambda peer, now: True)
    pair.a.send(pair.b.peer_id, "ctl", b"through the relay", Delivery.RELIABLE, pair.now)

    def relay_only() -> None:  # the direct path is dead; only relayed packets get through
        for core in (pair.a, pair.b):
            core.flush(pair.now)
            outputs, core.outputs = core.outputs, []
            for route, packet in outputs:
                if isinstance(route, PathRoute):
                    pair.other(core).receive(packet, None, pair.now, path="relay")

    for step in range(1, 200):
        pair.now = step * 0.1
        pair.a.tick(pair.now)
        pair.b.tick(pair.now)
        relay_only()
    assert [d.data for d in pair.delivered(pair.b)] == [b"through the relay"]
    assert pair.a.route_of(pair.b.peer_id) == PathRoute("relay", pair.b.peer_id)
    assert pair.b.route_of(pair.a.peer_id) == PathRoute("relay", pair.a.peer_id)


def test_a_reconnect_request_tries_the_packet_paths_at_once(pair) -> None:
    """A caller that saw the path go silent (the VPN's keepalives stopped) gets the relay in the first handshake."""
    from omerta_transport_udp.core import PathRoute  # noqa: PLC0415

    pair.connect()
    for core in (pair.a, pair.b):
        core.register_path("relay", lambda peer, now: True)
    pair.a.connect(pair.b.peer_id, pair.now)
    routes = [route for route, packet in pair.a.outputs if packet[0] == wire.HANDSHAKE_INIT]
    assert PathRoute("relay", pair.b.peer_id) in routes and pair.addr[id(pair.b)] in routes
    relayed = next(p for r, p in pair.a.outputs if isinstance(r, PathRoute))
    pair.a.outputs.clear()
    pair.b.receive(relayed, None, pair.now, path="relay")
    pair.a.receive(pair.b.outputs.pop()[1], None, pair.now, path="relay")
    assert pair.a.route_of(pair.b.peer_id) == PathRoute("relay", pair.b.peer_id)
    assert not pair.a.peers[pair.b.peer_id].route_suspect  # the next handshake tries the direct route first again


def test_datagrams_on_a_session_leave_the_deadline_unchanged_and_other_traffic_marks_it(pair) -> None:
    pair.connect()
    for core in (pair.a, pair.b):
        core.next_deadline()
    pair.a.send_datagrams(pair.b.peer_id, "chat", [b"one", b"two"], pair.now)
    pair.a.send(pair.b.peer_id, "chat", b"three", Delivery.DATAGRAM, pair.now)
    pair.pump()
    assert [d.data for d in pair.delivered(pair.b)] == [b"one", b"two", b"three"]
    assert not pair.a.deadline_changed and not pair.b.deadline_changed
    pair.a.send(pair.b.peer_id, "ctl", b"reliable", Delivery.RELIABLE, pair.now)
    assert pair.a.deadline_changed and pair.a.next_deadline() == float("-inf")  # a flush is due
    assert pair.a.deadline_changed  # and stays due until flushed
    pair.a.flush(pair.now)
    pair.b.receive(pair.a.outputs.pop()[1], pair.addr[id(pair.a)], pair.now)
    assert pair.b.deadline_changed  # it has an acknowledgement to send back
    pair.pump()
    pair.b.next_deadline()
    pair.b.receive(b"\x14 not a packet", pair.addr[id(pair.a)], pair.now)
    assert not pair.b.deadline_changed  # dropped: nothing changed
    pair.a.send(pair.b.peer_id, "chat", b"roamed", Delivery.DATAGRAM, pair.now)
    pair.b.receive(pair.a.outputs.pop()[1], Endpoint("198.18.0.9", 7700), pair.now)
    assert pair.b.deadline_changed  # the peer moved


@pytest.mark.parametrize("seed", range(12))
def test_an_unchanged_deadline_is_never_earlier_than_the_armed_timer(make_pair, seed: int) -> None:
    """An adapter that plans its timer only when ``deadline_changed`` is set never sleeps past a deadline and never
    leaves a flush waiting: traffic of every kind, loss, silence, roaming, keepalives, rekeys and expiry."""
    pair = make_pair(Settings(keepalive_s=2.0, rekey_after_s=12.0, reject_after_s=18.0, stale_after_s=1.0))
    pair.connect()
    rng = random.Random(seed)
    cores = (pair.a, pair.b)
    armed = {id(core): core.next_deadline() for core in cores}  # when each adapter's timer fires
    roamed = Endpoint("198.18.0.7", 7701)
    for _ in range(600):
        sender = rng.choice(cores)
        receiver = pair.other(sender)
        action = rng.choices(["datagrams", "reliable", "deliver", "time", "roam"], weights=[8, 1, 8, 4, 1])[0]
        if action == "datagrams":
            datas = [rng.randbytes(rng.randrange(1, 200)) for _ in range(rng.randrange(1, 4))]
            sender.send_datagrams(receiver.peer_id, "chat", datas, pair.now)
        elif action == "reliable":
            sender.send(receiver.peer_id, "ctl", rng.randbytes(50), Delivery.RELIABLE, pair.now)
        elif action in ("deliver", "roam"):
            outputs, sender.outputs = sender.outputs, []
            source = roamed if action == "roam" else pair.addr[id(sender)]
            for _route, packet in outputs:
                if rng.random() > 0.2:  # a fifth is lost
                    receiver.receive(packet, source, pair.now)
        else:
            pair.now += rng.uniform(0.0, 1.5)
        for core in cores:
            if pair.now >= armed[id(core)]:  # the timer fires: it is gone, and tick must ask for another
                core.tick(pair.now)
                assert core.deadline_changed
            if core.deadline_changed:  # the adapter drains and plans its timer again
                core.flush(pair.now)
                armed[id(core)] = core.next_deadline()
                continue
            outputs_before = len(core.outputs)
            core.flush(pair.now)
            assert len(core.outputs) == outputs_before  # nothing was waiting to be flushed
            assert core.next_deadline() >= armed[id(core)]  # the armed timer is early enough
    assert pair.a.counters["datagrams_received"] > 0 and pair.b.counters["datagrams_received"] > 0
    assert pair.a.counters["keepalives_sent"] + pair.b.counters["keepalives_sent"] > 0
    renewed = ("rekeys", "reconnects", "sessions_expired")
    assert sum(core.counters[name] for core in cores for name in renewed) > 0
