"""NAT traversal as sans-IO cores: driving the NAT classification, and coordinating hole punches.

:class:`NatClassifier` decides when to (re)learn the NAT's behaviour and what to send for it: a
filtering probe from a relay's second port first (sending to that port earlier would open the
filter for it and spoil the test), then STUN Binding requests to the configured servers and the
relays' second ports; from the answers and the relays' reflections it classifies the mapping and
filtering (:mod:`.classify`).

:class:`PunchCoordinator` runs the offer/answer exchange and the probing schedule of
:mod:`.punch` for every peer: it offers when a peer's packets go through a relay, answers
offers, skips pairs that cannot punch (:func:`.classify.direct_possible`) with a long back-off,
probes every candidate on schedule, and reports each attempt's end.

Both are fed events and the time ``now`` by the caller and return actions (datagrams to send from
the transport's socket, punch signals for the reliable channel, probes, finished punches); they
take their randomness from an injected source and say when they next need to run. What they know
of the transport they are told (is there a direct endpoint, which endpoints are local). The
asyncio service (:mod:`.service`) does the I/O. Touches nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.interfaces.nat import NatFiltering, NatMapping
from omerta_core.randomness import RandomSource, system_random
from omerta_transport_relay import client, stun, wire
from omerta_transport_relay import punch as holepunch
from omerta_transport_relay.classify import Observation, classify_filtering, classify_mapping, direct_possible

#: Re-learn the NAT's behaviour this often (a laptop changes networks).
CLASSIFY_INTERVAL_S = 300.0
#: How long a filtering probe may take to come back before it counts as filtered.
FILTER_PROBE_WAIT_S = 2.0

Behaviour = tuple[NatMapping, NatFiltering]
UNKNOWN: Behaviour = (NatMapping.UNKNOWN, NatFiltering.UNKNOWN)


@dataclass(frozen=True)
class SendRaw:
    """Send ``data`` to ``endpoint`` from the transport's own socket."""

    endpoint: Endpoint
    data: bytes


@dataclass(frozen=True)
class SendSignal:
    """Send a punch OFFER or ANSWER to ``peer`` on the transport's reliable channel :data:`.punch.CHANNEL`."""

    peer: PeerId
    data: bytes


@dataclass(frozen=True)
class Probe:
    """Send an authenticated probe to ``peer`` at ``endpoint`` (``PacketPathHost.probe``)."""

    peer: PeerId
    endpoint: Endpoint


@dataclass(frozen=True)
class PunchFinished:
    """The attempt towards ``peer`` ended: with a direct ``endpoint``, or ``None`` (the relay stays)."""

    peer: PeerId
    endpoint: Endpoint | None
    reason: str


Action = SendRaw | SendSignal | Probe | PunchFinished


