"""The sans-IO transport: sessions, handshakes, roaming, channels, counters.

:class:`TransportCore` is fed received packets, application sends and clock
ticks (``now``, monotonic seconds) and leaves packets to transmit in
:attr:`TransportCore.outputs` and happenings in :attr:`TransportCore.events`.
It owns every piece of protocol state; the asyncio adapter only moves bytes.
Randomness (indices, ephemeral keys, cookies, the incarnation) comes from an injected
:class:`~omerta_core.randomness.RandomSource`; :meth:`TransportCore.next_deadline` says
when :meth:`TransportCore.tick` is next due, so callers sleep instead of polling.
Touches nothing.
"""

from __future__ import annotations

import struct
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import nacl.bindings
import nacl.exceptions
import nacl.signing
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.interfaces.transport import Delivery, PathState
from omerta_core.randomness import RandomSource, system_random
from omerta_transport_udp import cookie, noise, wire
from omerta_transport_udp.errors import BadChannelError, BadPeerError, MessageTooLargeError
from omerta_transport_udp.reliable import ReliableLink
from omerta_transport_udp.replay import ReplayWindow

#: Mixed into every handshake hash, so a session can only be made with this protocol and version.
PROLOGUE = b"omerta-udp-v1"
#: WireGuard's limits: rekey long before a 64-bit counter could wrap, and never reach it.
REKEY_AFTER_MESSAGES = 2**60
REJECT_AFTER_MESSAGES = 2**64 - 2**13 - 1
#: Datagrams held per peer while its handshake runs; older ones are dropped first.
MAX_QUEUED_DATAGRAMS = 1024
#: Endpoints remembered per peer from discovery (the newest first).
MAX_CANDIDATE_ENDPOINTS = 8
#: Peers tracked at most: handshakes from further unknown identities are dropped (identities cost nothing to make).
MAX_PEERS = 65536
#: Reliable fragments retransmitted this often without any answer mean the path is degraded.
DEGRADED_AFTER_RETRIES = 2


class PathRoute(NamedTuple):
    """A peer reached through a registered packet path (a relay) rather than a UDP endpoint."""

    path: str
    peer: PeerId

    def __str__(self) -> str:
        return f"via {self.path}"


_DATA = wire.DATA
_pack_header = wire.pack_data_header
_unpack_header = wire.unpack_data_header
_pack_nonce = wire.pack_data_nonce

#: Where a packet goes: a UDP endpoint, or a registered packet path.
Route = Endpoint | PathRoute


@dataclass
class Settings:
    """Tunable protocol parameters (from ``[plugins.udp]``); defaults suit real networks."""

    mtu: int = 1280
    keepalive_s: float = 25.0
    rekey_after_s: float = 120.0
    reject_after_s: float = 180.0
    handshake_retry_s: float = 1.0
    max_handshake_retry_s: float = 8.0
    #: Handshake attempts to an unanswering peer stop after this long unless data waits for it.
    give_up_s: float = 120.0
    #: With reliable data unanswered for this long, re-handshake (the peer may have restarted).
    stale_after_s: float = 2.0
    under_load_per_s: int = cookie.UNDER_LOAD_PER_S
    source_rate_per_s: float = cookie.SOURCE_RATE_PER_S
    source_burst: float = cookie.SOURCE_BURST

    @property
    def max_plaintext(self) -> int:
        return self.mtu - wire.DATA_OVERHEAD


class Delivered(NamedTuple):
    peer: PeerId
    channel: str
    data: bytes


@dataclass(frozen=True)
class Identified:
    nonce: bytes
    peer: PeerId
    endpoint: Endpoint


@dataclass(frozen=True)
class RawDatagram:
    data: bytes
    source: Endpoint


@dataclass(frozen=True)
class Connected:
    """A session to ``peer`` was established (``restarted``: the peer is a new incarnation;
    ``rekey``: it replaces a working session, the routine renewal every ``rekey_after_s``)."""

    peer: PeerId
    restarted: bool
    rekey: bool = False


Event = Delivered | Identified | RawDatagram | Connected


class Keypair:
    """One established session's keys, indices and counters."""

    __slots__ = (
        "created",
        "incarnation",
        "initiator",
        "local_index",
        "peer",
        "recv_aead",
        "remote_index",
        "replay",
        "send_aead",
        "send_counter",
    )

    def __init__(
        self,
        peer: PeerState,
        local_index: int,
        remote_index: int,
        send_key: bytes,
        recv_key: bytes,
        created: float,
        initiator: bool,
        incarnation: bytes,
    ) -> None:
        self.peer = peer
        self.local_index = local_index
        self.remote_index = remote_index
        # One initialised AEAD context per key: set-up is paid once per session, not per packet.
        self.send_aead = ChaCha20Poly1305(send_key)
        self.recv_aead = ChaCha20Poly1305(recv_key)
        self.created = created
        self.initiator = initiator
        self.incarnation = incarnation
        self.send_counter = 0
        self.replay = ReplayWindow()


