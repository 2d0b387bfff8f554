"""Punching decisions on the sans-IO core, with explicit times: each NAT pairing the lab builds.

Two :class:`PunchCoordinator` cores exchange their offer and answer directly (the relay's job);
the test plays the transport: it says when a direct path exists. No sockets, no sleeping.
"""

from __future__ import annotations

import itertools

import pytest
from omerta_transport_relay import client, punch
from omerta_transport_relay.traversal import NatClassifier, Probe, PunchCoordinator, PunchFinished, SendSignal

from omerta_core.identity import Identity
from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.interfaces.nat import NatFiltering, NatMapping
from omerta_core.randomness import seeded_random

#: The kinds of host the NAT lab (contrib/netlab) builds, as RFC 4787 behaviours.
KINDS = {
    "public": (NatMapping.NONE, NatFiltering.NONE),
    "full_cone": (NatMapping.ENDPOINT_INDEPENDENT, NatFiltering.ENDPOINT_INDEPENDENT),
    "address_restricted": (NatMapping.ENDPOINT_INDEPENDENT, NatFiltering.ADDRESS_DEPENDENT),
    "port_restricted": (NatMapping.ENDPOINT_INDEPENDENT, NatFiltering.ADDRESS_AND_PORT_DEPENDENT),
    "symmetric": (NatMapping.ADDRESS_AND_PORT_DEPENDENT, NatFiltering.ADDRESS_AND_PORT_DEPENDENT),
}
#: The pairs the lab expects to end up direct (the rest stay on the relay): two symmetric NATs never
#: punch, nor a symmetric NAT with a port-restricted one, without birthday probing.
HOPELESS = {("symmetric", "symmetric"), ("symmetric", "port_restricted"), ("port_restricted", "symmetric")}

A = PeerId(Identity.from_seed(b"a" * 32).peer_id)
B = PeerId(Identity.from_seed(b"b" * 32).peer_id)
A_AT = (Endpoint("198.18.0.10", 4000),)
B_AT = (Endpoint("198.18.0.20", 5000), Endpoint("10.0.0.2", 5000))


class Pair:
    """Initiator ``a`` and responder ``b`` with the lab behaviours of two kinds."""

    def __init__(self, kind_a: str, kind_b: str) -> None:
        self.a, self.b = PunchCoordinator(seeded_random(1)), PunchCoordinator(seeded_random(2))
        self.behaviour = {A: KINDS[kind_a], B: KINDS[kind_b]}

    def offer_and_answer(self, now: float) -> tuple[list[object], list[object]]:
        """``a`` relays a packet to ``b``: it offers, ``b`` answers, ``a`` reads the answer."""
        [offer] = self.a.relayed(B, now, direct=False, ours=self.behaviour[A], candidates=A_AT)
        assert isinstance(offer, SendSignal) and offer.peer == B
        at_b = self.b.on_signal(A, offer.data, now, ours=self.behaviour[B], candidates=B_AT)
        answer = at_b[0]
        assert isinstance(answer, SendSignal) and answer.peer == A
        at_a = self.a.on_signal(B, answer.data, now, ours=self.behaviour[A], candidates=A_AT)
        return at_a, at_b[1:]


@pytest.mark.parametrize(("kind_a", "kind_b"), list(itertools.product(KINDS, repeat=2)))
def test_each_lab_pairing_probes_or_stays_on_the_relay(kind_a: str, kind_b: str) -> None:
    pair = Pair(kind_a, kind_b)
    at_a, at_b = pair.offer_and_answer(100.0)
    if (kind_a, kind_b) in HOPELESS:
        assert at_a == [PunchFinished(B, None, "hopeless")] and at_b == [PunchFinished(A, None, "hopeless")]
        # a hopeless pair does not offer again for RETRY_MAX_S, however many packets the relay carries
        assert pair.a.relayed(B, 100.0 + punch.RETRY_MAX_S - 1, direct=False, ours=KINDS[kind_a], candidates=A_AT) == []
        assert pair.a.relayed(B, 100.0 + punch.RETRY_MAX_S, direct=False, ours=KINDS[kind_a], candidates=A_AT)
        return
    assert at_a == [] and at_b == []
    # both sides probe every candidate of the other at once, and again every PROBE_INTERVAL_S
    assert pair.a.tick(100.0, lambda _peer: None) == [Probe(B, e) for e in B_AT]
    assert pair.b.tick(100.0, lambda _peer: None) == [Probe(A, e) for e in A_AT]
    assert pair.a.next_deadline() == 100.0 + punch.PROBE_INTERVAL_S
    assert pair.a.tick(100.1, lambda _peer: None) == []
    assert pair.a.tick(100.0 + punch.PROBE_INTERVAL_S, lambda _peer: None) == [Probe(B, e) for e in B_AT]


def test_a_probe_that_gets_through_ends_the_attempt_direct_then_confirms_it() -> None:
    pair = Pair("full_cone", "symmetric")
    pair.offer_and_answer(0.0)
    pair.a.tick(0.0, lambda _peer: None)
    direct = Endpoint("198.18.0.20", 61000)  # the symmetric NAT's new port, seen on an authenticated packet
    assert pair.a.tick(0.3, lambda _peer: direct)[-1] == PunchFinished(B, direct, "direct")
    confirmations = []
    t = 0.3
    while (t := pair.a.next_deadline()) != float("inf"):
        confirmations += pair.a.tick(t, lambda _peer: direct)
    assert confirmations == [Probe(B, direct)] * punch.CONFIRMATION_PROBES
    assert pair.a.peers[B].failures == 0


