"""SWIM membership under virtual time: convergence, failure detection, refutation, rejoin, bounded load."""

from __future__ import annotations

import math

import pytest
from omerta_discovery_gossip import wire
from omerta_discovery_gossip.network import Network
from omerta_discovery_gossip.simulation import SimNet
from omerta_discovery_gossip.swim import Membership, SwimSettings

from omerta_core.identity import Identity
from omerta_core.interfaces.common import Endpoint
from omerta_core.interfaces.discovery import Liveness


def convergence_bound(n: int, settings: SwimSettings) -> int:
    """Rounds within which every member knows every other (no loss): two anti-entropy periods plus spread."""
    return 2 * settings.sync_every + 3 * math.ceil(math.log2(n + 1))


def death_bound(n: int, settings: SwimSettings) -> float:
    """Rounds from a crash to every member seeing it dead: detection, suspicion, then dissemination."""
    spread = 3 * math.ceil(math.log2(n + 1))
    return 2 + settings.suspicion_mult * math.log2(n + 1) + spread


def build(simnet: SimNet, network: Network, n: int) -> list:
    boot = simnet.add_node([network])
    return [boot] + [simnet.add_node([network], bootstrap=boot) for _ in range(n - 1)]


@pytest.mark.parametrize("n", [10, 30, 60])
def test_every_node_learns_every_other_within_the_bound(simnet: SimNet, network: Network, n: int) -> None:
    build(simnet, network, n)
    elapsed = simnet.run_until(lambda: simnet.knows_all(network), limit=300)
    assert elapsed / simnet.settings.probe_interval <= convergence_bound(n, simnet.settings)


def test_convergence_survives_five_percent_loss(network: Network) -> None:
    simnet = SimNet(seed=11, loss=0.05)
    build(simnet, network, 30)
    simnet.run_until(lambda: simnet.knows_all(network), limit=300)


def test_late_joiner_catches_up_by_anti_entropy(simnet: SimNet, network: Network) -> None:
    peers = build(simnet, network, 20)
    simnet.run_until(lambda: simnet.knows_all(network), limit=300)
    simnet.run(60)
    late = simnet.add_node([network], bootstrap=peers[7])
    simnet.run_until(lambda: simnet.knows_all(network), limit=convergence_bound(21, simnet.settings))
    assert len(simnet.core(late, network).members()) == 20


def test_killed_node_is_declared_dead_by_all_within_the_bound(simnet: SimNet, network: Network) -> None:
    peers = build(simnet, network, 30)
    simnet.run_until(lambda: simnet.knows_all(network), limit=300)
    simnet.kill(peers[4])
    elapsed = simnet.run_until(lambda: simnet.all_see(network, peers[4], Liveness.DEAD), limit=300)
    assert elapsed / simnet.settings.probe_interval <= death_bound(30, simnet.settings)
    assert all(simnet.core(p, network).member(peers[4]) is not None for p in peers if p != peers[4])


def test_falsely_suspected_node_refutes_and_stays_alive(simnet: SimNet, network: Network) -> None:
    peers = build(simnet, network, 10)
    simnet.run_until(lambda: simnet.knows_all(network), limit=300)
    target = peers[3]
    version = simnet.core(target, network).record.version
    simnet.nodes[target].up = False
    simnet.run_until(lambda: simnet.all_see(network, target, Liveness.SUSPECT), limit=60, step=0.01)
    simnet.nodes[target].up = True
    simnet.run_until(lambda: simnet.all_see(network, target, Liveness.ALIVE), limit=60)
    assert simnet.core(target, network).record.version > version
    assert simnet.core(target, network).counters["refutations"] >= 1


