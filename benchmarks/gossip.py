"""Gossip discovery on real nodes: convergence rounds and time, bytes and messages per node per second.

Starts N real ``omerta node --plugins udp,gossip`` processes on loopback (N = 10,
then 30), each alone; then tells all of them at once to bootstrap from the first
and measures how many gossip rounds (probe intervals, on each node's own clock;
the worst node counts) and how many seconds pass until every node knows every
other alive. Then, once the join's own dissemination has died out, measures the
steady-state gossip traffic (frame bytes, before the transport's encryption) over a window.

Run with no arguments (``python benchmarks/gossip.py``); prints the headline
figures last, one per line as ``name: value``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from omerta_discovery_gossip.cluster import LocalCluster

SIZES = (10, 30)
PROBE_INTERVAL_S = 1.0
#: After convergence, wait this long for the join's own dissemination to die out before measuring traffic.
SETTLE_S = 30.0
STEADY_WINDOW_S = 20.0
CONVERGENCE_TIMEOUT_S = 240.0


def gossip_counters(cluster: LocalCluster, name: str) -> tuple[int, int, int]:
    """(rounds, messages sent, bytes sent) of one node, over its networks."""
    networks = cluster.gossip_status(name)["networks"].values()
    return (
        max(n["rounds"] for n in networks),
        sum(n["counters"].get("sent_messages", 0) for n in networks),
        sum(n["counters"].get("sent_bytes", 0) for n in networks),
    )


def converged(cluster: LocalCluster) -> bool:
    ids = {node.peer_id for node in cluster.nodes.values()}
    for name, node in cluster.nodes.items():
        alive = {r["peer"] for r in cluster.call(name, "gossip.peers") if r["liveness"] == "alive"}
        if not ids - {node.peer_id} <= alive:
            return False
    return True


def measure(root: Path, n: int) -> dict[str, float]:
    cluster = LocalCluster(root, probe_interval_s=PROBE_INTERVAL_S)
    try:
        names = [f"n{i:02d}" for i in range(n)]
        for name in names:
            cluster.spawn(name)
        cluster.wait_ready(names)
        boot = cluster.nodes[names[0]].endpoint
        before = {name: gossip_counters(cluster, name)[0] for name in names}
        started = time.monotonic()
        for name in names[1:]:
            cluster.call(name, "gossip.bootstrap", {"entry": boot})
        while not converged(cluster):
            if time.monotonic() - started > CONVERGENCE_TIMEOUT_S:
                raise TimeoutError(f"{n} nodes did not converge within {CONVERGENCE_TIMEOUT_S} s")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        conv_rounds = max(gossip_counters(cluster, name)[0] - before[name] for name in names)
        time.sleep(SETTLE_S)
        first = {name: gossip_counters(cluster, name) for name in names}
        window_start = time.monotonic()
        time.sleep(STEADY_WINDOW_S)
        last = {name: gossip_counters(cluster, name) for name in names}
        window = time.monotonic() - window_start
        return {
            "rounds": conv_rounds,
            "seconds": elapsed,
            "bytes": sum(last[x][2] - first[x][2] for x in names) / n / window,
            "messages": sum(last[x][1] - first[x][1] for x in names) / n / window,
        }
    finally:
        cluster.close()


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory(prefix="omerta-gossip-bench-") as tmp:
        for n in SIZES:
            results[n] = measure(Path(tmp) / f"n{n}", n)
            print(f"n={n}: {results[n]}", flush=True)
    for n in SIZES:
        r = results[n]
        print(f"gossip_convergence_s_n{n}: {r['seconds']:.2f}")
        print(f"gossip_bytes_per_node_per_s_n{n}: {r['bytes']:.0f}")
        print(f"gossip_messages_per_node_per_s_n{n}: {r['messages']:.2f}")
        print(f"gossip_convergence_rounds_n{n}: {r['rounds']:.0f}")


if __name__ == "__main__":
    main()
