"""The asyncio adapter of the `relay` plugin: relay client, NAT traversal and (optionally) relay serving.

One object per node. It reaches the transport only through
``node.service(Transport)`` and the ``PacketPathHost`` extension point:
relay and STUN datagrams go out with ``send_raw`` from the transport's own
socket (so the relay sees the same NAT mapping as the node's peers do) and
come back through ``on_raw_datagram``; session packets for peers without a
direct path are handed to this object as a ``PacketPath`` and travel
unchanged inside SEND/DATA; punch signalling rides on the transport's
reliable channel and probes are the transport's own authenticated packets.
Protocol decisions live in the sans-IO cores (:mod:`.traversal` drives the
NAT classification and the punches, :mod:`.client` the relay allocations,
:mod:`.server` the relay); this one moves bytes, keeps the clock, runs the
timer and carries out the cores' actions. Touches the transport (through its interface)
and, when serving, one extra UDP socket (the relay's second port).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections import Counter
from typing import Any

import structlog

from omerta_core.errors import ConfigError, OmertaError
from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.interfaces.nat import NatFiltering, NatMapping
from omerta_core.interfaces.transport import PathHostTransport, RestartableTransport, Transport, TransportRestart
from omerta_core.node import NodeContext
from omerta_core.randomness import child_random, system_random
from omerta_transport_relay import client, stun, traversal, wire
from omerta_transport_relay import punch as holepunch
from omerta_transport_relay.server import RelayServer

#: Longest sleep of the timer: relay allocations this node serves expire at most this late.
MAX_TICK_SLEEP_S = 1.0
#: Shortest time between two timer runs: bounds the cost of a deadline that stays due.
MIN_TICK_GAP_S = 0.001
#: Relays given without a peer id are identified at start; this many tries each.
IDENTIFY_TRIES = 3
#: Largest datagram read from the relay's second socket (STUN requests are small).
MAX_DATAGRAM = 2048


class RelayUnavailableError(OmertaError):
    """The relay plugin cannot work with the node's transport."""


def _normalise(host: str) -> str:
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def parse_relay(entry: str) -> tuple[PeerId | None, Endpoint]:
    """``PEERID@HOST:PORT`` or ``HOST:PORT``."""
    peer_text, sep, address = entry.rpartition("@")
    try:
        return (PeerId(peer_text) if sep else None), Endpoint.parse(address)
    except ValueError as exc:
        raise ConfigError(f"plugins.relay.relays: {exc}") from exc