def test_node_restarted_at_a_new_endpoint_is_seen_there_via_its_cache(simnet: SimNet, network: Network) -> None:
    peers = build(simnet, network, 12)
    simnet.run_until(lambda: simnet.knows_all(network), limit=300)
    moved = peers[5]
    old = simnet.nodes[moved]
    cached = [m.record for m in old.cores[network.id].members().values()]
    simnet.kill(moved)
    simnet.run(5)
    del simnet.nodes[moved]
    identity = old.identity
    new_endpoint = Endpoint("198.18.0.9", 40000)
    core = Membership(
        identity, network, version=int(simnet.now * 1000) + 1, now=simnet.now, local_endpoints=(new_endpoint,)
    )
    for record in cached:
        core.add_cached(record, simnet.now)
    simnet.nodes[moved] = type(old)(identity, new_endpoint, {network.id: core})

    def seen_at_new_endpoint() -> bool:
        return all(
            (m := simnet.core(p, network).member(moved)) is not None
            and m.liveness is Liveness.ALIVE
            and new_endpoint in m.record.endpoints
            for p in peers
            if p != moved
        )

    elapsed = simnet.run_until(seen_at_new_endpoint, limit=300)
    assert elapsed / simnet.settings.probe_interval <= convergence_bound(12, simnet.settings)


def test_messages_per_node_per_round_stay_bounded_as_the_network_grows(network: Network) -> None:
    rates = {}
    for n in (10, 30, 90):
        simnet = SimNet(seed=n)
        peers = build(simnet, network, n)
        simnet.run_until(lambda s=simnet: s.knows_all(network), limit=300)
        simnet.run(10)
        before = {p: simnet.core(p, network).counters["sent_messages"] for p in peers}
        rounds = 40
        simnet.run(rounds * simnet.settings.probe_interval)
        rates[n] = max(simnet.core(p, network).counters["sent_messages"] - before[p] for p in peers) / rounds
    # One ping, the acks of others' pings (about one), and a bounded anti-entropy share per round.
    assert max(rates.values()) <= 6, rates
    assert rates[90] <= 2 * rates[10], rates


def test_every_limit_of_the_piggyback_budget_is_respected(simnet: SimNet, network: Network) -> None:
    build(simnet, network, 40)
    simnet.run(3)
    biggest = max(
        len(a.frame)
        for a in (simnet.core(p, network)._send(q, wire.Ping(1)) for p in simnet.nodes for q in list(simnet.nodes)[:2])
    )
    assert biggest <= simnet.settings.piggyback_bytes + 64


def test_two_networks_on_the_same_nodes_never_share_records(simnet: SimNet) -> None:
    a, b = Network("a", bytes(32)), Network("b", bytes([1]) * 32)
    boot = simnet.add_node([a, b])
    only_a = [simnet.add_node([a], bootstrap=boot) for _ in range(5)]
    only_b = [simnet.add_node([b], bootstrap=boot) for _ in range(5)]
    both = [simnet.add_node([a, b], bootstrap=boot) for _ in range(3)]
    simnet.run_until(lambda: simnet.knows_all(a) and simnet.knows_all(b), limit=300)
    simnet.run(20)
    for peer in [boot, *only_a, *both]:
        members = simnet.core(peer, a).members()
        assert not set(members) & set(only_b)
        assert all(m.record.network == a.id for m in members.values())
    for peer in [boot, *only_b, *both]:
        members = simnet.core(peer, b).members()
        assert not set(members) & set(only_a)
        assert all(m.record.network == b.id for m in members.values())


def test_own_identity_is_never_a_member(simnet: SimNet, network: Network) -> None:
    peers = build(simnet, network, 5)
    simnet.run(10)
    for p in peers:
        assert p not in simnet.core(p, network).members()
        assert Identity.from_seed(bytes(32)).peer_id not in simnet.core(p, network).members()


def test_advertised_capabilities_reach_every_member(simnet: SimNet, network: Network) -> None:
    peers = build(simnet, network, 15)
    simnet.run_until(lambda: simnet.knows_all(network), limit=300)
    core = simnet.core(peers[2], network)
    core.update_self(simnet.now, capabilities={"cpus": 8, "relay": True}, relays=(peers[0],))
    assert core.record.is_valid()

    def everyone_sees_it() -> bool:
        for p in peers:
            member = simnet.core(p, network).member(peers[2])
            if p != peers[2] and (member is None or member.record.capabilities.get("cpus") != 8):
                return False
        return True

    simnet.run_until(everyone_sees_it, limit=convergence_bound(15, simnet.settings))
    assert simnet.core(peers[9], network).member(peers[2]).record.relays == (peers[0],)  # type: ignore[union-attr]