@dataclass
class PendingHandshake:
    state: noise.IKHandshake
    index: int
    sent_at: float
    mac1: bytes


@dataclass(eq=False)
class PeerState:
    peer_id: PeerId
    static_public: bytes  # X25519, derived from the peer id's Ed25519 key
    link: ReliableLink
    candidates: list[Endpoint] = field(default_factory=list)
    route: Route | None = None
    current: Keypair | None = None
    previous: Keypair | None = None
    handshake: PendingHandshake | None = None
    handshake_attempts: int = 0
    incarnation: bytes | None = None
    last_init_timestamp: int = -1
    cookie: bytes | None = None
    cookie_time: float = float("-inf")
    last_received: float = float("-inf")
    last_sent: float = float("-inf")
    want_until: float = float("-inf")
    #: With no route to try, the next handshake attempt waits until then (no busy retry).
    next_route_try: float = float("-inf")
    #: The caller said the path went silent (:meth:`TransportCore.connect`): handshakes try every path at once.
    route_suspect: bool = False
    ever_connected: bool = False
    datagrams: deque[bytes] = field(default_factory=deque)


class TransportCore:
    """All protocol state of one node's transport."""

    def __init__(
        self,
        signing_key: nacl.signing.SigningKey,
        settings: Settings | None = None,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        incarnation: bytes | None = None,
        rng: RandomSource | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._max_plaintext = self.settings.max_plaintext
        # below every rekey and reject threshold: a session younger than this needs no checks when sending
        self._rekey_after_s = min(self.settings.rekey_after_s, self.settings.reject_after_s)
        if self.settings.max_plaintext < 256:
            raise ValueError(f"mtu {self.settings.mtu} is too small (at least {256 + wire.DATA_OVERHEAD})")
        self.public_key = bytes(signing_key.verify_key)
        self.peer_id = PeerId.from_public_key(self.public_key)
        self._static_private = bytes(signing_key.to_curve25519_private_key())
        self.static_public = noise.public_key(self._static_private)
        self._rng = rng or system_random()
        #: A random id for this process's life: peers notice a restart by its change.
        self.incarnation = incarnation or self._rng.randbytes(wire.INCARNATION_LEN)
        self._clock_ns = clock_ns
        self._last_timestamp = 0
        self._cookies = cookie.CookieChecker(self.static_public, self._rng)
        self._load = cookie.LoadMeter(self.settings.under_load_per_s)
        self._handshake_limit = cookie.SourceRateLimiter(self.settings.source_rate_per_s, self.settings.source_burst)
        self._identify_limit = cookie.SourceRateLimiter(self.settings.source_rate_per_s, self.settings.source_burst)
        self.peers: dict[PeerId, PeerState] = {}
        self._by_static: dict[bytes, PeerState] = {}
        self._by_index: dict[int, Keypair] = {}
        self._pending: dict[int, PeerState] = {}
        self._channel_tags: dict[int, str] = {}
        self._datagram_prefixes: dict[str, bytes] = {}
        self._paths: dict[str, Callable[[PeerId, float], bool]] = {}
        #: Peers with reliable frames or acks to flush, in the order they became so (a dict: determinism).
        self._dirty: dict[PeerState, None] = {}
        self.outputs: list[tuple[Route, bytes]] = []
        self.events: list[Event] = []
        self.counters: Counter[str] = Counter()
        #: Whether :meth:`next_deadline` may have moved earlier since it was last asked (it clears this), or a
        #: :meth:`flush` is due (then it stays set). Only datagram traffic on an established session leaves it
        #: unset: sending or receiving a datagram moves the keepalive and silence deadlines later, never earlier,
        #: so a timer set at the last answer is still early enough (it may then fire early; :meth:`tick` finds
        #: nothing due and the caller asks again), and there is nothing to flush.
        self.deadline_changed = True

    # -- configuration ---------------------------------------------------------

    @property
    def max_datagram_size(self) -> int:
        """The most bytes one datagram can carry in a single packet."""
        return self._max_plaintext - wire.DATAGRAM_FRAME_HEADER

    def register_channel(self, name: str) -> None:
        """Make datagrams for ``name`` deliverable; two names with one tag cannot coexist."""
        wire.check_channel_name(name)
        tag = wire.channel_tag(name)
        existing = self._channel_tags.setdefault(tag, name)
        if existing != name:
            raise BadChannelError(f"channel {name!r} has the same wire tag as {existing!r}; pick another name")

    def register_path(self, name: str, can_reach: Callable[[PeerId, float], bool]) -> None:
        self._paths[name] = can_reach
        self.deadline_changed = True

    def unregister_path(self, name: str) -> None:
        self._paths.pop(name, None)
        self.deadline_changed = True
        for peer in self.peers.values():
            if isinstance(peer.route, PathRoute) and peer.route.path == name:
                peer.route = None

    def peer(self, peer_id: PeerId) -> PeerState:
        state = self.peers.get(peer_id)
        if state is None:
            if peer_id == self.peer_id:
                raise BadPeerError("a node cannot open a session to itself")
            if len(self.peers) >= MAX_PEERS:
                raise BadPeerError(f"this node already tracks {MAX_PEERS} peers")
            try:
                static = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(peer_id.public_key)
            except nacl.exceptions.RuntimeError as exc:
                raise BadPeerError(f"peer id {peer_id.short} is not a valid Ed25519 key") from exc
            state = PeerState(PeerId(peer_id), static, ReliableLink(self.settings.max_plaintext, self.counters))
            self.peers[state.peer_id] = state
            self._by_static[static] = state
        return state

    def add_peer(self, peer_id: PeerId, endpoints: Sequence[Endpoint], now: float) -> None:
        """Learn where ``peer_id`` may be reached; opens a session if there is none."""
        self.deadline_changed = True
        peer = self.peer(peer_id)
        merged = list(dict.fromkeys([*endpoints, *peer.candidates]))
        peer.candidates = merged[:MAX_CANDIDATE_ENDPOINTS]
        peer.want_until = now + self.settings.give_up_s
        if not self._usable(peer.current, now) and peer.handshake is None:
            self._start_handshake(peer, now)

    # -- application sends -----------------------------------------------------

    def send(self, peer_id: PeerId, channel: str, data: bytes, delivery: Delivery, now: float) -> None:
        peer = self.peers.get(peer_id) or self.peer(peer_id)
        peer.want_until = now + self.settings.give_up_s
        if delivery is Delivery.RELIABLE:
            peer.link.queue(channel, data)
            self._dirty[peer] = None
            self.deadline_changed = True
            return
        prefix = self._datagram_prefixes.get(channel)
        if prefix is None:
            wire.check_channel_name(channel)
            prefix = self._datagram_prefixes[channel] = wire.encode_datagram_frame(wire.channel_tag(channel), b"")
        if len(data) + wire.DATAGRAM_FRAME_HEADER > self._max_plaintext:
            limit = self._max_plaintext - wire.DATAGRAM_FRAME_HEADER
            raise MessageTooLargeError(f"datagrams carry at most {limit} bytes at mtu {self.settings.mtu}")
        frame = prefix + data
        keypair = peer.current
        route = peer.route
        if keypair is not None and route is not None and now - keypair.created < self._rekey_after_s:
            # the hot path of tunnelled frames: a young session, so no limit or rekey can be due (nor can a
            # deadline move earlier: deadline_changed stays as it is)
            packet = self._seal(keypair, frame)
            self.outputs.append((route, packet))
            counters = self.counters
            counters["sent_packets"] += 1
            counters["sent_bytes"] += len(packet)
            peer.last_sent = now
            return
        self.deadline_changed = True
        if self._usable(keypair, now) and route is not None:
            assert keypair is not None
            self._send_data(peer, keypair, frame, now)
            self._maybe_rekey(peer, keypair, now)
        else:
            if len(peer.datagrams) >= MAX_QUEUED_DATAGRAMS:
                peer.datagrams.popleft()
                self.counters["dropped_queue_full"] += 1
            peer.datagrams.append(frame)
            if peer.handshake is None:
                self._start_handshake(peer, now)

    def send_datagrams(self, peer_id: PeerId, channel: str, datas: Sequence[bytes], now: float) -> None:
        """:meth:`send` of each of ``datas`` as a datagram, in order; the session is checked once for all.

        The hot path of tunnelled frames (a batch read from a TAP): with a young session each datagram
        costs its seal and little else. Any datagram too large raises before any is sent.
        """
        if not datas:
            return
        limit = self._max_plaintext - wire.DATAGRAM_FRAME_HEADER
        if max(map(len, datas)) > limit:
            raise MessageTooLargeError(f"datagrams carry at most {limit} bytes at mtu {self.settings.mtu}")
        peer = self.peers.get(peer_id)
        keypair = peer.current if peer is not None else None
        route = peer.route if peer is not None else None
        if peer is None or keypair is None or route is None or now - keypair.created >= self._rekey_after_s:
            for data in datas:
                self.send(peer_id, channel, data, Delivery.DATAGRAM, now)
            return
        prefix = self._datagram_prefixes.get(channel)
        if prefix is None:
            wire.check_channel_name(channel)
            prefix = self._datagram_prefixes[channel] = wire.encode_datagram_frame(wire.channel_tag(channel), b"")
        peer.want_until = now + self.settings.give_up_s
        # _seal inlined (one packet per datagram, no Python call each); no deadline moves earlier
        encrypt = keypair.send_aead.encrypt
        index = keypair.remote_index
        counter = keypair.send_counter
        keypair.send_counter = counter + len(datas)
        append = self.outputs.append
        sent_bytes = 0
        for data in datas:
            packet = _pack_header(_DATA, index, counter) + encrypt(_pack_nonce(counter), prefix + data, None)
            counter += 1
            append((route, packet))
            sent_bytes += len(packet)
        counters = self.counters
        counters["sent_packets"] += len(datas)
        counters["sent_bytes"] += sent_bytes
        peer.last_sent = now

    def identify_request(self, endpoint: Endpoint) -> bytes:
        """Ask whoever listens at ``endpoint`` for its peer id; returns the nonce to match."""
        nonce = self._rng.randbytes(wire.IDENTIFY_NONCE_LEN)
        self.outputs.append((endpoint, wire.encode_identify_request(nonce)))
        return nonce

    def connect(self, peer_id: PeerId, now: float) -> None:
        """Start a fresh handshake with ``peer_id`` now, even if a session exists (the old one serves meanwhile).

        The caller believes the current path went silent, so this handshake and its retries go
        over every path at once (the direct route, the candidates and the packet paths) rather
        than over packet paths only from the third attempt on.
        """
        self.deadline_changed = True
        peer = self.peer(peer_id)
        peer.want_until = now + self.settings.give_up_s
        peer.route_suspect = True
        self._start_handshake(peer, now, force=True)

    def resume(self, now: float) -> int:
        """The sockets were reopened (perhaps on a new port): resume every session and handshake from there.

        Each peer with a session, or a handshake under way, gets a fresh handshake over every path at
        once, as :meth:`connect` does: a peer behind a filtering NAT will not let packets from our new
        port in, but hears the handshake through a relay. The current session serves meanwhile.
        Returns how many peers are being resumed.
        """
        self.deadline_changed = True
        resumed = 0
        for peer in list(self.peers.values()):
            if self._usable(peer.current, now) or peer.handshake is not None:
                self.connect(peer.peer_id, now)
                resumed += 1
        self.counters["resumed_sessions"] += resumed
        return resumed

    def probe(self, peer_id: PeerId, endpoint: Endpoint, now: float) -> None:
        """Send an authenticated packet to ``peer_id`` at ``endpoint`` (a punch that authenticates)."""
        self.deadline_changed = True
        peer = self.peer(peer_id)
        keypair = peer.current
        if self._usable(keypair, now):
            assert keypair is not None
            self._emit(endpoint, self._seal(keypair, b""))
            peer.last_sent = now
        else:
            peer.candidates = list(dict.fromkeys([endpoint, *peer.candidates]))[:MAX_CANDIDATE_ENDPOINTS]
            peer.want_until = now + self.settings.give_up_s
            self._start_handshake(peer, now, force=True)

    # -- received packets ------------------------------------------------------

    def receive(self, packet: bytes, source: Endpoint | None, now: float, path: str | None = None) -> None:
        """Process one datagram from ``source`` (or one that came through packet path ``path``)."""
        counters = self.counters
        counters["received_packets"] += 1
        counters["received_bytes"] += len(packet)
        if not packet:
            self._drop("malformed")
            return
        kind = packet[0]
        if kind == _DATA:
            self._receive_data(packet, source, path, now)
            return
        self.deadline_changed = True
        try:
            if kind == wire.HANDSHAKE_INIT:
                self._receive_init(packet, source, path, now)
            elif kind == wire.HANDSHAKE_RESPONSE:
                self._receive_response(packet, source, path, now)
            elif kind == wire.COOKIE_REPLY:
                self._receive_cookie(packet, now)
            elif kind == wire.IDENTIFY_REQUEST:
                self._receive_identify_request(packet, source, now)
            elif kind == wire.IDENTIFY_REPLY:
                self._receive_identify_reply(packet, source)
            elif kind & 0xF0 == wire.VERSION_NIBBLE:
                self._drop("unknown_type")
            elif source is not None and path is None:
                self.counters["raw_received"] += 1
                self.events.append(RawDatagram(packet, source))
            else:
                self._drop("unknown_type")
        except wire.WireError:
            self._drop("malformed")

    def _drop(self, reason: str) -> None:
        self.counters[f"dropped_{reason}"] += 1

    def _receive_data(self, packet: bytes, source: Endpoint | None, path: str | None, now: float) -> None:
        """A data packet: the per-packet path of tunnelled frames, so its checks are inline (no call each).

        A datagram or keepalive on an established session, from where the peer already was, moves no deadline
        earlier (``deadline_changed`` stays); anything else may."""
        if len(packet) > self.settings.mtu:
            # no sender of this protocol makes one (both ends share the MTU); refused before any crypto
            self._drop("oversize")
            return
        if len(packet) < wire.DATA_OVERHEAD:
            self._drop("malformed")
            return
        _kind, index, counter = _unpack_header(packet)
        keypair = self._by_index.get(index)
        if keypair is None:
            self._drop("unknown_session")
            return
        replay = keypair.replay
        if counter <= replay.top and not replay.fresh(counter):  # newer than every counter seen: fresh
            self._drop("replay")
            return
        if now - keypair.created > self.settings.reject_after_s or counter >= REJECT_AFTER_MESSAGES:
            self._drop("expired_session")
            return
        try:
            plaintext = keypair.recv_aead.decrypt(_pack_nonce(counter), packet[wire.DATA_HEADER_LEN :], None)
        except InvalidTag:
            self._drop("bad_auth")
            return
        newest = replay.accept(counter)
        peer = keypair.peer
        peer.last_received = now
        if newest and (path is not None or source != peer.route):
            self.deadline_changed = True
            self._set_route(peer, source, path)
        if not plaintext:
            self.counters["keepalives_received"] += 1
            return
        if plaintext[0] == wire.FRAME_DATAGRAM and len(plaintext) >= wire.DATAGRAM_FRAME_HEADER:
            # the common case of tunnelled frames: one datagram frame fills the packet
            channel = self._channel_tags.get(plaintext[1] | (plaintext[2] << 8))
            if channel is None:
                self._drop("unknown_channel")
            else:
                self.counters["datagrams_received"] += 1
                self.events.append(Delivered(peer.peer_id, channel, plaintext[wire.DATAGRAM_FRAME_HEADER :]))
            return
        self.deadline_changed = True
        try:
            frames = wire.decode_frames(plaintext)
        except wire.WireError:
            self._drop("malformed_frame")
            return
        for frame in frames:
            if type(frame) is wire.DatagramFrame:
                channel = self._channel_tags.get(frame.tag)
                if channel is None:
                    self._drop("unknown_channel")
                else:
                    self.counters["datagrams_received"] += 1
                    self.events.append(Delivered(peer.peer_id, channel, frame.data))
            elif type(frame) is wire.ReliableFrame:
                for channel, data in peer.link.on_frame(frame):
                    self.counters["messages_received"] += 1
                    self.events.append(Delivered(peer.peer_id, channel, data))
                self._dirty[peer] = None
            elif type(frame) is wire.AckFrame:
                peer.link.on_ack(frame, now)
                self._dirty[peer] = None

    def _set_route(self, peer: PeerState, source: Endpoint | None, path: str | None) -> None:
        route: Route | None = PathRoute(path, peer.peer_id) if path is not None else source
        if route is not None and route != peer.route:
            if peer.route is not None:
                self.counters["roamed"] += 1
            peer.route = route

    def _receive_init(self, packet: bytes, source: Endpoint | None, path: str | None, now: float) -> None:
        init = wire.decode_handshake_init(packet)
        body_end = len(packet) - 2 * wire.MAC_LEN
        if not self._cookies.mac1_valid(packet[:body_end], init.mac1):
            self._drop("bad_mac1")
            return
        origin = source.host if source is not None else f"path:{path}"
        if self._load.record(now):
            if source is not None and not self._cookies.mac2_valid(
                packet[: body_end + wire.MAC_LEN], init.mac2, cookie.source_bytes(*source), now
            ):
                if self._handshake_limit.allow(origin, now):
                    reply = self._cookies.cookie_reply(init.sender_index, init.mac1, cookie.source_bytes(*source), now)
                    self._emit(source, reply)
                    self.counters["cookie_replies_sent"] += 1
                else:
                    self._drop("rate_limited")
                return
            if not self._handshake_limit.allow(origin, now):
                self._drop("rate_limited")
                return
        state = noise.IKHandshake(
            initiator=False, static_private=self._static_private, prologue=PROLOGUE, rng=self._rng
        )
        try:
            payload = state.read_message_1(init.noise_message)
        except noise.NoiseError:
            self._drop("bad_handshake")
            return
        ed_public = payload[: wire.KEY_LEN]
        incarnation = payload[wire.KEY_LEN : wire.KEY_LEN + wire.INCARNATION_LEN]
        (timestamp,) = struct.unpack_from("<Q", payload, wire.KEY_LEN + wire.INCARNATION_LEN)
        try:
            bound = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(ed_public) == state.rs
            peer = self.peer(PeerId.from_public_key(ed_public)) if bound else None
        except (nacl.exceptions.RuntimeError, ValueError):
            peer = None
        if peer is None:
            self._drop("bad_identity")
            return
        if timestamp <= peer.last_init_timestamp:
            self._drop("replayed_handshake")
            return
        peer.last_init_timestamp = timestamp
        index = self._new_index()
        message = state.write_message_2(self.incarnation)
        body = wire.encode_handshake_response_body(index, init.sender_index, message)
        mac1 = cookie.compute_mac1(peer.static_public, body)
        response = body + mac1 + cookie.compute_mac2(self._fresh_cookie(peer, now), body + mac1)
        send, recv = state.split()
        assert send.key is not None and recv.key is not None
        keypair = Keypair(peer, index, init.sender_index, send.key, recv.key, now, False, incarnation)
        self._set_route(peer, source, path)
        self._install(peer, keypair, now)
        self.counters["handshakes_answered"] += 1
        assert peer.route is not None
        self._emit(peer.route, response)
        self._after_connect(peer, now)

    def _receive_response(self, packet: bytes, source: Endpoint | None, path: str | None, now: float) -> None:
        response = wire.decode_handshake_response(packet)
        peer = self._pending.get(response.receiver_index)
        if peer is None or peer.handshake is None:
            self._drop("unknown_session")
            return
        body_end = len(packet) - 2 * wire.MAC_LEN
        if not self._cookies.mac1_valid(packet[:body_end], response.mac1):
            self._drop("bad_mac1")
            return
        pending = peer.handshake
        try:
            incarnation = pending.state.read_message_2(response.noise_message)
        except noise.NoiseError:
            self._drop("bad_handshake")
            return
        send, recv = pending.state.split()
        assert send.key is not None and recv.key is not None
        del self._pending[pending.index]
        peer.handshake = None
        peer.handshake_attempts = 0
        keypair = Keypair(peer, pending.index, response.sender_index, send.key, recv.key, now, True, incarnation)
        self._set_route(peer, source, path)
        self._install(peer, keypair, now)
        self.counters["handshakes_completed"] += 1
        self._after_connect(peer, now)

    def _receive_cookie(self, packet: bytes, now: float) -> None:
        reply = wire.decode_cookie_reply(packet)
        peer = self._pending.get(reply.receiver_index)
        if peer is None or peer.handshake is None:
            self._drop("unknown_session")
            return
        value = cookie.open_cookie_reply(reply, peer.static_public, peer.handshake.mac1)
        if value is None:
            self._drop("bad_cookie")
            return
        peer.cookie = value
        peer.cookie_time = now
        self.counters["cookies_received"] += 1

    def _receive_identify_request(self, packet: bytes, source: Endpoint | None, now: float) -> None:
        nonce, _ = wire.decode_identify(packet)
        if source is None or not self._identify_limit.allow(source.host, now):
            self._drop("rate_limited")
            return
        self._emit(source, wire.encode_identify_reply(nonce, self.public_key))

    def _receive_identify_reply(self, packet: bytes, source: Endpoint | None) -> None:
        nonce, key = wire.decode_identify(packet)
        if source is None:
            self._drop("unknown_type")
            return
        try:
            peer_id = PeerId.from_public_key(key)
        except ValueError:
            self._drop("malformed")
            return
        self.events.append(Identified(nonce, peer_id, source))

    # -- sessions ----------------------------------------------------------------

    def _install(self, peer: PeerState, keypair: Keypair, now: float) -> None:
        restarted = peer.incarnation is not None and keypair.incarnation != peer.incarnation
        if restarted:
            for old in (peer.current, peer.previous):
                if old is not None:
                    self._by_index.pop(old.local_index, None)
            peer.current = peer.previous = None
            peer.link.reset()
            self.counters["peer_restarts"] += 1
        rekey = peer.current is not None
        if peer.previous is not None:
            self._by_index.pop(peer.previous.local_index, None)
        peer.previous = peer.current
        peer.current = keypair
        peer.incarnation = keypair.incarnation
        peer.ever_connected = True
        peer.route_suspect = False
        peer.last_received = now
        self._by_index[keypair.local_index] = keypair
        self.events.append(Connected(peer.peer_id, restarted, rekey))

    def _after_connect(self, peer: PeerState, now: float) -> None:
        keypair = peer.current
        assert keypair is not None
        while peer.datagrams:
            self._send_data(peer, keypair, peer.datagrams.popleft(), now)
        self._dirty[peer] = None
        self._flush_peer(peer, now)
        if keypair.initiator and peer.last_sent < now:
            self._send_data(peer, keypair, b"", now)  # confirms the new keys to the responder at once

    def _usable(self, keypair: Keypair | None, now: float) -> bool:
        return (
            keypair is not None
            and now < keypair.created + self.settings.reject_after_s
            and keypair.send_counter < REJECT_AFTER_MESSAGES
        )

    def _new_index(self) -> int:
        while True:
            index = self._rng.getrandbits(32)
            if index not in self._by_index and index not in self._pending:
                return index

    def _timestamp(self) -> int:
        self._last_timestamp = max(self._last_timestamp + 1, self._clock_ns())
        return self._last_timestamp

    def _fresh_cookie(self, peer: PeerState, now: float) -> bytes | None:
        fresh = now - peer.cookie_time < cookie.COOKIE_SECRET_LIFETIME_S
        return peer.cookie if fresh else None

    def _handshake_targets(self, peer: PeerState, now: float) -> list[Route]:
        targets: list[Route] = []
        if peer.route is not None:
            targets.append(peer.route)
        targets.extend(e for e in peer.candidates if e not in targets)
        direct = [t for t in targets if isinstance(t, Endpoint)]
        if not direct or peer.handshake_attempts >= 2 or peer.route_suspect:
            for name, reach in self._paths.items():
                route = PathRoute(name, peer.peer_id)
                if route not in targets and reach(peer.peer_id, now):
                    targets.append(route)
        return targets

    def _start_handshake(self, peer: PeerState, now: float, *, force: bool = False) -> None:
        if not force and peer.handshake is not None and now < self._retry_at(peer.handshake, peer):
            return
        targets = self._handshake_targets(peer, now)
        if not targets:
            self.counters["handshakes_without_route"] += 1
            peer.next_route_try = now + self.settings.handshake_retry_s
            if peer.handshake is not None:
                peer.handshake.sent_at = now  # the retry waits a full delay again
            return
        if peer.handshake is not None:
            self._pending.pop(peer.handshake.index, None)
        state = noise.IKHandshake(
            initiator=True,
            static_private=self._static_private,
            prologue=PROLOGUE,
            remote_static=peer.static_public,
            rng=self._rng,
        )
        index = self._new_index()
        payload = self.public_key + self.incarnation + struct.pack("<Q", self._timestamp())
        body = wire.encode_handshake_init_body(index, state.write_message_1(payload))
        mac1 = cookie.compute_mac1(peer.static_public, body)
        packet = body + mac1 + cookie.compute_mac2(self._fresh_cookie(peer, now), body + mac1)
        peer.handshake = PendingHandshake(state, index, now, mac1)
        peer.handshake_attempts += 1
        self._pending[index] = peer
        self.counters["handshakes_initiated"] += 1
        for target in targets:
            self._emit(target, packet)

    def _retry_delay(self, peer: PeerState) -> float:
        exponent = max(0, peer.handshake_attempts - 1)
        return min(self.settings.max_handshake_retry_s, self.settings.handshake_retry_s * 2**exponent)

    def _retry_at(self, handshake: PendingHandshake, peer: PeerState) -> float:
        return handshake.sent_at + self._retry_delay(peer)

    def _rekey_at(self, keypair: Keypair) -> float:
        # The initiator rekeys first; the responder a little later, so both rarely race.
        return keypair.created + self.settings.rekey_after_s * (1.0 if keypair.initiator else 1.1)

    def _maybe_rekey(self, peer: PeerState, keypair: Keypair, now: float) -> None:
        due = now >= self._rekey_at(keypair) or keypair.send_counter >= REKEY_AFTER_MESSAGES
        if due and peer.handshake is None and now >= peer.next_route_try:
            self.counters["rekeys"] += 1
            self._start_handshake(peer, now)

    # -- sending packets -------------------------------------------------------

    def _seal(self, keypair: Keypair, plaintext: bytes) -> bytes:
        counter = keypair.send_counter
        keypair.send_counter = counter + 1
        header = _pack_header(_DATA, keypair.remote_index, counter)
        return header + keypair.send_aead.encrypt(_pack_nonce(counter), plaintext, None)

    def _send_data(self, peer: PeerState, keypair: Keypair, plaintext: bytes, now: float) -> None:
        route = peer.route
        if route is None:
            return
        self._emit(route, self._seal(keypair, plaintext))
        peer.last_sent = now

    def _emit(self, route: Route, packet: bytes) -> None:
        self.counters["sent_packets"] += 1
        self.counters["sent_bytes"] += len(packet)
        self.outputs.append((route, packet))

    def flush(self, now: float) -> None:
        """Turn pending reliable fragments and acknowledgements into packets."""
        if not self._dirty:
            return
        self.deadline_changed = True
        dirty, self._dirty = self._dirty, {}
        for peer in dirty:
            self._flush_peer(peer, now)

    def _flush_peer(self, peer: PeerState, now: float) -> None:
        keypair = peer.current
        if not self._usable(keypair, now) or peer.route is None:
            if peer.link.unacked and peer.handshake is None and now >= peer.next_route_try:
                self._start_handshake(peer, now)
            return
        assert keypair is not None
        link = peer.link
        limit = self._max_plaintext
        packet = bytearray()
        ack = link.take_ack()
        if ack is not None:
            packet += ack
        for fragment in link.due(now):
            frame = fragment.encode()
            if len(packet) + len(frame) > limit:
                self._send_data(peer, keypair, bytes(packet), now)
                packet = bytearray()
            packet += frame
        if packet:
            self._send_data(peer, keypair, bytes(packet), now)
        self._maybe_rekey(peer, keypair, now)

    # -- timers ----------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Retransmit, retry handshakes, send keepalives, rekey and expire: call at :meth:`next_deadline`."""
        self.deadline_changed = True
        settings = self.settings
        for peer in self.peers.values():
            keypair = peer.current
            if keypair is not None and not self._usable(keypair, now):
                self._expire(peer)
                keypair = None
            waiting = bool(peer.link.unacked or peer.datagrams)
            wanted = waiting or now < peer.want_until
            if peer.handshake is not None and now >= self._retry_at(peer.handshake, peer):
                if wanted:
                    self._start_handshake(peer, now)
                else:
                    self._pending.pop(peer.handshake.index, None)
                    peer.handshake = None
                    peer.handshake_attempts = 0
            if keypair is None:
                if waiting and peer.handshake is None and now >= peer.next_route_try:
                    self._start_handshake(peer, now)
                continue
            # a live session keeps working (retransmissions, keepalives) while a handshake runs
            if peer.handshake is None and now >= peer.next_route_try and now >= self._reconnect_at(peer):
                self.counters["reconnects"] += 1
                self._start_handshake(peer, now)
            self._maybe_rekey(peer, keypair, now)  # idle sessions too, so keepalives never stop
            if peer.link.has_due(now):
                self._dirty[peer] = None
            elif peer.route is not None and now >= peer.last_sent + settings.keepalive_s:
                self._send_data(peer, keypair, b"", now)
                self.counters["keepalives_sent"] += 1
        self.flush(now)

    def _reconnect_at(self, peer: PeerState) -> float:
        """When a session's silence means the path is stale or dead and a new handshake is due."""
        settings = self.settings
        at = float("inf")
        if peer.link.unacked and peer.link.max_retries >= DEGRADED_AFTER_RETRIES:
            # reliable data unanswered: the peer may have restarted or moved
            at = peer.last_received + settings.stale_after_s
        # the peer sends keepalives, so this much silence while we send means the path is dead
        lost = peer.last_received + 2 * settings.keepalive_s + settings.stale_after_s
        if lost < peer.last_sent + settings.keepalive_s:
            at = min(at, lost)
        return at

    def next_deadline(self) -> float:
        """The time :meth:`tick` next has work to do; ``inf`` when only an input can create any.

        A caller sleeps until this time or the next packet, whichever comes first, then calls
        :meth:`tick`. The value may lie in the past (work is due now). Clears :attr:`deadline_changed` unless a
        :meth:`flush` is due: until it is set again, a timer set at this answer is early enough.
        """
        if self._dirty:
            return float("-inf")
        self.deadline_changed = False
        settings = self.settings
        best = float("inf")
        for peer in self.peers.values():
            if peer.handshake is not None:
                best = min(best, self._retry_at(peer.handshake, peer))
            keypair = peer.current
            if keypair is None:
                if peer.handshake is None and (peer.link.unacked or peer.datagrams):
                    best = min(best, peer.next_route_try)
                continue
            best = min(best, keypair.created + settings.reject_after_s)
            if peer.handshake is None:
                due = min(self._reconnect_at(peer), self._rekey_at(keypair))
                best = min(best, max(due, peer.next_route_try))
            if peer.route is not None:
                best = min(best, peer.link.next_deadline(), peer.last_sent + settings.keepalive_s)
        return best

    def _expire(self, peer: PeerState) -> None:
        for old in (peer.current, peer.previous):
            if old is not None:
                self._by_index.pop(old.local_index, None)
        peer.current = peer.previous = None
        self.counters["sessions_expired"] += 1

    # -- inspection ------------------------------------------------------------

    def path_state(self, peer_id: PeerId, now: float) -> PathState:
        peer = self.peers.get(peer_id)
        if peer is None:
            return PathState.UNKNOWN
        if peer.handshake is not None and not self._usable(peer.current, now):
            return PathState.RECONNECTING if peer.ever_connected else PathState.CONNECTING
        if not self._usable(peer.current, now):
            return PathState.UNKNOWN
        if peer.handshake is not None and peer.link.max_retries >= DEGRADED_AFTER_RETRIES:
            return PathState.RECONNECTING
        silent = now - peer.last_received > 2 * self.settings.keepalive_s + self.settings.stale_after_s
        if silent or (peer.link.unacked and peer.link.max_retries >= DEGRADED_AFTER_RETRIES):
            return PathState.DEGRADED
        return PathState.CONNECTED

    def route_of(self, peer_id: PeerId) -> Route | None:
        peer = self.peers.get(peer_id)
        return peer.route if peer is not None else None

    def peer_status(self, now: float) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for peer in self.peers.values():
            rows.append(
                {
                    "peer": peer.peer_id,
                    "state": self.path_state(peer.peer_id, now).value,
                    "route": str(peer.route) if peer.route is not None else None,
                    "session_age_s": round(now - peer.current.created, 1) if peer.current else None,
                    "unacked": peer.link.unacked,
                    "rtt_ms": round(peer.link.srtt * 1000, 1) if peer.link.srtt is not None else None,
                    "retransmits": peer.link.retransmits,
                }
            )
        return rows
