"""The rental journals: the consumer's rentals with an open lock and the provider's pending claims survive a restart;
a damaged file is moved aside."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
from omerta_rental.journal import ClaimEntry, ClaimJournal, Entry, Journal, JournalError
from omerta_rental.messages import Request

REQUEST = Request("ab" * 16, 1, 128, 1, "omk-test", 3600, "build", "ssh-ed25519 AAAA", 100)


def test_entries_survive_a_restart_and_leave_when_settled(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    entry = Entry("provider", "cd" * 32, 100, asdict(REQUEST), ready_wall=10.0, last_heard_wall=25.0, paid_ms=5)
    journal.put(REQUEST.rental, entry, 30.0)
    assert (tmp_path / "rentals.json").stat().st_mode & 0o777 == 0o600
    again = Journal(tmp_path).load()
    assert again == {REQUEST.rental: entry}
    assert again[REQUEST.rental].as_request() == REQUEST
    journal.drop(REQUEST.rental, 40.0)
    assert Journal(tmp_path).load() == {}


def test_a_damaged_journal_is_moved_aside_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "rentals.json").write_text("{not json")
    with pytest.raises(JournalError, match=r"moved to rentals\.broken"):
        Journal(tmp_path).load()
    assert (tmp_path / "rentals.broken").exists()
    assert Journal(tmp_path).load() == {}


def test_pending_claims_survive_a_restart_beside_the_rentals(tmp_path: Path) -> None:
    claims = ClaimJournal(tmp_path)
    entry = ClaimEntry("cd" * 32, "consumer", 1_000.0, attempts=2, image="omk-test", outcome="lost heartbeats")
    claims.put(REQUEST.rental, entry, 30.0)
    assert (tmp_path / "claims.json").stat().st_mode & 0o777 == 0o600
    assert Journal(tmp_path).load() == {}  # a file of its own
    assert ClaimJournal(tmp_path).load() == {REQUEST.rental: entry}
    claims.drop(REQUEST.rental, 40.0)
    assert ClaimJournal(tmp_path).load() == {}


def test_a_damaged_claim_journal_is_moved_aside_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "claims.json").write_text('{"r": {"session": "s"}}')  # a field missing
    with pytest.raises(JournalError, match=r"claims\.json unreadable .*moved to claims\.broken"):
        ClaimJournal(tmp_path).load()
    assert ClaimJournal(tmp_path).load() == {}
