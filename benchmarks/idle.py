"""How often an idle node wakes up: a 3-node network of real node processes with nothing to do.

Starts three real ``omerta node --plugins udp,gossip,omt`` processes on loopback, bootstraps the
second and third from the first, waits until every node knows the others alive and holds a
session to each, lets the join's own traffic die out, and then, without touching the nodes (no
control-socket calls during the window), counts their wake-ups over a window: the growth of
``voluntary_ctxt_switches`` summed over every thread in ``/proc/PID/task/*/status``. A voluntary
context switch is counted each time a thread blocks (the event loop in ``epoll_wait``, a worker
on a lock) and is then woken, so it counts the timer ticks and packet arrivals that make an idle
node use the CPU. What remains when idle is the protocol itself: SWIM's one probe per second and
its answers, acks, keepalives.

Baseline: the same benchmark on the tree before the cores said when they next need to run
(``main`` at the branch point: the udp transport ticked every 20 ms, gossip every 100 ms, the
ledger every 250 ms); run it there with ``PYTHONPATH`` pointing at that tree.

Run with no arguments (``python benchmarks/idle.py``); prints the headline figure last as
``name: value``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from omerta_core.testing import NodeProcess

NODES = 3
PLUGINS = "udp,gossip,omt"
#: After the network formed, wait this long for the join's dissemination and syncs to die out.
SETTLE_S = 20.0
WINDOW_S = 30.0
FORM_TIMEOUT_S = 120.0


def wakeups(pid: int) -> int:
    """Voluntary context switches of every thread of ``pid`` so far."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except OSError:  # the thread exited meanwhile
            continue
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


def formed(nodes: list[NodeProcess]) -> bool:
    ids = {node.peer_id for node in nodes}
    for node in nodes:
        services = node.status()["services"]
        alive = {r["peer"] for r in node.call("gossip.peers") if r["liveness"] == "alive"}
        connected = {r["peer"] for r in services["transport"]["udp"]["peers"] if r["state"] == "connected"}
        if not ids - {node.peer_id} <= alive & connected:
            return False
    return True


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="omerta-idle-") as tmp:
        root = Path(tmp)
        nodes = [NodeProcess(root / f"n{i}", PLUGINS, log_level="warning") for i in range(NODES)]
        try:
            sets = ("plugins.udp.host=127.0.0.1", "plugins.udp.port=0")
            for node in nodes:
                node.start(*sets)
            boot = nodes[0].status()["services"]["transport"]["udp"]["endpoints"][0]
            for node in nodes[1:]:
                node.call("gossip.bootstrap", {"entry": boot})
            deadline = time.monotonic() + FORM_TIMEOUT_S
            while not formed(nodes):
                if time.monotonic() > deadline:
                    raise SystemExit("the 3-node network did not form in time")
                time.sleep(0.5)
            print(f"network formed; idling {SETTLE_S:.0f} s, then counting wake-ups for {WINDOW_S:.0f} s", flush=True)
            time.sleep(SETTLE_S)
            pids = [node.process.pid for node in nodes if node.process is not None]
            before = [wakeups(pid) for pid in pids]
            started = time.monotonic()
            time.sleep(WINDOW_S)
            elapsed = time.monotonic() - started
            rates = [(wakeups(pid) - b) / elapsed for pid, b in zip(pids, before, strict=True)]
        finally:
            for node in nodes:
                node.stop()
    for index, rate in enumerate(rates):
        print(f"node n{index}: {rate:.1f} wake-ups/s")
    print(f"idle_wakeups_per_s_per_node: {sum(rates) / len(rates):.1f}")


if __name__ == "__main__":
    main()