class NatClassifier:
    """When to probe the NAT, what to send for it, and what the answers say about it."""

    def __init__(
        self,
        stun_servers: Sequence[Endpoint],
        local_address_for: Callable[[Endpoint], str],
        rng: RandomSource | None = None,
    ) -> None:
        self.stun_servers = list(stun_servers)
        self.local_address_for = local_address_for
        self.rng = rng or system_random()
        self.behaviour: Behaviour = UNKNOWN
        self.observations: dict[Endpoint, Observation] = {}
        self._stun: list[tuple[stun.BindingTransaction, Endpoint]] = []
        self._filter_probe: tuple[bytes, float] | None = None
        self._filter_results: dict[str, bool] = {}
        self._next_classify = 0.0
        #: Classification is due but waits for a relay to answer (the caller runs us again when one does).
        self._waiting_for_relay = False

    def observed_endpoints(self) -> list[Endpoint]:
        return [o.mapped for o in self.observations.values()]

    def next_deadline(self) -> float:
        best = float("inf") if self._waiting_for_relay else self._next_classify
        if self._filter_probe is not None:
            best = min(best, self._filter_probe[1])
        for txn, _ in self._stun:
            deadline = txn.next_deadline()
            if deadline is not None:
                best = min(best, deadline)
        return best

    def tick(self, now: float, pool: client.RelayPool, local_port: int) -> list[Action]:
        out: list[Action] = []
        for txn, observer in self._stun:
            request = txn.poll(now)
            if request is not None:
                out.append(SendRaw(observer, request))
        if self._filter_probe is not None and now >= self._filter_probe[1]:
            self._filter_probe = None
            self._filter_results["other_port"] = False
            out += self._start_stun(now, pool)
        if now >= self._next_classify:
            self._waiting_for_relay = bool(pool.links) and not pool.healthy_links(now)
            if not self._waiting_for_relay:
                out += self._start_discovery(now, pool)
                self._next_classify = now + CLASSIFY_INTERVAL_S
        self.classify(pool, local_port)
        return out

    def on_stun_answer(self, data: bytes, source: Endpoint, local_port: int) -> bool:
        """Feed a STUN answer; True when it answered one of our requests."""
        for txn, observer in self._stun:
            if txn.receive(data, source) and txn.result is not None:
                self._observe(observer, txn.result, local_port)
                return True
        return False

    def on_probed(self, txid: bytes, now: float, pool: client.RelayPool) -> list[Action]:
        """A relay's filtering probe got in from its second port."""
        if self._filter_probe is None or self._filter_probe[0] != txid:
            return []
        self._filter_probe = None
        self._filter_results["other_port"] = True
        return self._start_stun(now, pool)

    def classify(self, pool: client.RelayPool, local_port: int) -> bool:
        """Re-classify from what is known now; True when the behaviour changed."""
        for link in pool.links:
            if link.observed is not None:
                self._observe(link.endpoint, link.observed, local_port)
        by_family = [o for o in self.observations.values() if not o.observer.is_ipv6]
        mapping = classify_mapping(by_family, {o.local.host for o in by_family})
        filtering = classify_filtering(
            mapping, from_other_port=self._filter_results.get("other_port"), from_other_address=None
        )
        changed = (mapping, filtering) != self.behaviour
        self.behaviour = (mapping, filtering)
        return changed

    def _observe(self, observer: Endpoint, mapped: Endpoint, local_port: int) -> None:
        known = self.observations.get(observer)
        if known is not None and known.mapped == mapped:
            return
        if known is not None and known.mapped.host != mapped.host:
            # the public address changed (the NAT was renumbered, the laptop moved): what the other
            # observers saw of the old address would read as endpoint-dependent mapping
            self.observations = {k: o for k, o in self.observations.items() if o.mapped.host == mapped.host}
            self._filter_results.clear()
            self._next_classify = 0.0  # learn the new network's behaviour at the next run
            self._waiting_for_relay = False
        local = Endpoint(self.local_address_for(observer), local_port)
        self.observations[observer] = Observation(observer, local, mapped)

    def moved(self) -> None:
        """This node's socket changed (its transport restarted): every mapping seen was of the old socket.

        Kept, the old port beside the new one from the same observer would read as endpoint-dependent
        mapping and make every punch hopeless; so all is forgotten and learnt again at the next run.
        """
        self.observations.clear()
        self._filter_results.clear()
        self._stun = []
        self._filter_probe = None
        self._next_classify = 0.0
        self._waiting_for_relay = False

    def _start_discovery(self, now: float, pool: client.RelayPool) -> list[Action]:
        """Ask the first healthy relay for a filtering probe from its second port (STUN waits for it)."""
        self._filter_results.clear()
        healthy = pool.healthy_links(now)
        self._stun = []
        if healthy and healthy[0].other_port:
            txid = self.rng.randbytes(wire.TXID_LEN)
            self._filter_probe = (txid, now + FILTER_PROBE_WAIT_S)
            return [SendRaw(healthy[0].endpoint, wire.encode(wire.ProbeMe(txid)))]
        return self._start_stun(now, pool)

    def _start_stun(self, now: float, pool: client.RelayPool) -> list[Action]:
        observers = list(self.stun_servers)
        observers += [Endpoint(link.endpoint.host, link.other_port) for link in pool.links if link.other_port]
        self._stun = [(stun.BindingTransaction(o, now, self.rng), o) for o in observers if not o.is_ipv6]
        return []


