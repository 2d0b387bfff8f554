"""The asyncio adapter of the `relay` plugin: relay client, NAT traversal and (optionally) relay serving.

One object per node. It reaches the transport only through
``node.service(Transport)`` and the ``PacketPathHost`` extension point:
relay and STUN datagrams go out with ``send_raw`` from the transport's own
socket (so the relay sees the same NAT mapping as the node's peers do) and
come back through ``on_raw_datagram``; session packets for peers without a
direct path are handed to this object as a ``PacketPath`` and travel
unchanged inside SEND/DATA; punch signalling rides on the transport's
reliable channel and probes are the transport's own authenticated packets.
Protocol decisions live in the sans-IO modules; this one moves bytes, keeps
the clock and runs the timers. Touches the transport (through its interface)
and, when serving, one extra UDP socket (the relay's second port).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import socket
import time
from collections import Counter
from typing import Any

import structlog

from omerta_core.errors import ConfigError, OmertaError
from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.interfaces.nat import NatFiltering, NatMapping
from omerta_core.interfaces.transport import PathHostTransport, Transport
from omerta_core.node import NodeContext
from omerta_transport_relay import client, stun, wire
from omerta_transport_relay import punch as holepunch
from omerta_transport_relay.classify import Observation, classify_filtering, classify_mapping, direct_possible
from omerta_transport_relay.server import RelayServer

#: Timer resolution: refreshes, probes, STUN retransmissions and punch schedules.
TICK_S = 0.05
#: Re-learn the NAT's behaviour this often (a laptop changes networks).
CLASSIFY_INTERVAL_S = 300.0
#: How long a filtering probe may take to come back before it counts as filtered.
FILTER_PROBE_WAIT_S = 2.0
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
        self.pool = client.RelayPool(self.me, node.identity.sign)
        self.server: RelayServer | None = None
        self.counters: Counter[str] = Counter()
        self._transport: PathHostTransport | None = None
        self._other_socket: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stun: list[tuple[stun.BindingTransaction, Endpoint]] = []
        self._observations: dict[Endpoint, Observation] = {}
        self._filter_probe: tuple[bytes, float] | None = None
        self._filter_results: dict[str, bool] = {}
        self._behaviour: tuple[NatMapping, NatFiltering] = (NatMapping.UNKNOWN, NatFiltering.UNKNOWN)
        self._next_classify = 0.0
        self._punching: dict[PeerId, holepunch.PeerPunching] = {}
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
            self.server = RelayServer(self.me, other_port=other)
        for configured, endpoint in self._relay_entries:
            relay = configured or await self._identify(endpoint)
            if relay is not None:
                self.pool.add_relay(relay, endpoint)
        transport.register_path(self)
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

    # -- PacketPath --------------------------------------------------------------------

    def can_reach(self, peer: PeerId) -> bool:
        return self.pool.route(PeerId(peer), time.monotonic()) is not None

    def send_packet(self, peer: PeerId, packet: bytes) -> None:
        now = time.monotonic()
        peer = PeerId(peer)
        out = self.pool.send(peer, packet, now)
        if out is not None:
            self.transport.send_raw(*out)
        if self.punching:
            self._maybe_start_punch(peer, now)

    # -- NatTraversal --------------------------------------------------------------

    def observed_endpoints(self) -> list[Endpoint]:
        from_relays = [link.observed for link in self.pool.links if link.observed is not None]
        return list(dict.fromkeys([*from_relays, *(o.mapped for o in self._observations.values())]))

    def behaviour(self) -> tuple[NatMapping, NatFiltering]:
        return self._behaviour

    async def punch(self, peer: PeerId, rendezvous: PeerId) -> Endpoint | None:
        """Punch towards ``peer`` now; signalling goes through whichever relay carries the session.

        ``rendezvous`` is accepted for the interface's sake: the offer travels on
        the transport's session with ``peer``, which already runs through a relay
        (or a bootstrap peer) both sides reach.
        """
        assert self._loop is not None
        peer = PeerId(peer)
        history = self._punching.setdefault(peer, holepunch.PeerPunching())
        history.not_before = 0.0
        history.hopeless = False
        waiter: asyncio.Future[Endpoint | None] = self._loop.create_future()
        self._punch_waiters.setdefault(peer, []).append(waiter)
        self._maybe_start_punch(peer, time.monotonic())
        return await waiter

    # -- status ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        mapping, filtering = self._behaviour
        return {
            "peer_id": self.me,
            "observed": [str(e) for e in self.observed_endpoints()],
            "mapping": mapping.value,
            "filtering": filtering.value,
            "relays": self.pool.status(now),
            "client_counters": dict(self.pool.counters),
            "counters": dict(self.counters),
            "punching": {
                peer: {
                    "state": h.current.state.value if h.current else None,
                    "failures": h.failures,
                    "probes_sent": h.current.probes_sent if h.current else 0,
                    "direct": self._transport.endpoint_of(peer) is not None if self._transport else False,
                }
                for peer, h in self._punching.items()
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
                self._on_stun_answer(data, source)
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
            self._on_probed(message.txid)
            return
        link = self.pool.link_at(source)
        if link is not None and not isinstance(message, wire.Send | wire.Allocate | wire.ProbeMe):
            replies, event = self.pool.receive(link, message, now)
            for reply in replies:
                self.transport.send_raw(link.endpoint, reply)
            if isinstance(event, client.Delivered):
                self.transport.deliver_packet(event.packet, self, event.source)
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

    # -- reflection and classification ---------------------------------------------

    def _on_stun_answer(self, data: bytes, source: Endpoint) -> None:
        for txn, observer in self._stun:
            if txn.receive(data, source) and txn.result is not None:
                self._observe(observer, txn.result)
                return

    def _observe(self, observer: Endpoint, mapped: Endpoint) -> None:
        known = self._observations.get(observer)
        if known is not None and known.mapped == mapped:
            return
        port = self.transport.local_endpoints()[0].port
        self._observations[observer] = Observation(observer, Endpoint(_local_address_for(observer), port), mapped)

    def _classify(self, now: float) -> None:
        for link in self.pool.links:
            if link.observed is not None:
                self._observe(link.endpoint, link.observed)
        by_family = [o for o in self._observations.values() if not o.observer.is_ipv6]
        local_addresses = {o.local.host for o in by_family}
        mapping = classify_mapping(by_family, local_addresses)
        filtering = classify_filtering(
            mapping,
            from_other_port=self._filter_results.get("other_port"),
            from_other_address=None,
        )
        if (mapping, filtering) != self._behaviour:
            self.log.info("nat classified", mapping=mapping.value, filtering=filtering.value)
        self._behaviour = (mapping, filtering)

    def _start_discovery(self, now: float) -> None:
        """Ask the first healthy relay for a filtering probe from its second port.

        The STUN requests to the relays' second ports (more observers for the
        mapping) wait until that probe is decided: sending to the second port
        first would open the NAT's filter for it and spoil the test.
        """
        self._filter_results.clear()
        healthy = self.pool.healthy_links(now)
        self._stun = []
        if healthy and healthy[0].other_port:
            txid = secrets.token_bytes(wire.TXID_LEN)
            self._filter_probe = (txid, now + FILTER_PROBE_WAIT_S)
            self.transport.send_raw(healthy[0].endpoint, wire.encode(wire.ProbeMe(txid)))
        else:
            self._start_stun(now)

    def _start_stun(self, now: float) -> None:
        observers = list(self._stun_servers)
        observers += [Endpoint(link.endpoint.host, link.other_port) for link in self.pool.links if link.other_port]
        self._stun = [(stun.BindingTransaction(o, now), o) for o in observers if not o.is_ipv6]

    def _on_probed(self, txid: bytes) -> None:
        if self._filter_probe is not None and self._filter_probe[0] == txid:
            self._filter_probe = None
            self._filter_results["other_port"] = True
            self._start_stun(time.monotonic())

    # -- hole punching ----------------------------------------------------------------

    def _candidates(self) -> tuple[Endpoint, ...]:
        local = [e for e in self.transport.local_endpoints() if not ipaddress.ip_address(e.host).is_unspecified]
        return tuple(dict.fromkeys([*self.observed_endpoints(), *local]))[: holepunch.MAX_CANDIDATES]

    def _maybe_start_punch(self, peer: PeerId, now: float) -> None:
        history = self._punching.setdefault(peer, holepunch.PeerPunching())
        if not history.may_start(now) or self.transport.endpoint_of(peer) is not None:
            return
        candidates = self._candidates()
        if not candidates:
            return  # nothing to offer yet; the next relayed packet tries again
        attempt = holepunch.Attempt.offer(now)
        history.current = attempt
        self.counters["punch_offers_sent"] += 1
        mapping, filtering = self._behaviour
        offer = holepunch.Signal(holepunch.Kind.OFFER, attempt.attempt, mapping, filtering, candidates)
        self._send_signal(peer, offer)

    def _send_signal(self, peer: PeerId, signal: holepunch.Signal) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self.transport.send(peer, holepunch.CHANNEL, signal.encode()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_signal(self, peer: PeerId, data: bytes) -> None:
        now = time.monotonic()
        try:
            signal = holepunch.Signal.decode(data)
        except holepunch.PunchError:
            self.counters["dropped_malformed_signal"] += 1
            return
        peer = PeerId(peer)
        history = self._punching.setdefault(peer, holepunch.PeerPunching())
        history.remote_behaviour = (signal.mapping, signal.filtering)
        possible = direct_possible(self._behaviour, history.remote_behaviour)
        if signal.kind is holepunch.Kind.OFFER:
            self.counters["punch_offers_received"] += 1
            current = history.current
            if current is None or current.state not in (holepunch.State.OFFERED, holepunch.State.PROBING):
                current = history.current = holepunch.Attempt(signal.attempt, now)
            mapping, filtering = self._behaviour
            answer = holepunch.Signal(holepunch.Kind.ANSWER, signal.attempt, mapping, filtering, self._candidates())
            self._send_signal(peer, answer)
        else:
            current = history.current
            if current is None or current.attempt != signal.attempt:
                self.counters["dropped_stale_answer"] += 1
                return
        if not possible:
            self.counters["punch_skipped_hopeless"] += 1
            current.state, current.finished = holepunch.State.FAILED, now
            history.record_failure(now)
            history.not_before = now + holepunch.RETRY_MAX_S
            self._finish_waiters(peer, None)
            return
        current.start_probing(signal.candidates, now)

    def _run_punches(self, now: float) -> None:
        for peer, history in self._punching.items():
            attempt = history.current
            if attempt is None or attempt.state is holepunch.State.FAILED:
                continue
            if attempt.state is holepunch.State.DIRECT:
                direct = self.transport.endpoint_of(peer)
                if direct is not None and attempt.confirmation_due(now):
                    self.transport.probe(peer, direct)
                continue
            for endpoint in attempt.due_probes(now):
                self.transport.probe(peer, endpoint)
            state = attempt.check(now, direct=self.transport.endpoint_of(peer) is not None)
            if state is holepunch.State.DIRECT:
                history.record_success()
                self.counters["punches_succeeded"] += 1
                self.log.info("direct path", peer=peer.short, endpoint=str(self.transport.endpoint_of(peer)))
                self._finish_waiters(peer, self.transport.endpoint_of(peer))
            elif state is holepunch.State.FAILED:
                history.record_failure(now)
                self.counters["punches_failed"] += 1
                self.log.info("punch failed; staying on the relay", peer=peer.short, failures=history.failures)
                self._finish_waiters(peer, None)

    def _finish_waiters(self, peer: PeerId, result: Endpoint | None) -> None:
        for waiter in self._punch_waiters.pop(peer, []):
            if not waiter.done():
                waiter.set_result(result)

    # -- timer ----------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self._tick(time.monotonic())
            except Exception:
                self.counters["tick_errors"] += 1
                self.log.exception("relay tick failed")

    def _tick(self, now: float) -> None:
        for endpoint, data in self.pool.poll(now):
            self.transport.send_raw(endpoint, data)
        for txn, observer in self._stun:
            request = txn.poll(now)
            if request is not None:
                self.transport.send_raw(observer, request)
        if self._filter_probe is not None and now >= self._filter_probe[1]:
            self._filter_probe = None
            self._filter_results["other_port"] = False
            self._start_stun(now)
        if now >= self._next_classify and (self.pool.healthy_links(now) or not self.pool.links):
            self._start_discovery(now)
            self._next_classify = now + CLASSIFY_INTERVAL_S
        self._classify(now)
        self._run_punches(now)
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
