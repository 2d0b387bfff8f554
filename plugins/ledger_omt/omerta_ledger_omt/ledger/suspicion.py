"""Transaction 05's pure part: how suspicious an identity is, and when it is due for a health check.

    suspicion(s) = min(SUSPICION_CAP, sum over events e of weight_e * credibility_e * exp(-age_e / TAU_SUSPICION_DAYS))
                   * CLEAN_AUDIT_RELIEF ** (clean audits since the last event)
    interval(s)  = BASE_INTERVAL_DAYS / (1 + suspicion(s))
    due(s)       = now - last_check(s) >= interval(s)        (never checked: due)

Why this form:

* The original fixes only ``interval = BASE_INTERVAL / (1 + suspicion)``; suspicion is left open.
  It is a sum of evidence because independent signs of trouble should add up, weighted by how
  provable each is: a discrepancy with a proof anyone verifies counts fully (``PROVEN_WEIGHT``), a
  failed verification by a witness half (``FAILED_VERIFICATION_WEIGHT``), an accusation without proof a
  quarter (``UNPROVEN_ACCUSATION_WEIGHT``), and the last two only as far as the observer trusts their
  author (``credibility``), so a Sybil cannot make an honest peer look suspicious.
* It fades (``TAU_SUSPICION_DAYS``) so that old trouble stops driving checks, and each clean audit
  since the last event halves it (``CLEAN_AUDIT_RELIEF``): an identity earns its way back by being
  checked, not only by waiting.
* It is capped (``SUSPICION_CAP``) so the interval never drops below ``BASE_INTERVAL / (1 + cap)``:
  a flood of accusations cannot make a peer audited continuously (audits cost the cabal work).
* Everything is a pure function of signed, timestamped facts and the check time, so any peer can
  recompute the trigger and a cabal can refuse a check that is not due (the ``SHOULD_CHECK`` proof).

Touches nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

MS_PER_DAY = 86_400_000

#: Days between checks of an identity nobody suspects.
BASE_INTERVAL_DAYS = 30.0
#: Highest suspicion: with it a peer is checked every 30 / 11 ≈ 2.7 days, never more often.
SUSPICION_CAP = 10.0
#: Days over which an event's weight fades by 1/e.
TAU_SUSPICION_DAYS = 90.0
#: Factor per clean audit since the last event.
CLEAN_AUDIT_RELIEF = 0.5
#: Weight of a discrepancy whose proof anyone verifies offline.
PROVEN_WEIGHT = 1.0
#: Weight of a failed verification by a witness (times the witness's credibility).
FAILED_VERIFICATION_WEIGHT = 0.5
#: Weight of an accusation without proof (times the accuser's credibility).
UNPROVEN_ACCUSATION_WEIGHT = 0.25

WEIGHTS = {
    "proven": PROVEN_WEIGHT,
    "failed_verification": FAILED_VERIFICATION_WEIGHT,
    "unproven_accusation": UNPROVEN_ACCUSATION_WEIGHT,
}


@dataclass(frozen=True)
class SuspicionEvent:
    """A sign of trouble about a subject: what it is, when, and how credible its author is (1 for a proof)."""

    kind: str  # a key of WEIGHTS
    time_ms: int
    credibility: float = 1.0


def suspicion(events: Iterable[SuspicionEvent], clean_audits_ms: Iterable[int], now_ms: int) -> float:
    """The subject's suspicion at ``now_ms`` from its trouble ``events`` and the times of its clean audits."""
    total, last_event = 0.0, None
    for event in events:
        age = max(0, now_ms - event.time_ms) / MS_PER_DAY
        total += WEIGHTS[event.kind] * min(1.0, max(0.0, event.credibility)) * math.exp(-age / TAU_SUSPICION_DAYS)
        last_event = event.time_ms if last_event is None else max(last_event, event.time_ms)
    relieved = sum(1 for t in clean_audits_ms if last_event is None or t > last_event)
    return min(SUSPICION_CAP, total) * CLEAN_AUDIT_RELIEF**relieved


#: BASE_INTERVAL_DAYS in milliseconds (a node may configure another base: ``ledger_health_interval_s``).
BASE_INTERVAL_MS = int(BASE_INTERVAL_DAYS * MS_PER_DAY)


def interval_ms(level: float, base_ms: int = BASE_INTERVAL_MS) -> int:
    """Milliseconds between health checks at suspicion ``level`` (``base_ms`` for an unsuspected peer)."""
    return int(base_ms / (1.0 + min(SUSPICION_CAP, max(0.0, level))))


@dataclass(frozen=True)
class Due:
    """Whether a check is due, and the numbers any peer recomputes to agree (the SHOULD_CHECK inputs)."""

    due: bool
    suspicion: float
    interval_ms: int
    since_last_check_ms: int | None

    def reason(self) -> str:
        if self.since_last_check_ms is None:
            return "never checked"
        state = "due" if self.due else "not due"
        return (
            f"{state}: last check {_span(self.since_last_check_ms)} ago, interval "
            f"{_span(self.interval_ms)} at suspicion {self.suspicion:.3f}"
        )


def _span(ms: int) -> str:
    """A duration in days, or in seconds below a day (a test's or a lab's short interval)."""
    return f"{ms / MS_PER_DAY:.1f} d" if ms >= MS_PER_DAY else f"{ms / 1000:.1f} s"


def due(last_check_ms: int | None, level: float, now_ms: int, base_ms: int = BASE_INTERVAL_MS) -> Due:
    """``SHOULD_CHECK``: the time since the last check is at least the interval the suspicion gives."""
    every = interval_ms(level, base_ms)
    if last_check_ms is None:
        return Due(True, level, every, None)
    since = max(0, now_ms - last_check_ms)
    return Due(since >= every, level, every, since)
