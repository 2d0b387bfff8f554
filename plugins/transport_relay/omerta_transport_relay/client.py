"""Relay client, sans-IO: holds allocations on several relays, picks one per peer, fails over.

A :class:`RelayLink` keeps one allocation alive (allocate, answer the nonce
challenge, refresh) and judges the relay dead when refreshes go unanswered.
A :class:`RelayPool` owns the links, chooses the first healthy relay that can
reach a peer (a relay answering NO_ROUTE for a peer is skipped for a while),
and turns received datagrams into events. Fed datagrams and the clock;
returns datagrams to send. Touches nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.randomness import RandomSource, system_random
from omerta_transport_relay import wire

#: How often a held allocation is refreshed (also the relay liveness probe).
REFRESH_INTERVAL_S = 1.0
#: A relay that answered nothing for this long is dead: about three missed refreshes, so
#: failover to another relay finishes well within the 10 s the acceptance test allows.
DEAD_AFTER_S = 3.5
#: Retry allocating on a dead or refusing relay this often.
RETRY_INTERVAL_S = 2.0
#: After a NO_ROUTE for a peer, do not try that relay for that peer for this long.
NO_ROUTE_HOLD_S = 3.0

#: Signs ``message`` with this node's identity.
Signer = Callable[[bytes], bytes]


@dataclass(frozen=True)
class Delivered:
    """A session packet that arrived through ``relay`` from ``source``."""

    relay: PeerId
    source: PeerId
    packet: bytes


@dataclass(frozen=True)
class ProbeArrived:
    """A filtering probe came back (the NAT let it in)."""

    txid: bytes


@dataclass
class RelayLink:
    """One relay and the allocation this node holds on it."""

    relay: PeerId
    endpoint: Endpoint
    me: PeerId
    sign: Signer
    nonce: bytes = b""
    observed: Endpoint | None = None
    other_port: int = 0
    allocated_at: float | None = None
    last_answer: float | None = None
    next_request: float = 0.0
    refused: wire.RefusalReason | None = None
    rng: RandomSource = field(default_factory=system_random)
    _txid: bytes = b""

    def healthy(self, now: float) -> bool:
        return self.allocated_at is not None and self.last_answer is not None and now - self.last_answer < DEAD_AFTER_S

    def poll(self, now: float) -> bytes | None:
        """An ALLOCATE (first or refresh) when one is due."""
        if now < self.next_request:
            return None
        self.next_request = now + (RETRY_INTERVAL_S if self.refused is not None else REFRESH_INTERVAL_S)
        return self.allocate_request()

    def allocate_request(self) -> bytes:
        nonce = self.nonce or bytes(wire.NONCE_LEN)
        self._txid = self.rng.randbytes(wire.TXID_LEN)
        statement = wire.allocation_statement(self.relay, self._txid, nonce, self.me)
        return wire.encode(wire.Allocate(self._txid, nonce, self.me, self.sign(statement)))

    def on_challenge(self, challenge: wire.Challenge, now: float) -> bytes | None:
        if challenge.txid != self._txid:
            return None
        self.nonce = challenge.nonce
        self.last_answer = now
        return self.allocate_request()

    def on_allocated(self, answer: wire.Allocated, now: float) -> bool:
        if answer.txid != self._txid:
            return False
        self.observed = answer.observed
        self.other_port = answer.other_port
        self.allocated_at = self.allocated_at or now
        self.last_answer = now
        self.refused = None
        return True

    def on_refused(self, answer: wire.Refused, now: float) -> None:
        if answer.txid == self._txid:
            self.refused = answer.reason
            self.allocated_at = None
            self.next_request = now + RETRY_INTERVAL_S


@dataclass
class RelayPool:
    """Every relay this node uses, in preference order."""

    me: PeerId
    sign: Signer
    links: list[RelayLink] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)
    _no_route: dict[tuple[PeerId, PeerId], float] = field(default_factory=dict)
    _was_healthy: dict[Endpoint, bool] = field(default_factory=dict)
    rng: RandomSource = field(default_factory=system_random)

    def add_relay(self, relay: PeerId, endpoint: Endpoint) -> None:
        """Hold an allocation on ``relay`` at ``endpoint`` (one relay may be reached over IPv4 and IPv6)."""
        if relay == self.me or any(link.endpoint == endpoint for link in self.links):
            return
        self.links.append(RelayLink(relay, endpoint, self.me, self.sign, rng=self.rng))

    def reallocate(self, now: float) -> None:
        """This node's socket changed (its transport restarted): ask every relay for the allocation again now.

        The relay knows the allocation by the old source; the request from the new one is challenged
        afresh and moves it, so packets for this node reach the new socket one round trip later. What
        each relay observed was the old socket's mapping: forgotten until it answers again.
        """
        for link in self.links:
            link.next_request = now
            link.observed = None
        self.counters["reallocations"] += 1

    def link_at(self, endpoint: Endpoint) -> RelayLink | None:
        return next((link for link in self.links if link.endpoint == endpoint), None)

    def next_deadline(self) -> float:
        """When :meth:`poll` next has work: an allocation request due, or a relay going silent for too long."""
        best = float("inf")
        for link in self.links:
            best = min(best, link.next_request)
            if self._was_healthy.get(link.endpoint) and link.last_answer is not None:
                best = min(best, link.last_answer + DEAD_AFTER_S)
        return best

    def poll(self, now: float) -> list[tuple[Endpoint, bytes]]:
        """Allocation requests that are due, and failover bookkeeping."""
        out = []
        for link in self.links:
            healthy = link.healthy(now)
            if self._was_healthy.get(link.endpoint) and not healthy:
                self.counters["relays_lost"] += 1
                link.allocated_at = None
                link.next_request = now
            self._was_healthy[link.endpoint] = healthy
            request = link.poll(now)
            if request is not None:
                out.append((link.endpoint, request))
        return out

    def healthy_links(self, now: float) -> list[RelayLink]:
        return [link for link in self.links if link.healthy(now)]

    def route(self, peer: PeerId, now: float) -> RelayLink | None:
        """The relay to carry packets for ``peer``: the first healthy one not known to lack it."""
        for link in self.healthy_links(now):
            held_until = self._no_route.get((link.relay, peer))
            if held_until is None or held_until <= now:
                return link
        return None

    def send(self, peer: PeerId, packet: bytes, now: float) -> tuple[Endpoint, bytes] | None:
        link = self.route(peer, now)
        if link is None:
            self.counters["dropped_no_relay"] += 1
            return None
        self.counters["sent_packets"] += 1
        return link.endpoint, wire.encode(wire.Send(peer, packet))

    def receive(self, link: RelayLink, message: wire.Message, now: float) -> tuple[list[bytes], object | None]:
        """Handle one message from ``link``'s relay: replies to send there, and an event if any."""
        match message:
            case wire.Data(source, packet):
                link.last_answer = now
                self.counters["received_packets"] += 1
                return [], Delivered(link.relay, source, packet)
            case wire.Challenge():
                reply = link.on_challenge(message, now)
                return ([reply] if reply else []), None
            case wire.Allocated():
                link.on_allocated(message, now)
                return [], None
            case wire.Refused():
                link.on_refused(message, now)
                self.counters[f"refused_{message.reason.name.lower()}"] += 1
                return [], None
            case wire.NoRoute(destination):
                self._no_route[(link.relay, destination)] = now + NO_ROUTE_HOLD_S
                self.counters["no_route"] += 1
                return [], None
            case wire.Probed(txid):
                return [], ProbeArrived(txid)
        self.counters["dropped_unexpected"] += 1
        return [], None

    def status(self, now: float) -> list[dict[str, object]]:
        return [
            {
                "relay": link.relay,
                "endpoint": str(link.endpoint),
                "healthy": link.healthy(now),
                "observed": str(link.observed) if link.observed else None,
                "refused": link.refused.name if link.refused else None,
            }
            for link in self.links
        ]
