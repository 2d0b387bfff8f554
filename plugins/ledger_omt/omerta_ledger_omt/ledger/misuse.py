"""Judging a misuse accusation (spec 01's ``judge_misuse``): the evidence a provider sends and the rule each
witness applies to it.

All of a rented VM's traffic must go through its consumer's VPN, so what a provider can show of
misuse is what its own host counted from outside the VM: packets the VM sent around the VPN (its
firewall drops them) and connection attempts from the VM to the provider's host or LAN. The evidence
is a map (it travels inside ``MISUSE_ACCUSATION``, and its hash is what the witnesses' votes and
verdict blocks sign)::

    {"version": 1, "session_id": <hex>, "consumer": <peer id>, "rule": "vpn_bypass" | "host_probe",
     "samples": [{"time_ms": <int>, "count": <int>}, ...]}

A witness finds the consumer guilty when the evidence is well formed, names this session and its
consumer, every sample lies within the session (from the VM's allocation to now, give or take
``CLOCK_SKEW_MS``), and some window of the rule's length holds at least the rule's count. Anything
else is an acquittal, and an acquittal is written as a failed verification of the accuser: a false
or malformed accusation costs the provider trust. Pure: no I/O, bounded work per evidence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omerta_ledger_omt.ledger.errors import LedgerError

EVIDENCE_VERSION = 1
#: Most samples one piece of evidence may carry (a minute per sample covers two days).
MAX_SAMPLES = 4096
#: Clock difference tolerated between the provider's samples and the witness's view of the session.
CLOCK_SKEW_MS = 30_000


@dataclass(frozen=True)
class Rule:
    """Misuse is at least ``count`` events within ``window_ms``."""

    what: str
    count: int
    window_ms: int


#: The acceptable-use rules witnesses enforce. Thresholds are far above what a misconfigured guest
#: does by accident (a few stray DHCP or mDNS packets), so only sustained attempts convict.
RULES: dict[str, Rule] = {
    "vpn_bypass": Rule(
        "packets the VM sent around its consumer's VPN (the provider's firewall drops them)", 1000, 60_000
    ),
    "host_probe": Rule("connection attempts from the VM to the provider's host or LAN", 100, 60_000),
}


@dataclass(frozen=True)
class MisuseVerdict:
    guilty: bool
    reason: str
    peak: int = 0


def judge(evidence: Any, session: str, consumer: str, since_ms: int, now_ms: int) -> MisuseVerdict:
    """A witness's verdict on ``evidence`` against the consumer of ``session`` (allocated at ``since_ms``)."""
    if not isinstance(evidence, dict) or evidence.get("version") != EVIDENCE_VERSION:
        return MisuseVerdict(False, f"not misuse evidence of version {EVIDENCE_VERSION}")
    if evidence.get("session_id") != session or evidence.get("consumer") != consumer:
        return MisuseVerdict(False, "the evidence names another session or consumer")
    rule = RULES.get(evidence.get("rule"))  # type: ignore[arg-type]
    if rule is None:
        return MisuseVerdict(False, f"unknown rule {str(evidence.get('rule'))[:40]!r}; known: {', '.join(RULES)}")
    samples = evidence.get("samples")
    if not isinstance(samples, list) or not 0 < len(samples) <= MAX_SAMPLES:
        return MisuseVerdict(False, f"samples must be a list of 1 to {MAX_SAMPLES}")
    points = []
    for sample in samples:
        time_ms = sample.get("time_ms") if isinstance(sample, dict) else None
        count = sample.get("count") if isinstance(sample, dict) else None
        if type(time_ms) is not int or type(count) is not int or count < 0:
            return MisuseVerdict(False, "a sample is not {time_ms: int, count: int >= 0}")
        if not since_ms - CLOCK_SKEW_MS <= time_ms <= now_ms + CLOCK_SKEW_MS:
            return MisuseVerdict(False, "a sample lies outside the session")
        points.append((time_ms, count))
    peak = _peak(sorted(points), rule.window_ms)
    found = f"{rule.what}: at most {peak} within {rule.window_ms // 1000} s, limit {rule.count}"
    return MisuseVerdict(peak >= rule.count, found, peak)


def _peak(points: list[tuple[int, int]], window_ms: int) -> int:
    """The largest sum of counts within any window of ``window_ms`` (sliding over sorted samples)."""
    best = total = start = 0
    for time_ms, count in points:
        total += count
        while points[start][0] <= time_ms - window_ms:
            total -= points[start][1]
            start += 1
        best = max(best, total)
    return best


def load_evidence(path: Path) -> dict[str, Any]:
    """Evidence from a JSON file (``omerta ledger accuse --evidence FILE``); a clear error if it is not one."""
    try:
        evidence = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerError(f"cannot read evidence from {path}: {exc}") from exc
    if not isinstance(evidence, dict):
        raise LedgerError(f"{path} holds no JSON object; see docs/ledger.md (misuse trial) for the format")
    return evidence