def test_an_attempt_without_a_direct_path_fails_at_its_deadline_and_backs_off() -> None:
    pair = Pair("port_restricted", "port_restricted")
    pair.offer_and_answer(0.0)
    probes = 0
    t = 0.0
    finished: list[object] = []
    while not finished:
        actions = pair.a.tick(t, lambda _peer: None)
        probes += sum(isinstance(a, Probe) for a in actions)
        finished = [a for a in actions if isinstance(a, PunchFinished)]
        t = pair.a.next_deadline()
    assert finished == [PunchFinished(B, None, "timeout")]
    # one round at the start and one every PROBE_INTERVAL_S up to and including the deadline
    assert probes == len(B_AT) * (round(punch.ATTEMPT_TIMEOUT_S / punch.PROBE_INTERVAL_S) + 1)
    ended = punch.ATTEMPT_TIMEOUT_S
    # the next relayed packet does not offer again before the back-off (RETRY_MIN_S, doubling) is over
    ours = KINDS["port_restricted"]
    assert pair.a.relayed(B, ended + punch.RETRY_MIN_S - 0.01, direct=False, ours=ours, candidates=A_AT) == []
    assert pair.a.relayed(B, ended + punch.RETRY_MIN_S, direct=False, ours=ours, candidates=A_AT)


def test_an_unanswered_offer_gives_up_after_the_answer_timeout() -> None:
    pair = Pair("full_cone", "full_cone")
    pair.a.relayed(B, 10.0, direct=False, ours=KINDS["full_cone"], candidates=A_AT)
    assert pair.a.next_deadline() == 10.0 + punch.ANSWER_TIMEOUT_S
    assert pair.a.tick(10.0 + punch.ANSWER_TIMEOUT_S - 0.01, lambda _peer: None) == []
    assert pair.a.tick(10.0 + punch.ANSWER_TIMEOUT_S, lambda _peer: None) == [PunchFinished(B, None, "timeout")]


def test_a_peer_with_a_direct_path_or_no_candidates_is_not_offered_a_punch() -> None:
    coordinator = PunchCoordinator(seeded_random(3))
    assert coordinator.relayed(B, 0.0, direct=True, ours=KINDS["public"], candidates=A_AT) == []
    assert coordinator.relayed(B, 0.0, direct=False, ours=KINDS["public"], candidates=()) == []
    assert coordinator.relayed(B, 0.0, direct=False, ours=KINDS["public"], candidates=A_AT)


def test_malformed_signals_are_dropped_and_counted() -> None:
    coordinator = PunchCoordinator(seeded_random(4))
    assert coordinator.on_signal(B, b"\x01junk", 0.0, ours=KINDS["public"], candidates=A_AT) == []
    assert coordinator.counters["dropped_malformed_signal"] == 1


def classified_behind_one_nat() -> tuple[client.RelayPool, NatClassifier]:
    """Two relays that both saw this node at 198.18.9.2:20001, and a classifier that learnt from them."""
    pool = client.RelayPool(A, lambda message: bytes(64))
    for host in ("198.18.1.2", "198.18.2.2"):
        pool.add_relay(B, Endpoint(host, 7700))
    for link in pool.links:
        link.observed = Endpoint("198.18.9.2", 20001)
    classifier = NatClassifier([], lambda observer: "198.19.9.2", seeded_random(3))
    classifier.tick(0.0, pool, 20001)
    assert classifier.behaviour[0] is NatMapping.ENDPOINT_INDEPENDENT
    return pool, classifier


def report_one_relay_after_the_other(pool: client.RelayPool, classifier: NatClassifier, mapped: Endpoint) -> None:
    """The relays report ``mapped`` one after the other: never read as symmetric meanwhile, the NAT learnt
    afresh at the classifier's next run, and endpoint-independent once both agree."""
    pool.links[0].observed = mapped
    classifier.classify(pool, mapped.port)
    assert classifier.behaviour[0] is not NatMapping.ADDRESS_AND_PORT_DEPENDENT
    assert classifier.next_deadline() <= 0.0
    pool.links[1].observed = mapped
    classifier.classify(pool, mapped.port)
    assert classifier.behaviour[0] is NatMapping.ENDPOINT_INDEPENDENT


def test_a_new_public_address_makes_the_classifier_forget_the_old_network() -> None:
    """Roaming: one observer sees the new public address before the others; mixing both read as
    endpoint-dependent mapping ("symmetric"), which made every punch hopeless for five minutes."""
    pool, classifier = classified_behind_one_nat()
    assert classifier.next_deadline() > 100.0
    report_one_relay_after_the_other(pool, classifier, Endpoint("198.18.9.3", 20001))  # the router was renumbered


def test_a_restarted_transport_makes_the_classifier_learn_the_new_sockets_mapping() -> None:
    """The transport reopened its socket on a new port: one relay reports the new mapping before the
    other; mixing it with the old port read as endpoint-dependent mapping and made punching hopeless."""
    pool, classifier = classified_behind_one_nat()
    classifier.moved()
    pool.reallocate(0.1)  # each relay reports the new socket's mapping when it answers
    assert [link.observed for link in pool.links] == [None, None]
    report_one_relay_after_the_other(pool, classifier, Endpoint("198.18.9.2", 31000))
