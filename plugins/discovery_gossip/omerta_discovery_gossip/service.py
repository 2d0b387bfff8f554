"""The asyncio adapter: runs one SWIM core per joined network over the node's transport.

Feeds the cores frames from the transport's ``gossip`` channel and the
monotonic clock, carries out their actions (sends; telling the transport
where peers are; notifying subscribers), bootstraps from ``--bootstrap``,
invites and the peer cache, and saves the cache periodically and at stop.
Touches the transport, ``networks.json`` and ``peers.sqlite`` in the plugin's state directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from omerta_core.errors import OmertaError
from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.discovery import Liveness, PeerInfo, PeerListener
from omerta_core.interfaces.transport import Delivery, RestartableTransport, Transport, TransportRestart
from omerta_core.node import NodeContext
from omerta_core.randomness import child_random, system_random
from omerta_discovery_gossip.errors import GossipError
from omerta_discovery_gossip.invite import parse_bootstrap
from omerta_discovery_gossip.network import Network, frame_network_id, public_network
from omerta_discovery_gossip.network_store import NetworkStore
from omerta_discovery_gossip.peer_cache import PeerCache
from omerta_discovery_gossip.swim import UNSPECIFIED_HOSTS, Action, Membership, PeerChanged, Send, SwimSettings

CHANNEL = "gossip"
#: Sends waiting for the transport; beyond this the newest are dropped and counted (gossip tolerates loss).
MAX_PENDING_SENDS = 4096
#: Least time between two ticks of the cores: bounds the cost of a deadline that stays due.
MIN_TICK_GAP_S = 0.001
#: Bootstrap retries back off from 1 s up to this.
MAX_BOOTSTRAP_BACKOFF_S = 30.0


class GossipDiscovery:
    """The ``gossip`` discovery service of one node."""

    def __init__(self, node: NodeContext, settings: SwimSettings, *, cache_every_s: float = 10.0) -> None:
        self.node = node
        self.settings = settings
        self.cache_every_s = cache_every_s
        self.log = node.log.bind(plugin="gossip")
        self.counters: dict[str, int] = {"send_failures": 0, "send_queue_full": 0, "unknown_network": 0}
        self._cores: dict[bytes, Membership] = {}
        self._listeners: list[PeerListener] = []
        self._sends: asyncio.Queue[Send] = asyncio.Queue(MAX_PENDING_SENDS)
        self._tasks: list[asyncio.Task[None]] = []
        self._bootstraps: dict[str, asyncio.Task[None]] = {}
        self._transport: Transport | None = None
        self._cache: PeerCache | None = None
        self._store = NetworkStore(node.plugin_state_dir("gossip"))
        self._rng = system_random()
        #: Set when an input may have moved a core's next deadline earlier than the ticker sleeps until.
        self._wake = asyncio.Event()
        self._sleep_until = float("inf")
        self._capabilities: dict[str, Any] = {}

    # -- Service ------------------------------------------------------------------

    async def start(self) -> None:
        for entry in self.node.config.node("bootstrap") or []:
            parse_bootstrap(str(entry))  # a bad entry stops the node with one line, not a warning later
        self._transport = self.node.service(Transport)
        self._cache = PeerCache(self.node.plugin_state_dir("gossip"))
        self._transport.on_message(CHANNEL, self._on_frame)
        if isinstance(self._transport, RestartableTransport):
            self._transport.on_restart(self._on_transport_restart)
        self.reload()
        for entry in self.node.config.node("bootstrap") or []:
            self._bootstrap(str(entry))
        self._tasks = [asyncio.create_task(self._tick_forever()), asyncio.create_task(self._send_forever())]

    async def stop(self) -> None:
        for task in [*self._tasks, *self._bootstraps.values()]:
            task.cancel()
        for task in [*self._tasks, *self._bootstraps.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks, self._bootstraps = [], {}
        if self._cache is not None:
            self._save_cache()
            self._cache.close()
            self._cache = None

    def status(self) -> dict[str, Any]:
        return {
            "networks": {
                core.network.id_hex: {
                    "name": core.network.name,
                    "rounds": core.rounds,
                    "members": len(core.members()),
                    "alive": sum(1 for m in core.members().values() if m.liveness is Liveness.ALIVE),
                    "version": core.record.version,
                    "endpoints": [str(e) for e in core.record.endpoints],
                    "counters": dict(sorted(core.counters.items())),
                }
                for core in self._cores.values()
            },
            "counters": dict(self.counters),
        }

    # -- Discovery ------------------------------------------------------------------

    def networks(self) -> list[str]:
        return [core.network.id_hex for core in self._cores.values()]

    def peers(self, network: str | None = None) -> list[PeerInfo]:
        return [
            info
            for core in self._cores.values()
            if network in (None, core.network.id_hex, core.network.name)
            for info in core.peers()
        ]

    def subscribe(self, listener: PeerListener) -> None:
        self._listeners.append(listener)

    def advertise(self, *, capabilities: dict[str, Any] | None = None, relays: Sequence[PeerId] | None = None) -> None:
        """Re-sign our record in every network with new capabilities or relays; gossip spreads it."""
        now = time.monotonic()
        if capabilities is not None:
            self._capabilities = dict(capabilities)
        for core in self._cores.values():
            core.update_self(now, capabilities=capabilities, relays=None if relays is None else tuple(relays))
        self._poke()

    def publish(self, key: str, value: Any) -> None:
        """Set (or, with ``None``, remove) one capability entry; every network's record is re-signed."""
        capabilities = {k: v for k, v in self._capabilities.items() if k != key}
        if value is not None:
            capabilities[key] = value
        self.advertise(capabilities=capabilities)

    # -- networks -------------------------------------------------------------------

    def reload(self) -> dict[str, list[str]]:
        """Bring the running cores in line with ``networks.json`` (after join or leave)."""
        joined = self._store.load()
        wanted = {m.network.id: m for m in joined}
        networks = [m.network for m in joined] or [public_network()]
        added, removed = [], []
        for network_id in list(self._cores):
            if network_id not in {n.id for n in networks}:
                core = self._cores.pop(network_id)
                removed.append(core.network.name)
                if self._cache is not None:
                    self._cache.forget(network_id)
        for network in networks:
            if network.id not in self._cores:
                self._add_core(network)
                added.append(network.name)
                for entry in wanted[network.id].bootstrap if network.id in wanted else ():
                    self._bootstrap(entry)
        if added or removed:
            self.log.info("networks changed", added=added, removed=removed)
            self._poke()
        return {"added": added, "removed": removed}

    def own_endpoints(self) -> list[str]:
        """``PEERID@HOST:PORT`` for each endpoint our records advertise (for invites)."""
        endpoints = {str(e) for core in self._cores.values() for e in core.record.endpoints}
        return [f"{self.node.peer_id}@{e}" for e in sorted(endpoints)]

    def loopback_endpoints(self) -> list[str]:
        """``PEERID@127.0.0.1:PORT`` for each socket bound to every address (or to loopback).

        Before any peer has reflected this node's address, these are the only
        endpoints an invite can name; they reach this node from this machine only.
        (The udp transport binds ``::`` dual-stack, so IPv4 loopback reaches it.)
        """
        assert self._transport is not None
        out = []
        for endpoint in self._transport.local_endpoints():
            if endpoint.host in UNSPECIFIED_HOSTS:
                out.append(f"{self.node.peer_id}@127.0.0.1:{endpoint.port}")
            elif endpoint.host in {"127.0.0.1", "::1"}:
                out.append(f"{self.node.peer_id}@{endpoint}")
        return sorted(set(out))

    def _add_core(self, network: Network) -> None:
        assert self._transport is not None and self._cache is not None
        now = time.monotonic()
        version = max(self._cache.own_version(network.id) + 1, int(time.time() * 1000))
        core = Membership(
            self.node.identity,
            network,
            version=version,
            now=now,
            settings=self.settings,
            local_endpoints=tuple(self._transport.local_endpoints()),
            rng=child_random(self._rng, "swim"),
        )
        if self._capabilities:
            core.update_self(now, capabilities=dict(self._capabilities))
        self._cores[network.id] = core
        self._cache.set_own_version(network.id, version)
        for record in self._cache.load(network.id):
            self._run_actions(core.add_cached(record, now))

    # -- bootstrap ---------------------------------------------------------------------

    def bootstrap(self, entry: str) -> None:
        """Join every network through ``entry`` (``HOST:PORT`` or ``PEERID@HOST:PORT``), in the background."""
        parse_bootstrap(entry)
        self._bootstrap(entry)

    def _bootstrap(self, entry: str) -> None:
        if entry in self._bootstraps and not self._bootstraps[entry].done():
            return
        self._bootstraps[entry] = asyncio.create_task(self._bootstrap_from(entry))

    async def _bootstrap_from(self, entry: str) -> None:
        assert self._transport is not None
        try:
            peer, endpoint = parse_bootstrap(entry)
        except GossipError as exc:
            self.log.warning("bootstrap entry ignored", entry=entry, reason=str(exc))
            return
        backoff = 1.0
        while peer is None:
            try:
                peer = await self._transport.identify(endpoint)
            except OmertaError as exc:
                self.log.info("bootstrap not answering yet", endpoint=str(endpoint), reason=str(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BOOTSTRAP_BACKOFF_S)
        if peer == self.node.peer_id:
            return
        self._transport.add_peer(peer, [endpoint])
        now = time.monotonic()
        for core in self._cores.values():
            self._run_actions(core.join(peer, now))
        self._poke()
        self.log.info("bootstrapping", bootstrap=peer.short, endpoint=str(endpoint))

    # -- the loops ---------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        """Tick the cores at their next deadline (or when an input moved it earlier); save the cache now and then."""
        next_save = time.monotonic() + self.cache_every_s
        while True:
            now = time.monotonic()
            for core in list(self._cores.values()):
                self._run_actions(core.tick(now))
            if now >= next_save:
                self._refresh_local_endpoints(now)
                self._save_cache()
                next_save = now + self.cache_every_s
            self._wake.clear()
            self._sleep_until = self._next_deadline()
            wake_at = max(min(next_save, self._sleep_until), now + MIN_TICK_GAP_S)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(wake_at):
                    await self._wake.wait()  # the loop's clock is time.monotonic, the cores' clock

    def _next_deadline(self) -> float:
        return min((core.next_deadline() for core in self._cores.values()), default=float("inf"))

    def _poke(self) -> None:
        """Wake the ticker to sleep again until the cores' new next deadline, earlier or later than planned.

        Later matters as much as earlier: an ack that answers the round's probe cancels its timeout,
        and an idle node should not wake up for a timeout that no longer exists.
        """
        if self._next_deadline() != self._sleep_until:
            self._wake.set()

    async def _send_forever(self) -> None:
        assert self._transport is not None
        while True:
            send = await self._sends.get()
            delivery = Delivery.RELIABLE if send.reliable else Delivery.DATAGRAM
            try:
                await self._transport.send(send.peer, CHANNEL, send.frame, delivery=delivery)
            except OmertaError as exc:
                self.counters["send_failures"] += 1
                self.log.debug("gossip send failed", peer=send.peer.short, reason=str(exc))

    def _on_frame(self, peer: PeerId, frame: bytes) -> None:
        network_id = frame_network_id(frame)
        core = self._cores.get(network_id) if network_id is not None else None
        if core is None:
            self.counters["unknown_network"] += 1
            return
        source = self._transport.endpoint_of(peer) if self._transport is not None else None
        self._run_actions(core.receive(peer, frame, time.monotonic(), source))
        self._poke()

    def _run_actions(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                try:
                    self._sends.put_nowait(action)
                except asyncio.QueueFull:
                    self.counters["send_queue_full"] += 1
            elif isinstance(action, PeerChanged):
                self._peer_changed(action.info)

    def _peer_changed(self, info: PeerInfo) -> None:
        if info.liveness is Liveness.ALIVE and info.endpoints and self._transport is not None:
            self._transport.add_peer(info.peer, list(info.endpoints))
        for listener in self._listeners:
            try:
                listener(info)
            except Exception:
                self.log.exception("peer listener failed", peer=info.peer.short)

    def _refresh_local_endpoints(self, now: float) -> None:
        """Follow the transport's bound endpoints (it may rebind); a change re-signs our records."""
        if self._transport is None:
            return
        local = tuple(self._transport.local_endpoints())
        for core in self._cores.values():
            core.update_self(now, local_endpoints=local)

    def _on_transport_restart(self, restart: TransportRestart) -> None:
        """The transport reopened its sockets: a new port goes into our records now, not at the next save."""
        if restart.moved:
            self._refresh_local_endpoints(time.monotonic())
            self._poke()

    def _save_cache(self) -> None:
        if self._cache is None:
            return
        now = time.time()
        for network_id, core in self._cores.items():
            live = [m.record for m in core.members().values() if m.liveness is not Liveness.DEAD]
            self._cache.save(network_id, live, now)
            self._cache.set_own_version(network_id, core.record.version)
