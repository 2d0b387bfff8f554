"""Relay serving, sans-IO: allocations, forwarding of opaque session packets, quotas, reflection.

:class:`RelayServer` is fed datagrams with their source endpoint and the clock
and returns the datagrams to send. It never looks inside forwarded packets:
they are the UDP transport's end-to-end encrypted session packets. A client
must allocate first (proving its peer id with a signature over a nonce bound
to its source endpoint); only then may it send, within its own packet and
byte budgets. It also answers STUN Binding requests, so every relay is a
reflector. Touches nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from dataclasses import dataclass, field

from omerta_core.identity import verify
from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.randomness import RandomSource, system_random
from omerta_transport_relay import stun, wire
from omerta_transport_relay.ratelimit import TokenBucket

#: An allocation lives this long without a refresh; clients refresh far more often.
ALLOCATION_LIFETIME_S = 30
#: Allocations one relay holds at most, so memory stays bounded.
MAX_ALLOCATIONS = 4096
#: Allocations from one IP address: stops one machine from minting identities to fill the relay.
MAX_ALLOCATIONS_PER_HOST = 16
#: Each client may forward this many packets per second (bursts of PACKET_BURST).
PACKETS_PER_S = 2000.0
PACKET_BURST = 500.0
#: ...and this many bytes per second (bursts of BYTE_BURST): a relay is a fallback, not a bulk path.
BYTES_PER_S = 4_000_000.0
BYTE_BURST = 1_000_000.0
#: Control requests (allocate, probe, STUN) per source host per second: cheap to answer, still bounded.
CONTROL_PER_S = 50.0
CONTROL_BURST = 100.0
#: A nonce is valid for the current and the previous window of this length.
NONCE_WINDOW_S = 60.0
#: Source hosts whose control budget we remember; the least recently used is forgotten first.
MAX_TRACKED_HOSTS = 8192


@dataclass(frozen=True)
class Outgoing:
    """A datagram to send; ``from_other_port`` selects the relay's second socket."""

    endpoint: Endpoint
    data: bytes
    from_other_port: bool = False


@dataclass
class Allocation:
    peer: PeerId
    endpoint: Endpoint
    expires: float
    packets: TokenBucket = field(default_factory=lambda: TokenBucket(PACKETS_PER_S, PACKET_BURST))
    bytes: TokenBucket = field(default_factory=lambda: TokenBucket(BYTES_PER_S, BYTE_BURST))
    forwarded: int = 0
    throttled: int = 0


