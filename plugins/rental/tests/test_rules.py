"""Admission rules, offers and the message decoder: pure functions, one behaviour per test."""

from __future__ import annotations

import contextlib
import json
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from omerta_rental import billing
from omerta_rental.admission import Candidate, Lease, Policy, Tier, admit, in_quiet_hours
from omerta_rental.messages import MAX_MESSAGE_BYTES, Heartbeat, MessageError, Request, decode, encode
from omerta_rental.offers import Offer, OfferError, SeenOffer, Want, matching, remaining
from omerta_rental.settings import SettingsError, parse_settings

from omerta_core.identity import Identity
from omerta_core.interfaces.common import PeerId

OWNER = PeerId(Identity.generate().peer_id)
FRIEND = PeerId(Identity.generate().peer_id)
STRANGER = PeerId(Identity.generate().peer_id)
OFFER = Offer(4, 4096, 8, ("omk-test",), 100, 24, "lab", 4, 4096)
POLICY = Policy(owners=frozenset({OWNER}), trusted_networks=frozenset({"friends"}), max_per_consumer=1, max_total=2,
                min_trust=0.1)  # fmt: skip


def candidate(consumer: PeerId = STRANGER, **changes: object) -> Candidate:
    fields: dict[str, object] = {"consumer": consumer, "want": Want(1, 512, "omk-test", None, 3600),
                                 "activity": "build docs", "trust": 0.5, "local_hour": 12, "leases": ()}  # fmt: skip
    fields.update(changes)
    return Candidate(**fields)  # type: ignore[arg-type]


def lease(consumer: str, tier: Tier, rental: str = "r1", memory: int = 512) -> Lease:
    return Lease(rental, consumer, tier, 1, memory)


def test_a_plain_request_is_admitted() -> None:
    assert admit(POLICY, OFFER, candidate()).admitted


@pytest.mark.parametrize(
    ("policy", "changes", "reason"),
    [
        (Policy(blocklist=frozenset({STRANGER})), {}, "blocklisted"),
        (POLICY, {"activity": " "}, "describe what you will run"),
        (POLICY, {"want": Want(8, 512, "omk-test")}, "offers 4 free vCPUs, not 8"),
        (POLICY, {"want": Want(1, 9999, "omk-test")}, "offers 4096 MiB free, not 9999"),
        (POLICY, {"want": Want(1, 512, "debian")}, "has no image 'debian'"),
        (POLICY, {"want": Want(1, 512, "omk-test", None, 25 * 3600)}, "leases at most 24 h"),
        (Policy(admit_others=False), {}, "only to its owner and trusted networks"),
        (Policy(quiet_hours=(22, 6)), {"local_hour": 23}, "quiet hours (22:00-06:00"),
        (POLICY, {"trust": 0.05}, "below the minimum 0.100"),
        (POLICY, {"leases": (lease(STRANGER, Tier.OTHER),)}, "already hold 1 lease(s)"),
        (POLICY, {"leases": (lease(FRIEND, Tier.OTHER, "a"), lease(OWNER, Tier.OWNER, "b"))}, "is full (2 leases)"),
    ],
)
def test_each_rule_refuses_with_its_own_reason(policy: Policy, changes: dict[str, object], reason: str) -> None:
    decision = admit(policy, OFFER, candidate(**changes))
    assert not decision.admitted
    assert decision.reason.startswith("refused: ") and reason in decision.reason
    assert "\n" not in decision.reason


def test_not_enough_free_capacity_is_refused_for_others() -> None:
    busy = Offer(4, 4096, 8, ("omk-test",), 100, 24, "lab", 0, 0)
    assert "not enough free capacity" in admit(POLICY, busy, candidate()).reason


def test_members_of_trusted_networks_pass_admit_others_false() -> None:
    policy = Policy(trusted_networks=frozenset({"friends"}), admit_others=False)
    decision = admit(policy, OFFER, candidate(FRIEND, consumer_networks=frozenset({"friends"})))
    assert decision.admitted and decision.tier is Tier.TRUSTED


def test_the_owner_passes_quiet_hours_trust_and_the_per_consumer_limit() -> None:
    policy = Policy(owners=frozenset({OWNER}), quiet_hours=(0, 24), min_trust=0.9, max_per_consumer=0)
    decision = admit(policy, OFFER, candidate(OWNER, trust=0.0))
    assert decision.admitted and decision.tier is Tier.OWNER and decision.preempt == ()


def test_the_owner_preempts_the_lowest_tier_lease_when_full() -> None:
    leases = (lease(FRIEND, Tier.TRUSTED, "trusted"), lease(STRANGER, Tier.OTHER, "other"))
    decision = admit(POLICY, OFFER, candidate(OWNER, leases=leases))
    assert decision.admitted and decision.preempt == ("other",)


