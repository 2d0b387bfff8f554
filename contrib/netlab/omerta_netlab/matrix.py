"""The NAT matrix: two relays, a public host and every NAT behaviour, with real nodes for each ordered pair.

Builds a lab with two relay nodes (``udp,relay`` serving) and, per kind
(``public`` and each :class:`NatBehaviour`), two hosts behind two separate
routers of that kind. :meth:`NatMatrix.run_pair` starts fresh nodes (new
identities) on one host of each kind, lets the first send to the second
knowing only its peer id (and its address when it is public), and measures
the time to the first delivered message and the time until both ends route
to each other directly. Used by the relay plugin's acceptance tests, by
``benchmarks/nat_matrix.py`` and by the demo. Touches the lab it builds and
the work directory it is given.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

from omerta_core.testing import NodeStartError
from omerta_netlab.behaviour import NatBehaviour
from omerta_netlab.lab import Host, Lab
from omerta_netlab.nodes import POLL_INTERVAL_S, LabNode

PUBLIC = "public"
KINDS: tuple[str, ...] = (PUBLIC, *(b.value for b in NatBehaviour))
#: Channel the matrix's application messages use.
CHANNEL = "matrix"
#: Time a pair gets to deliver its first message (relay allocation, handshake, delivery).
FIRST_MESSAGE_TIMEOUT_S = 30.0
#: Time a pair gets, after its first message, to end up on a direct path.
DIRECT_TIMEOUT_S = 20.0
#: Messages exchanged each way after the path settled, all of which must arrive.
FOLLOW_UP_MESSAGES = 20
#: How often wait_for() polls: the resolution of the matrix's timings (each poll is a control-API call).
CONDITION_POLL_S = 0.02
#: Seconds to wait for relays to report a healthy allocation for a new node.
ALLOCATION_TIMEOUT_S = 20.0


def expected_direct(first: str, second: str) -> bool:
    """Whether hole punching (without birthday probing) can connect these two kinds directly."""
    hard = {NatBehaviour.SYMMETRIC.value}
    strict = {NatBehaviour.PORT_RESTRICTED.value, NatBehaviour.SYMMETRIC.value}
    if first in hard:
        return second not in strict
    if second in hard:
        return first not in strict
    return True


@dataclass
class PairResult:
    source: str
    target: str
    connected: bool
    path: str
    first_message_s: float | None
    direct_s: float | None
    expected_direct: bool
    #: Packets the relays forwarded while the follow-up messages flowed (0 once a pair is direct).
    relayed_after_settle: int = 0

    @property
    def name(self) -> str:
        return f"{self.source} -> {self.target}"


class NatMatrix:
    """A lab with relays and two hosts per kind; runs ordered pairs with fresh nodes."""

    def __init__(self, lab: Lab, workdir: Path, kinds: tuple[str, ...] = KINDS) -> None:
        self.lab = lab
        self.workdir = workdir
        self.kinds = kinds
        self._counter = itertools.count()
        self.relay_hosts = [lab.add_public_host("relay1"), lab.add_public_host("relay2")]
        self.hosts: dict[str, list[Host]] = {}
        for kind in kinds:
            pair = []
            for index in (1, 2):
                name = f"{kind.replace('-', '_')}{index}"
                if kind == PUBLIC:
                    pair.append(lab.add_public_host(name))
                else:
                    router = lab.add_nat(f"nat_{name}", NatBehaviour(kind))
                    pair.append(lab.add_host(name, router))
            self.hosts[kind] = pair
        self.relays: list[LabNode] = []

    def start_relays(self) -> list[LabNode]:
        for host in self.relay_hosts:
            node = LabNode(self.lab, host, self.workdir / host.name)
            node.start("plugins.udp.port=7700", 'plugins.udp.host="::"', "plugins.relay.serve=true")
            self.relays.append(node)
        return self.relays

    def relay_setting(self, relays: list[LabNode] | None = None) -> str:
        entries = [f'"{r.peer_id}@{r.host.address}:7700"' for r in relays or self.relays]
        return f"plugins.relay.relays=[{', '.join(entries)}]"

    def start_client(self, host: Host, *extra: str) -> LabNode:
        """A fresh node (new identity) on ``host`` holding allocations on the matrix's relays."""
        node = LabNode(self.lab, host, self.workdir / f"{host.name}-{next(self._counter)}")
        node.start("plugins.udp.port=0", 'plugins.udp.host="0.0.0.0"', self.relay_setting(), *extra)
        if not wait_for(lambda: all(r["healthy"] for r in node.relay_status()["relays"]), ALLOCATION_TIMEOUT_S):
            node.stop()
            raise NodeStartError(f"node on {host.name} got no allocation on every relay: {node.log_path}")
        return node

    def connect(self, source: LabNode, target: LabNode) -> None:
        """Tell ``source`` about ``target``: its peer id, and its address only when it is public."""
        endpoints = [f"{target.host.address}:{target.port}"] if target.host.public else []
        source.call("udp.add_peer", {"peer": target.peer_id, "endpoints": endpoints})

    def run_pair(self, source_kind: str, target_kind: str) -> PairResult:
        source = self.start_client(self.hosts[source_kind][0])
        target = self.start_client(self.hosts[target_kind][1])
        try:
            return self._measure(source, target, source_kind, target_kind)
        finally:
            source.stop()
            target.stop()

    def _measure(self, source: LabNode, target: LabNode, source_kind: str, target_kind: str) -> PairResult:
        result = PairResult(
            source_kind, target_kind, False, "none", None, None, expected_direct(source_kind, target_kind)
        )
        target.call("udp.subscribe", {"channel": CHANNEL})
        source.call("udp.subscribe", {"channel": CHANNEL})
        self.connect(source, target)
        started = time.monotonic()
        source.call("udp.send", {"peer": target.peer_id, "channel": CHANNEL, "text": "hello"})
        if not wait_for(lambda: bool(target.received(CHANNEL)), FIRST_MESSAGE_TIMEOUT_S):
            return result
        result.first_message_s = time.monotonic() - started

        def both_direct() -> bool:
            routes = (source.route_to(target.peer_id), target.route_to(source.peer_id))
            return all(route is not None and not route.startswith("via") for route in routes)

        if wait_for(both_direct, DIRECT_TIMEOUT_S if result.expected_direct else punch_grace()):
            result.direct_s = time.monotonic() - started
        result.path = "direct" if both_direct() else "relay"
        forwarded_before = self.relay_forwarded()
        for sender, receiver in ((source, target), (target, source)):
            sender.call(
                "udp.send",
                {"peer": receiver.peer_id, "channel": CHANNEL, "text": "m", "count": FOLLOW_UP_MESSAGES},
            )
        source_got = collect(source, FOLLOW_UP_MESSAGES)
        target_got = collect(target, FOLLOW_UP_MESSAGES)
        result.connected = len(source_got) == len(target_got) == FOLLOW_UP_MESSAGES
        result.relayed_after_settle = self.relay_forwarded() - forwarded_before
        return result

    def relay_forwarded(self) -> int:
        """Packets forwarded by all running relays so far."""
        total = 0
        for relay in self.relays:
            if relay.process is None or relay.process.poll() is not None:
                continue
            server = relay.relay_status()["server"] or {}
            total += int(server.get("counters", {}).get("forwarded_packets", 0))
        return total


def punch_grace() -> float:
    """How long a pair expected to stay relayed is watched for a (surprising) direct path."""
    return 8.0


def collect(node: LabNode, want: int, timeout: float = FIRST_MESSAGE_TIMEOUT_S) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += node.received(CHANNEL)
        time.sleep(POLL_INTERVAL_S)
    return got


def wait_for(condition: object, timeout: float) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` seconds pass; return its last value."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(CONDITION_POLL_S)
