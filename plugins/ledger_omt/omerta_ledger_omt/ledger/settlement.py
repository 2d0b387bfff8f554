"""Settlement arithmetic: split an escrow into provider payment, burn and refund by the provider's trust.

``total = min(escrow, duration * hourly_rate)``; the provider's share of the total
is ``K·T / (1 + K·T)`` (``T`` the provider's trust in [0, 1], ``K`` = K_PAYMENT);
the rest of the total is burned; the consumer gets ``escrow - total`` back. All
inputs are integers (trust and K in thousandths) and the division rounds down
toward the burn, so every witness computes identical numbers. The invariants
``payment + burn + refund = escrow`` and ``refund ≥ 0`` are checked on every
split, including splits read off other peers' chains. Touches nothing.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from omerta_ledger_omt.ledger.errors import ChainRuleError

#: K_PAYMENT in thousandths: with T = 1 the provider receives 9/10 of the total, with T = 0 nothing.
K_PAYMENT_MILLI = 9000

MILLI = 1000
MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class Split:
    escrow_total: int
    total: int
    provider_payment: int
    burn: int
    refund: int


def split_settlement(
    escrow_total: int,
    duration_ms: int,
    hourly_rate: int,
    provider_trust_milli: int,
    k_payment_milli: int = K_PAYMENT_MILLI,
) -> Split:
    """Split ``escrow_total`` for a session of ``duration_ms`` at ``hourly_rate`` units per hour."""
    if min(escrow_total, duration_ms, hourly_rate, provider_trust_milli, k_payment_milli) < 0:
        raise ChainRuleError("settlement inputs must be non-negative")
    if provider_trust_milli > MILLI:
        raise ChainRuleError(f"provider trust {provider_trust_milli}/1000 is above 1")
    total = min(escrow_total, duration_ms * hourly_rate // MS_PER_HOUR)
    weight = k_payment_milli * provider_trust_milli
    payment = total * weight // (MILLI * MILLI + weight)
    split = Split(escrow_total, total, payment, total - payment, escrow_total - total)
    check_invariants(split.escrow_total, split.provider_payment, split.burn, split.refund)
    return split


def check_invariants(escrow_total: int, provider_payment: int, burn: int, refund: int) -> None:
    """Raise unless the parts are non-negative and add up to the escrow."""
    if min(provider_payment, burn, refund) < 0:
        raise ChainRuleError("settlement has a negative part")
    if provider_payment + burn + refund != escrow_total:
        raise ChainRuleError(
            f"settlement parts {provider_payment}+{burn}+{refund} do not add up to the escrow {escrow_total}"
        )


def check_settlement_body(body: Mapping[str, Any]) -> Split:
    """Recompute a settlement statement's split from its inputs and raise if its outputs differ."""
    expected = split_settlement(
        body["escrow_total"],
        body["duration_ms"],
        body["hourly_rate"],
        body["provider_trust_milli"],
        body["k_payment_milli"],
    )
    claimed = (body["provider_payment"], body["burn"], body["refund"])
    if claimed != (expected.provider_payment, expected.burn, expected.refund):
        raise ChainRuleError(
            f"settlement outputs {claimed} differ from the recomputed "
            f"{(expected.provider_payment, expected.burn, expected.refund)}"
        )
    return expected


def agreed_trust_milli(reports: Iterable[int]) -> int:
    """The provider trust witnesses settle with: the lower median of their local views (in thousandths).

    Trust is local to each observer, so witnesses differ; the median of a threshold
    of reports cannot be moved by a minority of dishonest witnesses.
    """
    values = sorted(reports)
    if not values:
        raise ChainRuleError("no trust reports to settle with")
    return int(statistics.median_low(values))