def test_the_owner_never_preempts_the_owner() -> None:
    leases = (lease(OWNER, Tier.OWNER, "a"), lease(OWNER, Tier.OWNER, "b"))
    decision = admit(POLICY, OFFER, candidate(OWNER, leases=leases))
    assert not decision.admitted and "even after preempting" in decision.reason


def test_the_owner_preempts_for_memory() -> None:
    busy = Offer(4, 4096, 8, ("omk-test",), 100, 24, "lab", 3, 512)
    leases = (lease(STRANGER, Tier.OTHER, "big", memory=3584),)
    decision = admit(Policy(owners=frozenset({OWNER}), max_total=4), busy,
                     candidate(OWNER, want=Want(1, 2048), leases=leases))  # fmt: skip
    assert decision.admitted and decision.preempt == ("big",)


@pytest.mark.parametrize(
    ("hours", "hour", "quiet"),
    [((22, 6), 23, True), ((22, 6), 5, True), ((22, 6), 6, False), ((1, 3), 2, True), ((1, 3), 3, False),
     (None, 2, False)],
)  # fmt: skip
def test_quiet_hours_wrap_around_midnight(hours: tuple[int, int] | None, hour: int, quiet: bool) -> None:
    assert in_quiet_hours(hours, hour) is quiet


def test_the_providers_clock_is_a_named_time_zone_or_the_hosts() -> None:
    assert parse_settings({}).timezone is None
    assert parse_settings({"timezone": "UTC"}).timezone == zoneinfo.ZoneInfo("UTC")
    for bad in ("Mars/Olympus", 5):
        with pytest.raises(SettingsError, match="timezone"):
            parse_settings({"timezone": bad})


def test_offers_round_trip_and_sort_cheapest_first() -> None:
    assert Offer.decode(json.loads(json.dumps(OFFER.encode()))) == OFFER
    assert len(json.dumps({"offer": OFFER.encode()}, separators=(",", ":"))) < 512  # fits a peer record
    cheap = Offer(1, 512, 1, ("omk-test",), 50, 1, "x", 1, 512)
    seen = [SeenOffer(FRIEND, OFFER), SeenOffer(STRANGER, cheap)]
    assert [s.provider for s in matching(seen, Want(image="omk-test"))] == [STRANGER, FRIEND]
    assert [s.provider for s in matching(seen, Want(vcpus=2))] == [FRIEND]
    assert matching(seen, Want(max_price=10)) == []


def test_free_capacity_counts_the_leases_held() -> None:
    full = Offer(4, 512, 8, ("omk-test",), 100, 24, "lab", 4, 512)
    assert remaining(full, []) == full
    left = remaining(full, [(1, 128)] * 3)
    assert (left.free_vcpus, left.free_memory_mib) == (1, 128)
    assert Want(1, 128).why_not(left) is None  # the last 128 MiB still fit
    assert remaining(full, [(8, 1024)]).free_memory_mib == 0


@pytest.mark.parametrize(
    "bad",
    [None, {"v": 2}, {**OFFER.encode(), "img": "omk-test"}, {**OFFER.encode(), "img": ["../etc"]},
     {**OFFER.encode(), "price": -1}, {**OFFER.encode(), "cpu": True}, {**OFFER.encode(), "region": 5}],
)  # fmt: skip
def test_malformed_offers_are_refused(bad: object) -> None:
    with pytest.raises(OfferError):
        Offer.decode(bad)


def test_messages_round_trip() -> None:
    request = Request("ab" * 16, 1, 128, 1, "omk-test", 3600, "build", "ssh-ed25519 AAAA", 100)
    assert decode(encode(request)) == request
    assert decode(encode(Heartbeat("ab" * 16))) == Heartbeat("ab" * 16)


@pytest.mark.parametrize(
    "data",
    [b"\xff", b"[]", b'{"type": "nope", "rental": "abababababababab"}', b'{"type": "heartbeat", "rental": "XY"}',
     b'{"type": "refused", "rental": "abababababababab", "reason": 5}',
     b'{"type": "ready", "rental": "abababababababab", "vm_id": "v", "address": "a", "lease_ms": -1}',
     b" " * (MAX_MESSAGE_BYTES + 1), b"[" * 5000],
)  # fmt: skip
def test_malformed_messages_raise_only_message_error(data: bytes) -> None:
    with pytest.raises(MessageError):
        decode(data)


@given(st.binary(max_size=300))
def test_the_decoder_raises_nothing_but_message_error(data: bytes) -> None:
    with contextlib.suppress(MessageError):
        decode(data)


@given(st.integers(0, 10**6), st.integers(1, 10**5))
def test_escrow_pays_for_at_least_the_lease(lease_s: int, price: int) -> None:
    total = billing.escrow_for(lease_s, price)
    assert billing.paid_ms(total, price, 10**12) >= lease_s * 1000
    assert billing.billable_ms(0.0, lease_s + 100.0, billing.paid_ms(total, price, 10**12)) <= total * 3600000 // price
