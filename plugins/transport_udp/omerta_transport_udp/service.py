"""The asyncio adapter: owns the UDP sockets and the timer, feeds :class:`TransportCore`.

Implements :class:`omerta_core.interfaces.transport.Transport`,
:class:`~omerta_core.interfaces.transport.PacketPathHost` and
:class:`~omerta_core.interfaces.transport.RestartableTransport`. All protocol
decisions live in the core; this module moves datagrams, runs handlers and
answers identify requests. Touches the UDP sockets it binds.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import inspect
import ipaddress
import socket
import struct
import sys
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

import nacl.signing
import structlog

from omerta_core.control.progress import report
from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.interfaces.transport import (
    DatagramBatchHandler,
    Delivery,
    MessageHandler,
    PacketPath,
    PathState,
    RawDatagramHandler,
    RestartListener,
    TransportRestart,
)
from omerta_core.services import Claims
from omerta_transport_udp.core import Connected, Delivered, Identified, PathRoute, RawDatagram, Settings, TransportCore
from omerta_transport_udp.errors import IdentifyTimeoutError, NotStartedError, TransportError
from omerta_transport_udp.ping import Pinger

#: Least time between two timer wake-ups: bounds the cost of a deadline that stays due.
MIN_TIMER_GAP_S = 0.001
#: Socket buffers large enough for a full send window plus bursts.
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
#: Datagrams read per readiness callback before the core's output is flushed.
RECEIVE_BATCH = 256
#: A socket silent this long before it became readable most likely holds one packet (a ping, a keystroke):
#: what the first read brings is handed over at once instead of after a read that finds the socket empty (a
#: system call and an exception, 20 µs on a cold CPU). More queued is read on the next turn of the loop (the
#: readiness is level-triggered); a steady stream keeps reading until empty, as before.
QUIET_S = 0.001
#: Datagrams held while the kernel send buffer is full; beyond that they are dropped (and counted).
MAX_SEND_BACKLOG = 8192
#: Source-address conversions remembered (the cache is cleared when full).
MAX_CACHED_ADDRESSES = 4096
#: Reliable messages kept per channel until a handler registers for it.
MAX_EARLY_MESSAGES = 1024
IDENTIFY_ATTEMPTS = 3
#: Linux socket options that exceed the sysctl buffer caps (root only); not exported by Python.
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
IDENTIFY_WAIT_S = 1.0
#: Linux UDP generic segmentation and receive offload (``linux/udp.h``); not exported by Python 3.11.
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
UDP_GRO = getattr(socket, "UDP_GRO", 104)
#: The kernel's cap on segments in one UDP GSO send (``UDP_MAX_SEGMENTS``).
GSO_MAX_SEGMENTS = 64
#: Bytes in one GSO send: under the 65,507 an IPv4 UDP datagram may carry.
GSO_MAX_BYTES = 65000
#: Room for one ``UDP_GRO`` control message (an int).
GRO_CMSG_SPACE = socket.CMSG_SPACE(4)
#: Errors that say the path cannot take GSO sends: send packet by packet from then on.
GSO_UNSUPPORTED = frozenset({errno.EIO, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOPROTOOPT, errno.EMSGSIZE})


def _gro_segment(ancillary: list[tuple[int, int, bytes]]) -> int:
    """The segment size of packets the kernel joined (``UDP_GRO``), or 0."""
    for level, kind, data in ancillary:
        if level == socket.SOL_UDP and kind == UDP_GRO and len(data) >= 4:
            return int.from_bytes(data[:4], sys.byteorder)
    return 0


def _normalise(host: str) -> str:
    """Turn IPv4-mapped IPv6 addresses back into IPv4 and drop zone ids."""
    host = host.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


class UdpTransport:
    """The `udp` transport service of one node."""

    def __init__(
        self,
        signing_key: nacl.signing.SigningKey,
        *,
        hosts: Sequence[str] = ("::",),
        port: int = 0,
        settings: Settings | None = None,
        peers: Sequence[str] = (),
        log: Any = None,
    ) -> None:
        self.core = TransportCore(signing_key, settings)
        self.hosts = list(hosts)
        self.port = port
        self._configured_peers = list(peers)
        self.log = (log or structlog.get_logger("omerta.udp")).bind(plugin="udp")
        self._sockets: list[socket.socket] = []
        self._v4: socket.socket | None = None
        self._v6: socket.socket | None = None
        self._v6_dual = False
        self._addr_cache: dict[Endpoint, tuple[socket.socket, tuple[Any, ...]]] = {}
        self._source_cache: dict[Any, Endpoint] = {}
        self._backlog: deque[tuple[socket.socket, bytes, tuple[Any, ...]]] = deque()
        #: Sockets that deliver joined packets (``UDP_GRO``), and those whose GSO sends failed.
        self._gro: set[socket.socket] = set()
        self._no_gso: set[socket.socket] = set()
        self._handlers: dict[str, MessageHandler] = {}
        self._batch_handlers: dict[str, DatagramBatchHandler] = {}
        self._channel_owners = Claims("transport channel")
        self._early: defaultdict[str, deque[tuple[PeerId, bytes]]] = defaultdict(deque)
        self._raw_handlers: list[RawDatagramHandler] = []
        self._restart_listeners: list[RestartListener] = []
        self._paths: dict[str, PacketPath] = {}
        self._identify_waiters: dict[bytes, asyncio.Future[PeerId]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._last_timer = float("-inf")
        #: When a socket was last found readable (see :data:`QUIET_S`).
        self._last_readable = float("-inf")
        self._drain_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Between start and stop (a restart may find the sockets closed, never the transport stopped).
        self._running = False
        self.pinger: Pinger | None = None

    @property
    def peer_id(self) -> PeerId:
        return self.core.peer_id

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._open(self.port)
        self._running = True
        self.pinger = Pinger(self, self.log)
        for entry in self._configured_peers:
            peer_text, _, address = entry.partition("@")
            self.add_peer(PeerId(peer_text), [Endpoint.parse(address)] if address else [])
        self.log.info("udp transport listening", endpoints=[str(e) for e in self.local_endpoints()])

    def _open(self, port: int) -> None:
        """Bind a socket on every configured host (one port for all; 0 lets the first choose) and read them."""
        assert self._loop is not None
        try:
            for host in self.hosts:
                sock = self._bind(host, port)
                port = sock.getsockname()[1]
                with contextlib.suppress(OSError):  # before Linux 5.0: one packet per read
                    sock.setsockopt(socket.SOL_UDP, UDP_GRO, 1)
                    self._gro.add(sock)
                self._loop.add_reader(sock.fileno(), self._readable, sock)
                self._sockets.append(sock)
                if sock.family == socket.AF_INET6:
                    self._v6 = self._v6 or sock
                    self._v6_dual = self._v6_dual or not sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
                else:
                    self._v4 = self._v4 or sock
        except TransportError:
            self._close_sockets()
            raise
        self.port = port

    def _bind(self, host: str, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "::" else 1)
            for forced, option in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
                try:  # the forced variants pass net.core.[rw]mem_max when running as root
                    sock.setsockopt(socket.SOL_SOCKET, forced, SOCKET_BUFFER_BYTES)
                except OSError:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
            sock.setblocking(False)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if host == "::":  # no IPv6 on this machine: IPv4 only
                return self._bind("0.0.0.0", port)
            if exc.errno == errno.EADDRINUSE:
                raise TransportError(
                    f"UDP port {port} is already in use on {host} (another node?); "
                    f"choose another with `omerta node --port N`"
                ) from exc
            raise TransportError(f"cannot listen on {host} port {port}: {exc.strerror}") from exc
        return sock

    async def stop(self) -> None:
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = float("inf")
        self._close_sockets()
        for waiter in self._identify_waiters.values():
            waiter.cancel()
        for task in list(self._tasks):
            task.cancel()

    def _close_sockets(self) -> None:
        """Stop reading and close every socket; what waited for a full send buffer is dropped (and counted)."""
        for sock in self._sockets:
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
                self._loop.remove_writer(sock.fileno())
            sock.close()
        self._sockets.clear()
        self._gro.clear()
        self._no_gso.clear()
        self.core.counters["dropped_send_backlog"] += len(self._backlog)
        self._backlog.clear()
        self._v4 = self._v6 = None
        self._v6_dual = False
        self._addr_cache.clear()

    async def restart(self, *, new_port: bool = False) -> TransportRestart:
        """Close the sockets and reopen them, keeping every session; see :class:`RestartableTransport`.

        The same port is taken again unless ``new_port`` is asked for or another program holds it
        now; then the kernel picks a free one. Every peer with a session gets a fresh handshake
        over every path at once (direct and packet paths), so peers whose NAT no longer lets our
        packets in hear from us through a relay, and the listeners (a relay's allocations,
        discovery's record) learn where we listen before that handshake's first retry.
        """
        if not self._running:
            raise NotStartedError("the udp transport is not running")
        before = tuple(self.local_endpoints())
        self._close_sockets()
        try:
            self._open(0 if new_port else self.port)
        except TransportError as exc:
            if new_port:
                raise
            self.log.info("udp port taken while restarting; listening on a new one", port=self.port, error=str(exc))
            self._open(0)
        resumed = self.core.resume(time.monotonic())
        result = TransportRestart(before, tuple(self.local_endpoints()), resumed)
        self.core.counters["restarts"] += 1
        self.log.info(
            "udp transport restarted",
            before=[str(e) for e in result.before],
            after=[str(e) for e in result.after],
            resumed=resumed,
        )
        for listener in list(self._restart_listeners):
            try:
                listener(result)
            except Exception:
                self.log.exception("restart listener failed")
        self._schedule_drain()
        return result

    def on_restart(self, listener: RestartListener) -> None:
        self._restart_listeners.append(listener)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        self._last_timer = now = time.monotonic()
        self.core.tick(now)
        self._drain()

    def _rearm(self) -> None:
        """Sleep until the core's next deadline (the event loop's clock is ``time.monotonic``)."""
        if self._loop is None or not self._sockets:
            return
        when = max(self.core.next_deadline(), self._last_timer + MIN_TIMER_GAP_S)
        if when == self._timer_at:
            return
        # also when the deadline moved later (an ack arrived before a retransmission): no idle wake-up
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when != float("inf"):
            self._timer = self._loop.call_at(when, self._on_timer)

    # -- Transport ---------------------------------------------------------------

    def local_endpoints(self) -> list[Endpoint]:
        return [Endpoint(_normalise(sock.getsockname()[0]), sock.getsockname()[1]) for sock in self._sockets]

    def add_peer(self, peer: PeerId, endpoints: Sequence[Endpoint]) -> None:
        self.core.add_peer(PeerId(peer), list(endpoints), time.monotonic())
        self._schedule_drain()

    async def send(self, peer: PeerId, channel: str, data: bytes, *, delivery: Delivery = Delivery.RELIABLE) -> None:
        if self._loop is None or not self._sockets:
            raise NotStartedError("the udp transport is not running")
        self.core.send(peer, channel, data, delivery, time.monotonic())
        if delivery is Delivery.DATAGRAM:
            self._transmit()
        if self.core.deadline_changed:  # a handshake or reliable data to plan for (else the datagram has left)
            self._schedule_drain()

    def send_datagram(self, peer: PeerId, channel: str, data: bytes) -> None:
        if self._loop is None or not self._sockets:
            raise NotStartedError("the udp transport is not running")
        self.core.send(peer, channel, data, Delivery.DATAGRAM, time.monotonic())
        # sent when the loop next runs, with every other datagram queued until then (one GSO send); the drain
        # also plans the timers (a first datagram may start a handshake whose retry deadline must be planned)
        self._schedule_drain()

    def send_datagrams(self, peer: PeerId, channel: str, datas: Sequence[bytes]) -> None:
        if self._loop is None or not self._sockets:
            raise NotStartedError("the udp transport is not running")
        self.core.send_datagrams(peer, channel, datas, time.monotonic())
        # the caller hands a whole burst (a TAP read until empty), so it leaves now, as one GSO send, not after
        # another turn of the loop: a ping's frame waited for that turn on each end (docs/vpn.md, "Latency").
        # A drain plans the timers on the next turn only if a deadline may have moved earlier (a first datagram
        # may start a handshake); on an established session nothing is left to do.
        self._transmit()
        if self.core.deadline_changed:
            self._schedule_drain()

    def max_datagram_size(self) -> int:
        return self.core.max_datagram_size

    def reconnect(self, peer: PeerId) -> None:
        """Start a fresh handshake with ``peer`` now; the current session serves until it completes."""
        self.core.connect(PeerId(peer), time.monotonic())
        self._transmit()
        self._schedule_drain()

    def on_message(self, channel: str, handler: MessageHandler) -> None:
        """Register ``handler`` for ``channel``; a second registration is a :class:`ConflictError` naming both
        plugins (the kernel says which plugin is registering)."""
        self._channel_owners.claim(channel)
        self.core.register_channel(channel)
        self._handlers[channel] = handler
        for peer, data in self._early.pop(channel, ()):
            self._dispatch(handler, channel, peer, data)

    def on_datagrams(self, channel: str, handler: DatagramBatchHandler) -> None:
        """Register ``handler`` for ``channel``, called once per run of its messages from one peer that one
        read delivered (a GRO batch of tunnelled frames), instead of once per message."""
        self._channel_owners.claim(channel)
        self.core.register_channel(channel)
        self._batch_handlers[channel] = handler
        for peer, data in self._early.pop(channel, ()):
            self._dispatch_batch(handler, channel, peer, [data])

    def path_state(self, peer: PeerId) -> PathState:
        return self.core.path_state(peer, time.monotonic())

    def endpoint_of(self, peer: PeerId) -> Endpoint | None:
        route = self.core.route_of(peer)
        return route if isinstance(route, Endpoint) else None

    async def identify(self, endpoint: Endpoint) -> PeerId:
        loop = asyncio.get_running_loop()
        for attempt in range(IDENTIFY_ATTEMPTS):
            if attempt:
                report(f"no answer from {endpoint} yet (attempt {attempt + 1} of {IDENTIFY_ATTEMPTS})")
            nonce = self.core.identify_request(endpoint)
            waiter: asyncio.Future[PeerId] = loop.create_future()
            self._identify_waiters[nonce] = waiter
            self._transmit()
            try:
                return await asyncio.wait_for(waiter, IDENTIFY_WAIT_S)
            except TimeoutError:
                continue
            finally:
                self._identify_waiters.pop(nonce, None)
        raise IdentifyTimeoutError(f"no omerta node answered at {endpoint}")

    def status(self) -> dict[str, Any]:
        counters = {"sent_packets": 0, "received_packets": 0, **self.core.counters}
        counters["dropped"] = sum(v for k, v in counters.items() if k.startswith("dropped_"))
        return {
            "peer_id": self.peer_id,
            "endpoints": [str(e) for e in self.local_endpoints()],
            "counters": dict(sorted(counters.items())),
            "peers": self.core.peer_status(time.monotonic()),
        }

    # -- PacketPathHost ------------------------------------------------------------

    def register_path(self, path: PacketPath) -> None:
        self._paths[path.name] = path
        self.core.register_path(path.name, path.can_reach)

    def unregister_path(self, path: PacketPath) -> None:
        self._paths.pop(path.name, None)
        self.core.unregister_path(path.name)

    def deliver_packet(self, packet: bytes, path: PacketPath, sender: PeerId | None = None) -> None:
        self.core.receive(packet, None, time.monotonic(), path=path.name)
        self._schedule_drain()

    def send_raw(self, endpoint: Endpoint, data: bytes) -> None:
        if data and data[0] & 0xF0 == 0x10:
            raise TransportError("raw datagrams may not start with a byte 0x10-0x1f (reserved for sessions)")
        self._sendto(endpoint, data)

    def on_raw_datagram(self, handler: RawDatagramHandler) -> None:
        self._raw_handlers.append(handler)

    def probe(self, peer: PeerId, endpoint: Endpoint) -> None:
        self.core.probe(PeerId(peer), endpoint, time.monotonic())
        self._transmit()
        self._schedule_drain()

    # -- plumbing ----------------------------------------------------------------

    def _readable(self, sock: socket.socket) -> None:
        receive = self.core.receive
        sources = self._source_cache
        now = time.monotonic()
        gro = sock in self._gro
        # after a silence, what the first read brings is handed over at once (see QUIET_S)
        batch = 1 if now - self._last_readable >= QUIET_S else RECEIVE_BATCH
        self._last_readable = now
        received = 0
        while received < batch:
            try:
                if gro:
                    data, ancillary, _flags, addr = sock.recvmsg(65535, GRO_CMSG_SPACE)
                else:
                    data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.core.counters["socket_errors"] += 1
                break
            source = sources.get(addr)
            if source is None:
                if len(sources) >= MAX_CACHED_ADDRESSES:
                    sources.clear()
                source = sources[addr] = Endpoint(_normalise(addr[0]), addr[1])
            segment = _gro_segment(ancillary) if gro and ancillary else 0
            if 0 < segment < len(data):  # packets of one sender the kernel joined: split them again
                for offset in range(0, len(data), segment):
                    receive(data[offset : offset + segment], source, now)
                    received += 1
            else:
                receive(data, source, now)
                received += 1
        self._drain()

    def _schedule_drain(self) -> None:
        if not self._drain_scheduled and self._loop is not None:
            self._drain_scheduled = True
            self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        core = self.core
        if core.deadline_changed:  # else nothing is due but what the events bring (datagrams on a session)
            core.flush(time.monotonic())
        if core.outputs:
            self._transmit()
        if core.events:
            self._dispatch_events()
        if core.outputs:
            self._transmit()
        # Timers are planned again only when a deadline may have moved earlier: datagrams on an established session
        # move the keepalive's later, so the armed timer may fire early, once, and find nothing to do. That saves
        # a timer handle cancelled and another made for every tunnelled packet (docs/vpn.md, "Latency").
        if core.deadline_changed:
            self._rearm()

    def _dispatch_events(self) -> None:
        """Hand the core's events to their handlers: a run of datagrams of one channel and peer in one call to a
        batch handler."""
        events, self.core.events = self.core.events, []
        batches = self._batch_handlers
        run: list[bytes] = []
        run_peer, run_channel = None, ""
        for event in events:
            if run and (type(event) is not Delivered or event.peer != run_peer or event.channel != run_channel):
                self._dispatch_batch(batches[run_channel], run_channel, run_peer, run)
                run = []
            if type(event) is Delivered:
                if event.channel in batches:
                    if not run:
                        run_peer, run_channel = event.peer, event.channel
                    run.append(event.data)
                    continue
                handler = self._handlers.get(event.channel)
                if handler is not None:
                    self._dispatch(handler, event.channel, event.peer, event.data)
                else:
                    early = self._early[event.channel]
                    if len(early) >= MAX_EARLY_MESSAGES:
                        early.popleft()
                        self.core.counters["dropped_no_handler"] += 1
                    early.append((event.peer, event.data))
            elif type(event) is Identified:
                waiter = self._identify_waiters.get(event.nonce)
                if waiter is not None and not waiter.done():
                    waiter.set_result(event.peer)
            elif type(event) is RawDatagram:
                for raw_handler in self._raw_handlers:
                    raw_handler(event.data, event.source)
            elif type(event) is Connected:
                level = self.log.debug if event.rekey else self.log.info
                level("session established", peer=event.peer.short, peer_restarted=event.restarted, rekey=event.rekey)
        if run:
            self._dispatch_batch(batches[run_channel], run_channel, run_peer, run)

    def _dispatch(self, handler: MessageHandler, channel: str, peer: PeerId, data: bytes) -> None:
        """Run a channel's handler; its failure (at once or, for a coroutine, later) is logged and counted."""
        try:
            result = handler(peer, data)
        except Exception:
            self._handler_failed(channel, peer)
            return
        if result is not None and inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._handler_done, channel, peer))

    def _dispatch_batch(
        self, handler: DatagramBatchHandler, channel: str, peer: PeerId | None, datas: list[bytes]
    ) -> None:
        assert peer is not None
        try:
            handler(peer, datas)
        except Exception:
            self._handler_failed(channel, peer)

    def _handler_done(self, channel: str, peer: PeerId, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._handler_failed(channel, peer, task.exception())

    def _handler_failed(self, channel: str, peer: PeerId, error: BaseException | None = None) -> None:
        self.core.counters["handler_errors"] += 1
        self.log.error("message handler failed", peer=peer.short, channel=channel, exc_info=error or True)

    def _transmit(self) -> None:
        """Send the core's packets: runs of equal-sized packets to one endpoint go as one GSO send."""
        outputs = self.core.outputs
        if not outputs:
            return
        self.core.outputs = []
        run: list[bytes] = []
        run_target: tuple[socket.socket, tuple[Any, ...]] | None = None
        run_size = run_bytes = 0
        for route, packet in outputs:
            if type(route) is PathRoute:
                if run_target is not None:
                    self._send_run(run_target, run)
                    run, run_target = [], None
                path = self._paths.get(route.path)
                if path is not None:
                    path.send_packet(route.peer, packet)
                else:
                    self.core.counters["dropped_no_path"] += 1
                continue
            target = self._addr_cache.get(route) or self._target(route)
            if target is None:
                continue
            size = len(packet)
            if (
                target is run_target
                and size <= run_size
                and len(run) < GSO_MAX_SEGMENTS
                and run_bytes + size <= GSO_MAX_BYTES
                and len(run[-1]) == run_size
            ):
                run.append(packet)
                run_bytes += size
                continue
            if run_target is not None:
                self._send_run(run_target, run)
            run, run_target, run_size, run_bytes = [packet], target, size, size
        if run_target is not None:
            self._send_run(run_target, run)

    def _target(self, endpoint: Endpoint) -> tuple[socket.socket, tuple[Any, ...]] | None:
        target = self._addr_cache.get(endpoint)
        if target is None:
            target = self._resolve(endpoint)
            if target is None:
                self.core.counters["dropped_no_socket"] += 1
                return None
            self._addr_cache[endpoint] = target
        return target

    def _sendto(self, endpoint: Endpoint, packet: bytes) -> None:
        target = self._target(endpoint)
        if target is not None:
            self._send_run(target, [packet])

    def _send_run(self, target: tuple[socket.socket, tuple[Any, ...]], packets: list[bytes]) -> None:
        """Send ``packets`` (all but the last of one size) to ``target``: one GSO send where the kernel can."""
        sock, addr = target
        if self._backlog:
            for packet in packets:
                self._queue_send(sock, packet, addr)
            return
        if len(packets) > 1 and sock not in self._no_gso:
            segment = struct.pack("=H", len(packets[0]))
            try:
                sock.sendmsg([b"".join(packets)], [(socket.SOL_UDP, UDP_SEGMENT, segment)], 0, addr)
            except (BlockingIOError, InterruptedError):
                for packet in packets:
                    self._queue_send(sock, packet, addr)
                return
            except OSError as exc:
                if exc.errno not in GSO_UNSUPPORTED:
                    self.core.counters["socket_errors"] += 1
                    return
                self._no_gso.add(sock)  # this kernel or path takes no GSO: packet by packet from now on
                self.log.info("udp segmentation offload unavailable", error=str(exc))
            else:
                self.core.counters["gso_sends"] += 1
                return
        for index, packet in enumerate(packets):
            try:
                sock.sendto(packet, addr)
            except (BlockingIOError, InterruptedError):
                for rest in packets[index:]:
                    self._queue_send(sock, rest, addr)
                return
            except OSError:
                self.core.counters["socket_errors"] += 1

    def _queue_send(self, sock: socket.socket, packet: bytes, addr: tuple[Any, ...]) -> None:
        if len(self._backlog) >= MAX_SEND_BACKLOG:
            self.core.counters["dropped_send_backlog"] += 1
            return
        if not self._backlog and self._loop is not None:
            self._loop.add_writer(sock.fileno(), self._writable, sock)
        self._backlog.append((sock, packet, addr))

    def _writable(self, sock: socket.socket) -> None:
        while self._backlog:
            target, packet, addr = self._backlog[0]
            try:
                target.sendto(packet, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.core.counters["socket_errors"] += 1
            self._backlog.popleft()
        if self._loop is not None:
            self._loop.remove_writer(sock.fileno())

    def _resolve(self, endpoint: Endpoint) -> tuple[socket.socket, tuple[Any, ...]] | None:
        if endpoint.is_ipv6:
            return (self._v6, (endpoint.host, endpoint.port, 0, 0)) if self._v6 else None
        if self._v4 is not None:
            return self._v4, (endpoint.host, endpoint.port)
        if self._v6 is not None and self._v6_dual:
            return self._v6, (f"::ffff:{endpoint.host}", endpoint.port, 0, 0)
        return None
