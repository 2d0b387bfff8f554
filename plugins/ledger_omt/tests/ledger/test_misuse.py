"""How a witness judges misuse evidence: guilty only for valid evidence over the rule's threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omerta_ledger_omt.ledger.errors import LedgerError
from omerta_ledger_omt.ledger.misuse import MAX_SAMPLES, judge, load_evidence

SESSION, CONSUMER = "ab" * 32, "consumer-id"
SINCE, NOW = 1_000_000, 2_000_000


def evidence(points: list[tuple[int, int]], **changes: Any) -> dict[str, Any]:
    found = {"version": 1, "session_id": SESSION, "consumer": CONSUMER, "rule": "vpn_bypass"}
    return found | {"samples": [{"time_ms": t, "count": c} for t, c in points]} | changes


def test_enough_events_within_the_window_are_misuse_and_fewer_are_not() -> None:
    assert judge(evidence([(SINCE + 1000, 600), (SINCE + 2000, 400)]), SESSION, CONSUMER, SINCE, NOW).guilty
    acquitted = judge(evidence([(SINCE + 1000, 600), (SINCE + 2000, 399)]), SESSION, CONSUMER, SINCE, NOW)
    assert not acquitted.guilty and acquitted.peak == 999
    host = evidence([(SINCE + 1000, 100)], rule="host_probe")
    assert judge(host, SESSION, CONSUMER, SINCE, NOW).guilty


def test_the_window_slides_events_a_minute_apart_do_not_add_up() -> None:
    spread = evidence([(SINCE + 1000, 600), (SINCE + 61_000, 600)])
    assert not judge(spread, SESSION, CONSUMER, SINCE, NOW).guilty
    unsorted = evidence([(SINCE + 59_000, 500), (SINCE + 1000, 500), (SINCE + 500_000, 1)])
    assert judge(unsorted, SESSION, CONSUMER, SINCE, NOW).guilty


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        evidence([(SINCE + 1000, 5000)], version=2),
        evidence([(SINCE + 1000, 5000)], session_id="cd" * 32),
        evidence([(SINCE + 1000, 5000)], consumer="someone-else"),
        evidence([(SINCE + 1000, 5000)], rule="mining"),
        evidence([]),
        evidence([(SINCE + 1000, 1)] * (MAX_SAMPLES + 1)),
        evidence([(SINCE - 60_000, 5000)]),  # before the VM
        evidence([(NOW + 60_000, 5000)]),  # from the future
        evidence([(SINCE + 1000, -5000)]),
        evidence([], samples=[{"time_ms": "soon", "count": 5000}]),
        evidence([], samples=["5000 packets"]),
    ],
)
def test_invalid_evidence_is_an_acquittal_with_a_reason(bad: Any) -> None:
    verdict = judge(bad, SESSION, CONSUMER, SINCE, NOW)
    assert not verdict.guilty and verdict.reason


def test_evidence_files_must_hold_a_json_object(tmp_path: Path) -> None:
    good, broken, listed = tmp_path / "good.json", tmp_path / "broken.json", tmp_path / "list.json"
    good.write_text('{"version": 1}')
    broken.write_text("{")
    listed.write_text("[1]")
    assert load_evidence(good) == {"version": 1}
    for path in (broken, listed, tmp_path / "missing.json"):
        with pytest.raises(LedgerError, match=str(path.name)):
            load_evidence(path)
