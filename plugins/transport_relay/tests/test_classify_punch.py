"""NAT classification from observers, the pair decision, and punch signalling and scheduling."""

from __future__ import annotations

import pytest
from omerta_transport_relay import punch
from omerta_transport_relay.classify import Observation, classify_filtering, classify_mapping, direct_possible

from omerta_core.interfaces.common import Endpoint
from omerta_core.interfaces.nat import NatFiltering, NatMapping

LOCAL = Endpoint("0.0.0.0", 20001)
R1, R1_OTHER, R2 = Endpoint("198.18.1.2", 4000), Endpoint("198.18.1.2", 4001), Endpoint("198.18.2.2", 4000)


def obs(observer: Endpoint, host: str, port: int) -> Observation:
    return Observation(observer, LOCAL, Endpoint(host, port))


def test_mapping_classes() -> None:
    wan = "198.18.9.2"
    assert classify_mapping([], set()) is NatMapping.UNKNOWN
    assert classify_mapping([obs(R1, "198.18.9.2", 20001)], {"198.18.9.2"}) is NatMapping.NONE
    same = [obs(R1, wan, 20001), obs(R2, wan, 20001)]
    assert classify_mapping(same, {"198.19.9.2"}) is NatMapping.ENDPOINT_INDEPENDENT
    assert classify_mapping(same[:1], {"198.19.9.2"}) is NatMapping.UNKNOWN, "one observer proves nothing"
    by_address = [obs(R1, wan, 1000), obs(R1_OTHER, wan, 1000), obs(R2, wan, 2000)]
    assert classify_mapping(by_address, set()) is NatMapping.ADDRESS_DEPENDENT
    by_port = [obs(R1, wan, 1000), obs(R1_OTHER, wan, 1001), obs(R2, wan, 2000)]
    assert classify_mapping(by_port, set()) is NatMapping.ADDRESS_AND_PORT_DEPENDENT


def test_filtering_classes() -> None:
    eim = NatMapping.ENDPOINT_INDEPENDENT
    assert classify_filtering(eim, from_other_port=True, from_other_address=True) is NatFiltering.ENDPOINT_INDEPENDENT
    assert classify_filtering(eim, from_other_port=True, from_other_address=False) is NatFiltering.ADDRESS_DEPENDENT
    apdf = NatFiltering.ADDRESS_AND_PORT_DEPENDENT
    assert classify_filtering(eim, from_other_port=False, from_other_address=False) is apdf
    assert classify_filtering(eim, from_other_port=None, from_other_address=None) is NatFiltering.UNKNOWN
    assert classify_filtering(NatMapping.NONE, from_other_port=True, from_other_address=True) is NatFiltering.NONE


EIM, EDM = NatMapping.ENDPOINT_INDEPENDENT, NatMapping.ADDRESS_AND_PORT_DEPENDENT
EIF, ADF, APDF = (
    NatFiltering.ENDPOINT_INDEPENDENT,
    NatFiltering.ADDRESS_DEPENDENT,
    NatFiltering.ADDRESS_AND_PORT_DEPENDENT,
)
PUBLIC = (NatMapping.NONE, NatFiltering.NONE)


@pytest.mark.parametrize(
    ("ours", "theirs", "possible"),
    [
        ((EIM, APDF), (EIM, APDF), True),
        ((EDM, APDF), (EIM, EIF), True),
        ((EDM, APDF), (EIM, ADF), True),
        ((EDM, APDF), (EIM, APDF), False),
        ((EDM, APDF), (EDM, APDF), False),
        ((EDM, APDF), PUBLIC, True),
        ((EIM, APDF), (EDM, APDF), False),
    ],
)
def test_direct_possible(ours: tuple, theirs: tuple, possible: bool) -> None:
    assert direct_possible(ours, theirs) is possible
    assert direct_possible(theirs, ours) is possible


def test_signal_round_trip_and_malformed() -> None:
    signal = punch.Signal(punch.Kind.OFFER, b"12345678", EIM, ADF, (R1, Endpoint("fd00::1", 9)))
    assert punch.Signal.decode(signal.encode()) == signal
    with pytest.raises(punch.PunchError):
        punch.Signal.decode(b"\x01short")
    with pytest.raises(punch.PunchError):
        punch.Signal.decode(b"\x09" + bytes(11))


def test_attempt_probes_all_candidates_on_schedule_until_direct() -> None:
    attempt = punch.Attempt.offer(0.0)
    assert attempt.due_probes(0.0) == []
    attempt.start_probing((R1, R2), 0.5)
    assert attempt.due_probes(0.5) == [R1, R2]
    assert attempt.due_probes(0.6) == []
    assert attempt.due_probes(0.5 + punch.PROBE_INTERVAL_S) == [R1, R2]
    assert attempt.check(1.0, direct=False) is punch.State.PROBING
    assert attempt.check(1.1, direct=True) is punch.State.DIRECT
    assert attempt.due_probes(5.0) == []
    confirmations = [t for t in (1.1, 1.2, 1.4, 1.7, 2.0, 2.3, 2.6, 2.9) if attempt.confirmation_due(t)]
    assert confirmations == [1.1, 1.4, 1.7, 2.0][: punch.CONFIRMATION_PROBES]


def test_attempt_fails_after_its_deadline_and_backs_off() -> None:
    attempt = punch.Attempt.offer(0.0)
    assert attempt.check(punch.ANSWER_TIMEOUT_S, direct=False) is punch.State.FAILED
    attempt = punch.Attempt.offer(0.0)
    attempt.start_probing((R1,), 1.0)
    assert attempt.check(1.0 + punch.ATTEMPT_TIMEOUT_S - 0.1, direct=False) is punch.State.PROBING
    assert attempt.check(1.0 + punch.ATTEMPT_TIMEOUT_S, direct=False) is punch.State.FAILED
    history = punch.PeerPunching(current=attempt)
    history.record_failure(10.0)
    assert not history.may_start(10.0 + punch.RETRY_MIN_S - 1)
    assert history.may_start(10.0 + punch.RETRY_MIN_S)
    history.record_failure(30.0)
    assert history.not_before == 30.0 + 2 * punch.RETRY_MIN_S