class RelayService:
    """NAT traversal backend and relay packet path of one node (and its relay server when serving)."""

    name = "relay"

    def __init__(
        self,
        node: NodeContext,
        *,
        serve: bool = False,
        other_port: int = 0,
        relays: list[str] | None = None,
        stun_servers: list[str] | None = None,
        punching: bool = True,
    ) -> None:
        self.node = node
        self.me = PeerId(node.identity.peer_id)
        self.log = node.log.bind(plugin="relay") if node.log is not None else structlog.get_logger("omerta.relay")
        self.serve = serve
        self.punching = punching
        self._relay_entries = [parse_relay(e) for e in relays or []]
        try:
            self._stun_servers = [Endpoint.parse(s) for s in stun_servers or []]
        except ValueError as exc:
            raise ConfigError(f"plugins.relay.stun_servers: {exc}") from exc
        self._other_port_wanted = other_port
        self._rng = system_random()
        self.pool = client.RelayPool(self.me, node.identity.sign, rng=child_random(self._rng, "relay client"))
        self.classifier = traversal.NatClassifier(
            self._stun_servers, _local_address_for, child_random(self._rng, "classifier")
        )
        self.punches = traversal.PunchCoordinator(child_random(self._rng, "punch"))
        self.server: RelayServer | None = None
        self.counters: Counter[str] = Counter()
        self._transport: PathHostTransport | None = None
        self._other_socket: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._sleep_until = float("inf")
        self._punch_waiters: dict[PeerId, list[asyncio.Future[Endpoint | None]]] = {}

    @property
    def transport(self) -> PathHostTransport:
        """The node's transport, as a packet-path host (set by :meth:`start`)."""
        if self._transport is None:
            raise RelayUnavailableError("the relay service has not started")
        return self._transport

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        transport = self.node.service(Transport)
        if not isinstance(transport, PathHostTransport):
            raise RelayUnavailableError("the relay plugin needs a transport with packet paths (plugin udp)")
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        transport.on_raw_datagram(self._on_raw)
        self.transport.on_message(holepunch.CHANNEL, self._on_signal)
        if self.serve:
            self._open_other_port()
            other = self._other_socket.getsockname()[1] if self._other_socket else 0
            self.server = RelayServer(self.me, other_port=other, rng=child_random(self._rng, "relay server"))
        for configured, endpoint in self._relay_entries:
            relay = configured or await self._identify(endpoint)
            if relay is not None:
                self.pool.add_relay(relay, endpoint)
        transport.register_path(self)
        if isinstance(transport, RestartableTransport):
            transport.on_restart(self._on_transport_restart)
        self._ticker = self._loop.create_task(self._tick_forever())
        self.log.info(
            "relay plugin started",
            serving=self.serve,
            other_port=self.server.other_port if self.server else None,
            relays=[str(link.endpoint) for link in self.pool.links],
        )

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._transport is not None:
            self._transport.unregister_path(self)
        if self._other_socket is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._other_socket.fileno())
            self._other_socket.close()
            self._other_socket = None
        for task in list(self._tasks):
            task.cancel()
        for waiters in self._punch_waiters.values():
            for waiter in waiters:
                waiter.cancel()
        self._punch_waiters.clear()

    async def _identify(self, endpoint: Endpoint) -> PeerId | None:
        for _ in range(IDENTIFY_TRIES):
            try:
                return PeerId(await self.transport.identify(endpoint))
            except OmertaError:
                continue
        self.log.warning("relay did not identify itself; skipped", endpoint=str(endpoint))
        return None

    def _open_other_port(self) -> None:
        family = socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.bind(("::", self._other_port_wanted))
            else:
                sock.bind(("0.0.0.0", self._other_port_wanted))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"plugins.relay.other_port {self._other_port_wanted}: {exc}") from exc
        sock.setblocking(False)
        self._other_socket = sock
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._other_readable)

    def _on_transport_restart(self, restart: TransportRestart) -> None:
        """The transport reopened its socket: re-register with every relay now, learn the NAT's mapping of the
        new socket afresh, and punch anew without back-off."""
        self.pool.reallocate(time.monotonic())
        self.classifier.moved()
        self.punches.moved()
        self._wake.set()
        self.log.info("re-registering with the relays", endpoints=[str(e) for e in restart.after])

    # -- PacketPath --------------------------------------------------------------------

    def can_reach(self, peer: PeerId, now: float) -> bool:
        return self.pool.route(PeerId(peer), now) is not None

    def send_packet(self, peer: PeerId, packet: bytes) -> None:
        now = time.monotonic()
        peer = PeerId(peer)
        out = self.pool.send(peer, packet, now)
        if out is not None:
            self.transport.send_raw(*out)
        if self.punching:
            direct = self.transport.endpoint_of(peer) is not None
            self._carry_out(
                self.punches.relayed(peer, now, direct=direct, ours=self.behaviour(), candidates=self._candidates())
            )

    # -- NatTraversal --------------------------------------------------------------

    def observed_endpoints(self) -> list[Endpoint]:
        from_relays = [link.observed for link in self.pool.links if link.observed is not None]
        return list(dict.fromkeys([*from_relays, *self.classifier.observed_endpoints()]))

    def behaviour(self) -> tuple[NatMapping, NatFiltering]:
        return self.classifier.behaviour

    async def punch(self, peer: PeerId, rendezvous: PeerId) -> Endpoint | None:
        """Punch towards ``peer`` now; signalling goes through whichever relay carries the session.

        ``rendezvous`` is accepted for the interface's sake: the offer travels on
        the transport's session with ``peer``, which already runs through a relay
        (or a bootstrap peer) both sides reach.
        """
        assert self._loop is not None
        peer = PeerId(peer)
        waiter: asyncio.Future[Endpoint | None] = self._loop.create_future()
        self._punch_waiters.setdefault(peer, []).append(waiter)
        direct = self.transport.endpoint_of(peer) is not None
        self._carry_out(
            self.punches.request(
                peer, time.monotonic(), direct=direct, ours=self.behaviour(), candidates=self._candidates()
            )
        )
        return await waiter

    # -- status ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        mapping, filtering = self.classifier.behaviour
        return {
            "peer_id": self.me,
            "observed": [str(e) for e in self.observed_endpoints()],
            "mapping": mapping.value,
            "filtering": filtering.value,
            "relays": self.pool.status(now),
            "client_counters": dict(self.pool.counters),
            "counters": dict(self.counters + self.punches.counters),
            "punching": {
                peer: {
                    "state": h.current.state.value if h.current else None,
                    "failures": h.failures,
                    "probes_sent": h.current.probes_sent if h.current else 0,
                    "direct": self._transport.endpoint_of(peer) is not None if self._transport else False,
                }
                for peer, h in self.punches.peers.items()
            },
            "server": self.server.status() if self.server else None,
        }

    # -- received datagrams -----------------------------------------------------------

    def _on_raw(self, data: bytes, source: Endpoint) -> None:
        now = time.monotonic()
        if stun.looks_like_stun(data):
            if self.server is not None and int.from_bytes(data[:2], "big") == stun.BINDING_REQUEST:
                self._serve(data, source, now)
            else:
                self.classifier.on_stun_answer(data, source, self._local_port())
            return
        if not wire.is_relay_datagram(data):
            self.counters["dropped_unknown"] += 1
            return
        try:
            message = wire.decode(data)
        except wire.RelayWireError:
            self.counters["dropped_malformed"] += 1
            return
        if isinstance(message, wire.Probed):
            self._carry_out(self.classifier.on_probed(message.txid, now, self.pool))
            return
        link = self.pool.link_at(source)
        if link is not None and not isinstance(message, wire.Send | wire.Allocate | wire.ProbeMe):
            replies, event = self.pool.receive(link, message, now)
            for reply in replies:
                self.transport.send_raw(link.endpoint, reply)
            if isinstance(event, client.Delivered):
                self.transport.deliver_packet(event.packet, self, event.source)
            else:
                self._wake.set()  # an allocation answered: its refresh is planned, classification may start
            return
        if self.server is not None:
            self._serve(data, source, now)
        else:
            self.counters["dropped_not_serving"] += 1

    def _serve(self, data: bytes, source: Endpoint, now: float, *, on_other_port: bool = False) -> None:
        assert self.server is not None
        for out in self.server.receive(data, source, now, on_other_port=on_other_port):
            if out.from_other_port:
                self._send_other(out.endpoint, out.data)
            else:
                self.transport.send_raw(out.endpoint, out.data)

    def _other_readable(self) -> None:
        assert self._other_socket is not None
        while True:
            try:
                data, addr = self._other_socket.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.counters["socket_errors"] += 1
                return
            if self.server is not None:
                source = Endpoint(_normalise(addr[0]), addr[1])
                self._serve(data, source, time.monotonic(), on_other_port=True)

    def _send_other(self, endpoint: Endpoint, data: bytes) -> None:
        if self._other_socket is None:
            return
        host = endpoint.host
        if self._other_socket.family == socket.AF_INET6 and not endpoint.is_ipv6:
            host = f"::ffff:{host}"
        try:
            self._other_socket.sendto(data, (host, endpoint.port))
        except OSError:
            self.counters["socket_errors"] += 1

    # -- the cores' actions ------------------------------------------------------------

    def _local_port(self) -> int:
        return int(self.transport.local_endpoints()[0].port)

    def _candidates(self) -> tuple[Endpoint, ...]:
        local = [e for e in self.transport.local_endpoints() if not ipaddress.ip_address(e.host).is_unspecified]
        return tuple(dict.fromkeys([*self.observed_endpoints(), *local]))[: holepunch.MAX_CANDIDATES]

    def _on_signal(self, peer: PeerId, data: bytes) -> None:
        actions = self.punches.on_signal(
            PeerId(peer), data, time.monotonic(), ours=self.behaviour(), candidates=self._candidates()
        )
        self._carry_out(actions)

    def _carry_out(self, actions: list[traversal.Action]) -> None:
        for action in actions:
            if isinstance(action, traversal.SendRaw):
                self.transport.send_raw(action.endpoint, action.data)
            elif isinstance(action, traversal.SendSignal):
                self._send_signal(action.peer, action.data)
            elif isinstance(action, traversal.Probe):
                self.transport.probe(action.peer, action.endpoint)
            else:
                self._punch_finished(action)
        self._poke()  # new attempts, probes or STUN transactions may be due sooner than planned

    def _send_signal(self, peer: PeerId, data: bytes) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self.transport.send(peer, holepunch.CHANNEL, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _punch_finished(self, finished: traversal.PunchFinished) -> None:
        peer = finished.peer
        if finished.endpoint is not None:
            self.log.info("direct path", peer=peer.short, endpoint=str(finished.endpoint))
        elif finished.reason == "timeout":
            failures = self.punches.peers[peer].failures
            self.log.info("punch failed; staying on the relay", peer=peer.short, failures=failures)
        for waiter in self._punch_waiters.pop(peer, []):
            if not waiter.done():
                waiter.set_result(finished.endpoint)

    # -- timer ----------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        """Run the cores when their next deadline comes (at least every MAX_TICK_SLEEP_S); inputs wake it earlier."""
        while True:
            now = time.monotonic()
            try:
                self._tick(now)
            except Exception:
                self.counters["tick_errors"] += 1
                self.log.exception("relay tick failed")
            self._wake.clear()
            self._sleep_until = min(self._next_deadline(), now + MAX_TICK_SLEEP_S)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(max(self._sleep_until, now + MIN_TICK_GAP_S)):
                    await self._wake.wait()  # the loop's clock is time.monotonic, the cores' clock

    def _next_deadline(self) -> float:
        """The client side's next deadline (the server's expiries wait for the next regular run)."""
        return min(self.pool.next_deadline(), self.classifier.next_deadline(), self.punches.next_deadline())

    def _poke(self) -> None:
        """After an input: wake the timer if a core now needs to run before it planned to wake."""
        if self._next_deadline() < self._sleep_until:
            self._wake.set()

    def _tick(self, now: float) -> None:
        for endpoint, data in self.pool.poll(now):
            self.transport.send_raw(endpoint, data)
        before = self.classifier.behaviour
        self._carry_out(self.classifier.tick(now, self.pool, self._local_port()))
        if self.classifier.behaviour != before:
            mapping, filtering = self.classifier.behaviour
            self.log.info("nat classified", mapping=mapping.value, filtering=filtering.value)
        self._carry_out(self.punches.tick(now, self.transport.endpoint_of))
        if self.server is not None:
            self.server.expire(now)


def _local_address_for(observer: Endpoint) -> str:
    """The source address the kernel would use towards ``observer`` (connect sends nothing)."""
    family = socket.AF_INET6 if observer.is_ipv6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((observer.host, observer.port))
        except OSError:
            return "0.0.0.0"
        return str(probe.getsockname()[0])
