"""Acceptance on real processes: `omerta node --plugins udp,gossip` nodes on loopback, one bootstrap.

Bounds, in gossip rounds (one probe interval each), for n nodes with the default settings
(sync_every=4, suspicion_mult=2); an infection-style spread takes about log2(n) rounds, 3*ceil(log2(n+1)) allows
for the randomness:

- convergence: every node knows every other alive within 2*sync_every + 3*ceil(log2(n+1)) rounds
  (23 for n=30) of the youngest node's start;
- failure: a killed node is declared dead by all within 2 + 2*log2(n+1) + 3*ceil(log2(n+1)) rounds
  (27 for n=30) of the bootstrap's clock;
- restart: a node restarted on a new port, with no bootstrap (from its peer cache), is seen alive at the
  new endpoint by all within the convergence bound of its own clock;
- load: messages sent per node per second stay below 6 per probe interval at n=10 and n=30, and do not
  double from 10 to 30.

The machine is shared, so waits are generous; bounds are asserted on the nodes' own round counters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from omerta_discovery_gossip.cluster import LocalCluster
from omerta_discovery_gossip.network import Network
from omerta_discovery_gossip.network_store import NetworkStore

pytestmark = pytest.mark.slow

N = 30
SYNC_EVERY, SPREAD, SUSPICION = 4, 3, 2.0
PATIENCE_S = 240.0


def convergence_bound(n: int) -> int:
    return 2 * SYNC_EVERY + SPREAD * math.ceil(math.log2(n + 1))


def death_bound(n: int) -> float:
    return 2 + SUSPICION * math.log2(n + 1) + SPREAD * math.ceil(math.log2(n + 1))


def wait_until(condition: Callable[[], bool], timeout: float = PATIENCE_S, poll: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(poll)


def view(cluster: LocalCluster, name: str, network: str | None = None) -> dict[str, dict[str, Any]]:
    return {row["peer"]: row for row in cluster.call(name, "gossip.peers", {"network": network})}


def rounds(cluster: LocalCluster, name: str) -> int:
    return max(n["rounds"] for n in cluster.gossip_status(name)["networks"].values())


def sent(cluster: LocalCluster, name: str) -> int:
    return sum(n["counters"].get("sent_messages", 0) for n in cluster.gossip_status(name)["networks"].values())


def start_cluster(root: Path, n: int) -> LocalCluster:
    cluster = LocalCluster(root)
    cluster.spawn("n00")
    cluster.wait_ready(["n00"])
    boot = cluster.nodes["n00"].endpoint
    names = [f"n{i:02d}" for i in range(1, n)]
    for name in names:
        cluster.spawn(name, bootstrap=(boot,))
    cluster.wait_ready(names)
    return cluster


def everyone_knows_everyone(cluster: LocalCluster, names: list[str]) -> bool:
    ids = {cluster.nodes[n].peer_id for n in names}
    for name in names:
        alive = {p for p, row in view(cluster, name).items() if row["liveness"] == "alive"}
        if not ids - {cluster.nodes[name].peer_id} <= alive:
            return False
    return True


def message_rate(cluster: LocalCluster, window_s: float = 20.0) -> tuple[float, float]:
    """(mean, max) messages sent per node per second over ``window_s``."""
    names = [n for n, node in cluster.nodes.items() if node.process is not None]
    before = {n: (sent(cluster, n), time.monotonic()) for n in names}
    time.sleep(window_s)
    rates = []
    for name in names:
        count, since = before[name]
        rates.append((sent(cluster, name) - count) / (time.monotonic() - since))
    return sum(rates) / len(rates), max(rates)


@pytest.fixture(scope="module")
def cluster30(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, int]]:
    cluster = start_cluster(tmp_path_factory.mktemp("gossip30"), N)
    try:
        names = list(cluster.nodes)
        wait_until(lambda: everyone_knows_everyone(cluster, names))
        youngest = min(rounds(cluster, name) for name in names)
        yield cluster, youngest
    finally:
        cluster.close()


def test_thirty_nodes_learn_each_other_within_the_bound(cluster30: tuple[LocalCluster, int]) -> None:
    _cluster, youngest_rounds = cluster30
    assert youngest_rounds <= convergence_bound(N)


def test_message_rate_is_bounded_as_the_network_grows(cluster30: tuple[LocalCluster, int], tmp_path: Path) -> None:
    cluster, _ = cluster30
    mean30, max30 = message_rate(cluster)
    small = start_cluster(tmp_path, 10)
    try:
        wait_until(lambda: everyone_knows_everyone(small, list(small.nodes)))
        mean10, max10 = message_rate(small)
    finally:
        small.close()
    per_round = 6 / cluster.probe_interval_s
    assert max10 <= per_round and max30 <= per_round, (max10, max30)
    assert mean30 <= 2 * mean10, (mean10, mean30)


def test_killed_node_is_declared_dead_by_all_within_the_bound(cluster30: tuple[LocalCluster, int]) -> None:
    cluster, _ = cluster30
    victim = cluster.nodes["n05"].peer_id
    start = rounds(cluster, "n00")
    cluster.kill("n05")
    others = [n for n, node in cluster.nodes.items() if node.process is not None]
    wait_until(lambda: all(view(cluster, n).get(victim, {}).get("liveness") == "dead" for n in others))
    assert rounds(cluster, "n00") - start <= death_bound(N)


def test_node_restarted_on_a_new_port_is_seen_there_without_a_bootstrap(
    cluster30: tuple[LocalCluster, int],
) -> None:
    cluster, _ = cluster30
    moved = cluster.nodes["n10"]
    old_endpoint = moved.endpoint
    cluster.stop("n10")
    cluster.spawn("n10")  # same state directory and identity, new ephemeral port, no --bootstrap
    cluster.wait_ready(["n10"])
    assert moved.endpoint != old_endpoint
    others = [n for n, node in cluster.nodes.items() if node.process is not None and n != "n10"]

    def seen_at_new_endpoint() -> bool:
        return all(
            (row := view(cluster, n).get(moved.peer_id)) is not None
            and row["liveness"] == "alive"
            and moved.endpoint in row["endpoints"]
            for n in others
        )

    wait_until(seen_at_new_endpoint)
    assert rounds(cluster, "n10") <= convergence_bound(N)


def test_two_networks_on_the_same_nodes_never_leak_records(tmp_path: Path) -> None:
    a, b = Network.create("alpha"), Network.create("beta")
    cluster = LocalCluster(tmp_path)
    try:
        layout = {"boot": (a, b), "a1": (a,), "a2": (a,), "b1": (b,), "b2": (b,), "ab": (a, b)}
        for network in layout["boot"]:
            NetworkStore(tmp_path / "boot" / "plugins" / "gossip").add(network)
        cluster.spawn("boot")
        cluster.wait_ready(["boot"])
        entry = f"{cluster.nodes['boot'].peer_id}@{cluster.nodes['boot'].endpoint}"
        for name, networks in layout.items():
            if name != "boot":
                for network in networks:
                    NetworkStore(tmp_path / name / "plugins" / "gossip").add(network, (entry,))
                cluster.spawn(name)
        cluster.wait_ready()
        ids = {name: node.peer_id for name, node in cluster.nodes.items()}
        members = {net.id_hex: {ids[n] for n, nets in layout.items() if net in nets} for net in (a, b)}

        def converged() -> bool:
            return all(
                set(view(cluster, name, net.id_hex)) == members[net.id_hex] - {ids[name]}
                for name, nets in layout.items()
                for net in nets
            )

        wait_until(converged)
        time.sleep(5 * cluster.probe_interval_s)  # let more gossip flow, then look for any leak
        for name, nets in layout.items():
            rows = view(cluster, name)
            assert {row["network"] for row in rows.values()} <= {net.id_hex for net in nets}
            for row in rows.values():
                assert row["peer"] in members[row["network"]], f"{name} learned a record across networks"
            assert converged()
    finally:
        cluster.close()


def test_a_transport_restarted_on_a_new_port_is_announced_at_once(tmp_path: Path) -> None:
    """`omerta transport restart --new-port`: the node's own records name the new port as soon as the restart
    returns (not at the next periodic check), and its peer sees it alive there, on the same session."""
    cluster = LocalCluster(tmp_path)
    try:
        cluster.spawn("boot")
        cluster.wait_ready(["boot"])
        cluster.spawn("moved", bootstrap=(cluster.nodes["boot"].endpoint,))
        cluster.wait_ready(["moved"])
        moved = cluster.nodes["moved"]
        wait_until(lambda: view(cluster, "boot").get(moved.peer_id, {}).get("liveness") == "alive")
        result = cluster.call("moved", "transport.restart", {"new_port": True})
        (new_endpoint,) = result["after"]
        assert result["moved"] and result["before"] == [moved.endpoint] and new_endpoint != moved.endpoint
        for network in cluster.gossip_status("moved")["networks"].values():
            assert network["endpoints"] == [new_endpoint]

        def seen_there() -> bool:
            row = view(cluster, "boot").get(moved.peer_id)
            return row is not None and row["liveness"] == "alive" and new_endpoint in row["endpoints"]

        wait_until(seen_there, timeout=60)
        counters = cluster.call("boot", "status")["services"]["transport"]["udp"]["counters"]
        assert counters.get("peer_restarts", 0) == 0
    finally:
        cluster.close()