class PunchCoordinator:
    """Offer/answer and probing towards every peer, with per-peer back-off."""

    def __init__(self, rng: RandomSource | None = None) -> None:
        self.rng = rng or system_random()
        self.peers: dict[PeerId, holepunch.PeerPunching] = {}
        self.counters: Counter[str] = Counter()

    def next_deadline(self) -> float:
        """When :meth:`tick` next has a probe to send or an attempt to time out."""
        best = float("inf")
        for history in self.peers.values():
            attempt = history.current
            if attempt is None:
                continue
            if attempt.state is holepunch.State.OFFERED:
                best = min(best, attempt.started + holepunch.ANSWER_TIMEOUT_S)
            elif attempt.state is holepunch.State.PROBING:
                assert attempt.probing_since is not None
                best = min(best, attempt.next_probe, attempt.probing_since + holepunch.ATTEMPT_TIMEOUT_S)
            elif attempt.state is holepunch.State.DIRECT and attempt.confirmations_sent < holepunch.CONFIRMATION_PROBES:
                best = min(best, attempt.next_probe)
        return best

    def relayed(
        self, peer: PeerId, now: float, *, direct: bool, ours: Behaviour, candidates: tuple[Endpoint, ...]
    ) -> list[Action]:
        """A packet to ``peer`` went through a relay: offer a punch unless one runs, waits out a back-off or is moot."""
        history = self.peers.setdefault(peer, holepunch.PeerPunching())
        if direct or not history.may_start(now) or not candidates:
            return []  # no candidates yet: the next relayed packet tries again
        attempt = holepunch.Attempt.offer(now, self.rng)
        history.current = attempt
        self.counters["punch_offers_sent"] += 1
        mapping, filtering = ours
        offer = holepunch.Signal(holepunch.Kind.OFFER, attempt.attempt, mapping, filtering, candidates)
        return [SendSignal(peer, offer.encode())]

    def request(
        self, peer: PeerId, now: float, *, direct: bool, ours: Behaviour, candidates: tuple[Endpoint, ...]
    ) -> list[Action]:
        """Punch towards ``peer`` now (an explicit request): forget the back-off and a hopeless verdict."""
        history = self.peers.setdefault(peer, holepunch.PeerPunching())
        history.not_before = 0.0
        history.hopeless = False
        return self.relayed(peer, now, direct=direct, ours=ours, candidates=candidates)

    def moved(self) -> None:
        """This node's socket changed: earlier failed punches say nothing of the new mapping, so no back-off."""
        for history in self.peers.values():
            history.not_before = 0.0

    def on_signal(
        self, peer: PeerId, data: bytes, now: float, *, ours: Behaviour, candidates: tuple[Endpoint, ...]
    ) -> list[Action]:
        """An OFFER or ANSWER from ``peer``: answer an offer; start probing unless the pair cannot punch."""
        try:
            signal = holepunch.Signal.decode(data)
        except holepunch.PunchError:
            self.counters["dropped_malformed_signal"] += 1
            return []
        history = self.peers.setdefault(peer, holepunch.PeerPunching())
        history.remote_behaviour = (signal.mapping, signal.filtering)
        out: list[Action] = []
        if signal.kind is holepunch.Kind.OFFER:
            self.counters["punch_offers_received"] += 1
            current = history.current
            if current is None or current.state not in (holepunch.State.OFFERED, holepunch.State.PROBING):
                current = history.current = holepunch.Attempt(signal.attempt, now)
            mapping, filtering = ours
            answer = holepunch.Signal(holepunch.Kind.ANSWER, signal.attempt, mapping, filtering, candidates)
            out.append(SendSignal(peer, answer.encode()))
        else:
            current = history.current
            if current is None or current.attempt != signal.attempt:
                self.counters["dropped_stale_answer"] += 1
                return []
        if not direct_possible(ours, history.remote_behaviour):
            self.counters["punch_skipped_hopeless"] += 1
            current.state, current.finished = holepunch.State.FAILED, now
            history.record_failure(now)
            history.not_before = now + holepunch.RETRY_MAX_S
            out.append(PunchFinished(peer, None, "hopeless"))
            return out
        current.start_probing(signal.candidates, now)
        return out

    def tick(self, now: float, direct_of: Callable[[PeerId], Endpoint | None]) -> list[Action]:
        """Probe on schedule; finish attempts that found a direct path or ran out of time."""
        out: list[Action] = []
        for peer, history in self.peers.items():
            attempt = history.current
            if attempt is None or attempt.state is holepunch.State.FAILED:
                continue
            direct = direct_of(peer)
            if attempt.state is holepunch.State.DIRECT:
                if direct is not None and attempt.confirmation_due(now):
                    out.append(Probe(peer, direct))
                continue
            out += [Probe(peer, endpoint) for endpoint in attempt.due_probes(now)]
            state = attempt.check(now, direct=direct is not None)
            if state is holepunch.State.DIRECT:
                history.record_success()
                self.counters["punches_succeeded"] += 1
                out.append(PunchFinished(peer, direct, "direct"))
            elif state is holepunch.State.FAILED:
                history.record_failure(now)
                self.counters["punches_failed"] += 1
                out.append(PunchFinished(peer, None, "timeout"))
        return out
