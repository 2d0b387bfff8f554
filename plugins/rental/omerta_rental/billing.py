"""Who pays for what: the one billing rule every path of a lease uses.

The consumer pays for the time its VM was ready, pro rata to the millisecond, and never more
than the escrow paid for:

    billable_ms = clamp(end - ready, 0, paid_ms)      paid_ms = floor(total * 3_600_000 / price_per_hour)

* ``ready`` is when the provider sent ``ready`` (boot time is the provider's cost);
* ``end`` is when the provider saw the release, when the owner preempted, when the paid time ran
  out (expiry), or, when heartbeats were lost, **the last heartbeat heard** from the other side:
  the silent grace before the lease is declared lost is billed to nobody;
* the interval in progress at the end is paid pro rata in every path: there is no rounding up to
  a whole hour (or minute) for the provider, and no rounding down for the consumer;
* a rental that never reached ready (refused, failed to boot, provider vanished) bills 0 and the
  whole escrow is refunded.

When the witnesses attested the session (spec 01, the provider ends it at the lease's end), the
settled duration is **their attested duration**: spec 02's witnesses sign no other figure, and the
attestation measures the same interval (VM announced at ready → lease end) on the provider's clock.
Without an attestation (the provider died, or the consumer gave up first) the rule above is settled.
Pure; touches nothing.
"""

from __future__ import annotations

MS_PER_HOUR = 3_600_000


def escrow_for(lease_s: int, price_per_hour: int) -> int:
    """What the consumer locks for ``lease_s`` seconds at ``price_per_hour`` (rounded up to a whole unit)."""
    return -(-lease_s * price_per_hour // 3600)


def paid_ms(total: int, price_per_hour: int, cap_ms: int) -> int:
    """How long ``total`` pays for at ``price_per_hour`` (a free offer runs to ``cap_ms``)."""
    if price_per_hour <= 0:
        return cap_ms
    return min(cap_ms, total * MS_PER_HOUR // price_per_hour)


def settled_ms(rule_ms: int, attested_ms: int | None) -> int:
    """What settles: the witnesses' attested duration when there is one, else the rule's figure."""
    return rule_ms if attested_ms is None else attested_ms


def billable_ms(ready_at: float | None, end_at: float, paid: int) -> int:
    """The rule above, for times in seconds on one clock; 0 when the VM never became ready."""
    if ready_at is None:
        return 0
    return max(0, min(paid, int((end_at - ready_at) * 1000)))
