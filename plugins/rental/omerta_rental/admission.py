"""Admission: the provider's rules for whom it rents to, as pure functions.

Tiers, highest first: the **owner** (the provider's own identities), members of **trusted
networks**, then **others**. A request is refused with one line when the consumer is blocklisted,
gives no activity description, is below the minimum trust, asks during quiet hours, exceeds the
per-consumer or total limits, or asks for what the offer lacks. The owner passes the trust,
quiet-hour and per-consumer rules, and when the provider is full may **preempt** the lowest-tier
lease. Third parties add rules through the ``omerta_rental_admission`` hook (:mod:`.hookspecs`),
consulted after these. Pure; touches nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from omerta_core.interfaces.common import PeerId
from omerta_rental.offers import Offer, Want

#: Shortest activity description accepted ("what I will run").
MIN_ACTIVITY_CHARS = 3


class Tier(enum.IntEnum):
    OTHER = 0
    TRUSTED = 1
    OWNER = 2


@dataclass(frozen=True)
class Policy:
    """The provider's admission settings (``[plugins.rental]``)."""

    owners: frozenset[str] = frozenset()
    trusted_networks: frozenset[str] = frozenset()
    blocklist: frozenset[str] = frozenset()
    admit_others: bool = True
    max_per_consumer: int = 1
    max_total: int = 4
    min_trust: float = 0.0
    #: Local hours [start, end) during which only the owner is admitted; ``None``: no quiet hours.
    quiet_hours: tuple[int, int] | None = None


@dataclass(frozen=True)
class Lease:
    """A lease the provider holds, as admission sees it."""

    rental: str
    consumer: str
    tier: Tier
    vcpus: int
    memory_mib: int


@dataclass(frozen=True)
class Candidate:
    """A request as admission sees it: who asks, what for, and what the provider knows of them."""

    consumer: PeerId
    want: Want
    activity: str
    consumer_networks: frozenset[str] = frozenset()
    trust: float = 0.0
    local_hour: int = 12
    leases: Sequence[Lease] = field(default_factory=tuple)


@dataclass(frozen=True)
class Decision:
    admitted: bool
    tier: Tier
    reason: str = ""
    #: Rental ids of leases to end first (owner preemption) when admitted.
    preempt: tuple[str, ...] = ()


def tier_of(policy: Policy, consumer: str, networks: frozenset[str]) -> Tier:
    if consumer in policy.owners:
        return Tier.OWNER
    if networks & policy.trusted_networks:
        return Tier.TRUSTED
    return Tier.OTHER


def in_quiet_hours(hours: tuple[int, int] | None, hour: int) -> bool:
    if hours is None:
        return False
    start, end = hours
    return start <= hour < end if start <= end else hour >= start or hour < end


def admit(policy: Policy, offer: Offer, candidate: Candidate) -> Decision:
    """Apply the rules in order; the first that fails gives the refusal's reason."""
    consumer = str(candidate.consumer)
    tier = tier_of(policy, consumer, candidate.consumer_networks)

    def refuse(reason: str) -> Decision:
        return Decision(False, tier, reason)

    if consumer in policy.blocklist:
        return refuse("refused: this provider does not rent to you (blocklisted)")
    if len(candidate.activity.strip()) < MIN_ACTIVITY_CHARS:
        return refuse("refused: describe what you will run (--activity)")
    unfit = candidate.want.why_not(_capacity(offer))
    if unfit is not None:
        return refuse(f"refused: this provider {unfit}")
    if tier is not Tier.OWNER:
        if tier is Tier.OTHER and not policy.admit_others:
            return refuse("refused: this provider rents only to its owner and trusted networks")
        if in_quiet_hours(policy.quiet_hours, candidate.local_hour):
            start, end = policy.quiet_hours or (0, 0)
            return refuse(f"refused: quiet hours ({start:02d}:00-{end:02d}:00 provider time), owner only")
        if candidate.trust < policy.min_trust:
            return refuse(
                f"refused: your trust here is {candidate.trust:.3f}, below the minimum {policy.min_trust:.3f}"
            )
        mine = sum(1 for lease in candidate.leases if lease.consumer == consumer)
        if mine >= policy.max_per_consumer:
            return refuse(f"refused: you already hold {mine} lease(s) here, the limit per consumer")
    need_cpu, need_mem = candidate.want.vcpus or 1, candidate.want.memory_mib or 0
    full = len(candidate.leases) >= policy.max_total
    short = need_cpu > offer.free_vcpus or need_mem > offer.free_memory_mib
    if not (full or short):
        return Decision(True, tier)
    if tier is not Tier.OWNER:
        if full:
            return refuse(f"refused: this provider is full ({policy.max_total} leases)")
        return refuse("refused: this provider has not enough free capacity now")
    return _preempt_for(policy, offer, candidate, need_cpu, need_mem)


def _capacity(offer: Offer) -> Offer:
    """The offer as capacity before other leases (admission checks free capacity separately)."""
    return Offer(offer.vcpus, offer.memory_mib, offer.disk_gib, offer.images, offer.price_per_hour,
                 offer.max_lease_h, offer.region, offer.vcpus, offer.memory_mib)  # fmt: skip


def _preempt_for(policy: Policy, offer: Offer, candidate: Candidate, need_cpu: int, need_mem: int) -> Decision:
    """The owner's request: end the fewest lowest-tier leases that make room, youngest tier first."""
    free_cpu, free_mem, count = offer.free_vcpus, offer.free_memory_mib, len(candidate.leases)
    chosen: list[str] = []
    for lease in sorted(candidate.leases, key=lambda lease: lease.tier):
        if lease.tier is Tier.OWNER:
            break
        if free_cpu >= need_cpu and free_mem >= need_mem and count < policy.max_total:
            break
        chosen.append(lease.rental)
        free_cpu, free_mem, count = free_cpu + lease.vcpus, free_mem + lease.memory_mib, count - 1
    if free_cpu >= need_cpu and free_mem >= need_mem and count < policy.max_total:
        return Decision(True, Tier.OWNER, preempt=tuple(chosen))
    return Decision(False, Tier.OWNER, "refused: not enough capacity even after preempting every other lease")