class RelayServer:
    """The state of one relay: allocations by peer and by endpoint, budgets, counters."""

    def __init__(
        self, relay: PeerId, *, other_port: int = 0, secret: bytes | None = None, rng: RandomSource | None = None
    ) -> None:
        self.relay = relay
        self.other_port = other_port
        self._secret = secret or (rng or system_random()).randbytes(32)
        self.by_peer: dict[PeerId, Allocation] = {}
        self.by_endpoint: dict[Endpoint, Allocation] = {}
        self._control: dict[str, TokenBucket] = {}
        self.counters: Counter[str] = Counter()

    # -- input ----------------------------------------------------------------

    def receive(self, data: bytes, source: Endpoint, now: float, *, on_other_port: bool = False) -> list[Outgoing]:
        """Handle one datagram from ``source`` (that arrived on the second port if so flagged)."""
        if stun.looks_like_stun(data):
            return self._reflect(data, source, now, on_other_port)
        if on_other_port:
            self.counters["dropped_other_port"] += 1
            return []
        try:
            message = wire.decode(data)
        except wire.RelayWireError:
            self.counters["dropped_malformed"] += 1
            return []
        match message:
            case wire.Send(destination, packet):
                return self._forward(destination, packet, source, now)
            case wire.Allocate():
                return self._allocate(message, source, now)
            case wire.ProbeMe():
                return self._probe(message, source, now)
        self.counters["dropped_unexpected"] += 1
        return []

    def next_deadline(self) -> float:
        """When :meth:`expire` next has an allocation to forget."""
        return min((a.expires for a in self.by_peer.values()), default=float("inf"))

    def expire(self, now: float) -> None:
        """Forget allocations that were not refreshed in time."""
        for allocation in [a for a in self.by_peer.values() if a.expires <= now]:
            self._remove(allocation)
            self.counters["allocations_expired"] += 1

    def status(self) -> dict[str, object]:
        return {
            "allocations": len(self.by_peer),
            "counters": dict(self.counters),
            "clients": {
                peer.short: {"endpoint": str(a.endpoint), "forwarded": a.forwarded, "throttled": a.throttled}
                for peer, a in self.by_peer.items()
            },
        }

    # -- allocations ----------------------------------------------------------

    def nonce_for(self, source: Endpoint, now: float, *, window_offset: int = 0) -> bytes:
        window = int(now // NONCE_WINDOW_S) - window_offset
        message = f"{source.host}|{source.port}|{window}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).digest()[: wire.NONCE_LEN]

    def _allocate(self, request: wire.Allocate, source: Endpoint, now: float) -> list[Outgoing]:
        if not self._control_allowed(source, now):
            return []
        valid_nonces = (self.nonce_for(source, now), self.nonce_for(source, now, window_offset=1))
        if not any(hmac.compare_digest(request.nonce, nonce) for nonce in valid_nonces):
            self.counters["challenges_sent"] += 1
            challenge = wire.Challenge(request.txid, self.nonce_for(source, now))
            return [Outgoing(source, wire.encode(challenge))]
        if not verify(request.client, request.signed_bytes(self.relay), request.signature):
            self.counters["refused_bad_signature"] += 1
            return [self._refuse(request.txid, wire.RefusalReason.BAD_SIGNATURE, source)]
        existing = self.by_peer.get(request.client)
        if existing is None:
            if len(self.by_peer) >= MAX_ALLOCATIONS:
                self.counters["refused_full"] += 1
                return [self._refuse(request.txid, wire.RefusalReason.FULL, source)]
            if sum(1 for a in self.by_peer.values() if a.endpoint.host == source.host) >= MAX_ALLOCATIONS_PER_HOST:
                self.counters["refused_host_limit"] += 1
                return [self._refuse(request.txid, wire.RefusalReason.TOO_MANY_FROM_HOST, source)]
            existing = Allocation(request.client, source, now + ALLOCATION_LIFETIME_S)
            self.by_peer[request.client] = existing
            self.counters["allocations_created"] += 1
        elif existing.endpoint != source:
            self.by_endpoint.pop(existing.endpoint, None)
            existing.endpoint = source
            self.counters["allocations_moved"] += 1
        stale = self.by_endpoint.get(source)
        if stale is not None and stale is not existing:
            self._remove(stale)
        self.by_endpoint[source] = existing
        existing.expires = now + ALLOCATION_LIFETIME_S
        self.counters["allocations_refreshed"] += 1
        answer = wire.Allocated(request.txid, ALLOCATION_LIFETIME_S, self.other_port, source)
        return [Outgoing(source, wire.encode(answer))]

    def _refuse(self, txid: bytes, reason: wire.RefusalReason, source: Endpoint) -> Outgoing:
        return Outgoing(source, wire.encode(wire.Refused(txid, reason)))

    def _remove(self, allocation: Allocation) -> None:
        self.by_peer.pop(allocation.peer, None)
        if self.by_endpoint.get(allocation.endpoint) is allocation:
            del self.by_endpoint[allocation.endpoint]

    # -- forwarding -----------------------------------------------------------

    def _forward(self, destination: PeerId, packet: bytes, source: Endpoint, now: float) -> list[Outgoing]:
        sender = self.by_endpoint.get(source)
        if sender is None or sender.expires <= now:
            self.counters["dropped_no_allocation"] += 1
            return []
        if not (sender.packets.allow(1, now) and sender.bytes.allow(len(packet), now)):
            sender.throttled += 1
            self.counters["throttled_packets"] += 1
            return []
        target = self.by_peer.get(destination)
        if target is None or target.expires <= now:
            self.counters["no_route"] += 1
            return [Outgoing(source, wire.encode(wire.NoRoute(destination)))]
        sender.forwarded += 1
        self.counters["forwarded_packets"] += 1
        self.counters["forwarded_bytes"] += len(packet)
        return [Outgoing(target.endpoint, wire.encode(wire.Data(sender.peer, packet)))]

    # -- reflection and filtering probes ---------------------------------------

    def _reflect(self, data: bytes, source: Endpoint, now: float, on_other_port: bool) -> list[Outgoing]:
        try:
            request = stun.decode(data)
        except stun.StunError:
            self.counters["dropped_malformed_stun"] += 1
            return []
        if request.type != stun.BINDING_REQUEST or not self._control_allowed(source, now):
            return []
        self.counters["stun_answered"] += 1
        answer = stun.encode_binding_success(request.transaction_id, source)
        return [Outgoing(source, answer, from_other_port=on_other_port)]

    def _probe(self, request: wire.ProbeMe, source: Endpoint, now: float) -> list[Outgoing]:
        if not self._control_allowed(source, now):
            return []
        self.counters["probes_sent"] += 1
        # the answer goes only to the requester and is no larger than the request: no amplification
        return [Outgoing(source, wire.encode(wire.Probed(request.txid)), from_other_port=True)]

    def _control_allowed(self, source: Endpoint, now: float) -> bool:
        bucket = self._control.pop(source.host, None) or TokenBucket(CONTROL_PER_S, CONTROL_BURST, updated=now)
        self._control[source.host] = bucket
        if len(self._control) > MAX_TRACKED_HOSTS:
            del self._control[next(iter(self._control))]
        if bucket.allow(1, now):
            return True
        self.counters["throttled_control"] += 1
        return False
