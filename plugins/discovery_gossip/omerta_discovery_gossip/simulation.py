"""A virtual-time network that drives many pure ``Membership`` cores, for tests and simulation.

Frames are delivered after a random latency, datagrams lost at a given rate
(reliable sends are always delivered), nodes taken down and brought back. No
sockets, no real clock. Touches nothing.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from omerta_core.identity import Identity
from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.interfaces.discovery import Liveness
from omerta_discovery_gossip.network import Network
from omerta_discovery_gossip.peer_record import NETWORK_ID_BYTES
from omerta_discovery_gossip.swim import Action, Membership, PeerChanged, Send, SwimSettings


@dataclass
class SimNode:
    identity: Identity
    endpoint: Endpoint
    cores: dict[bytes, Membership] = field(default_factory=dict)
    up: bool = True


class SimNet:
    """Delivers the cores' frames with a latency and a loss rate, under virtual time."""

    def __init__(
        self, seed: int = 1, latency: float = 0.01, loss: float = 0.0, settings: SwimSettings | None = None
    ) -> None:
        self.rng = random.Random(seed)
        self.latency = latency
        self.loss = loss
        self.settings = settings or SwimSettings()
        self.now = 0.0
        self.nodes: dict[PeerId, SimNode] = {}
        self.changes: list[PeerChanged] = []
        self._queue: list[tuple[float, int, PeerId, PeerId, bytes]] = []
        self._seq = 0
        self._next_port = 10000

    def add_node(
        self, networks: list[Network], *, bootstrap: PeerId | None = None, identity: Identity | None = None
    ) -> PeerId:
        identity = identity or Identity.from_seed(self.rng.randbytes(32))
        self._next_port += 1
        node = SimNode(identity, Endpoint("198.18.0.1", self._next_port))
        self.nodes[identity.peer_id] = node
        for network in networks:
            core = Membership(
                identity,
                network,
                version=int(self.now * 1000) + 1,
                now=self.now,
                settings=self.settings,
                local_endpoints=(node.endpoint,),
                rng=random.Random(self.rng.random()),
            )
            node.cores[network.id] = core
            if bootstrap is not None:
                self._handle(identity.peer_id, core.join(bootstrap, self.now))
        return identity.peer_id

    def kill(self, peer: PeerId) -> None:
        self.nodes[peer].up = False

    def core(self, peer: PeerId, network: Network) -> Membership:
        return self.nodes[peer].cores[network.id]

    def run(self, duration: float, step: float = 0.05) -> None:
        end = self.now + duration
        while self.now < end:
            self.step(step)

    def run_until(self, condition: Callable[[], bool], limit: float, step: float = 0.05) -> float:
        """Run until ``condition()`` holds; return the virtual time it took (fail after ``limit``)."""
        start = self.now
        while not condition():
            if self.now - start >= limit:
                raise TimeoutError(f"condition not reached within {limit} s of virtual time")
            self.step(step)
        return self.now - start

    def step(self, step: float) -> None:
        self.now += step
        while self._queue and self._queue[0][0] <= self.now:
            _, _, src, dst, frame = heapq.heappop(self._queue)
            node = self.nodes.get(dst)
            if node is None or not node.up:
                continue
            network_id = frame[:NETWORK_ID_BYTES]
            core = node.cores.get(network_id)
            if core is None:
                continue
            self._handle(dst, core.receive(src, frame, self.now, self.nodes[src].endpoint))
        for peer, node in self.nodes.items():
            if node.up:
                for core in node.cores.values():
                    self._handle(peer, core.tick(self.now))

    def _handle(self, src: PeerId, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, PeerChanged):
                self.changes.append(action)
            elif isinstance(action, Send) and (action.reliable or self.rng.random() >= self.loss):
                self._seq += 1
                delay = self.latency * (0.5 + self.rng.random())
                heapq.heappush(self._queue, (self.now + delay, self._seq, src, action.peer, action.frame))

    # -- views -----------------------------------------------------------------------

    def knows_all(self, network: Network) -> bool:
        members = {p for p, n in self.nodes.items() if n.up and network.id in n.cores}
        for peer in members:
            core = self.core(peer, network)
            alive = {p for p, m in core.members().items() if m.liveness is Liveness.ALIVE}
            if not members - {peer} <= alive:
                return False
        return True

    def all_see(self, network: Network, target: PeerId, liveness: Liveness) -> bool:
        return all(
            (m := self.core(p, network).member(target)) is not None and m.liveness is liveness
            for p, n in self.nodes.items()
            if n.up and p != target and network.id in n.cores
        )
