"""The rental journals: what a crash must not lose, kept on disk and taken up again at the next start.

Two JSON files under ``<state>/plugins/rental/`` (0600), each rewritten atomically on every change:

* ``rentals.json`` (:class:`Journal`), the consumer's rentals with an open escrow lock: written when a rental
  locks escrow, becomes ready, hears a heartbeat (at most every :data:`WRITE_EVERY_S`) or settles. At the next
  start every entry is resumed: released, and settled by the billing rule up to the last heartbeat recorded, or
  by the provider's lower figure.
* ``claims.json`` (:class:`ClaimJournal`), the provider's pending claims: an ended, attested lease whose
  payment it claims (spec 02's provider path) unless the consumer settles first. Written when the lease ends
  and after every claim attempt; an entry leaves once the claim settled (or found the session paid) or gave up.
  At the next start each is claimed when due (its wall-clock time), never twice: a session already paid is
  found paid in the ledger's own store without asking a witness.

Touches only those files.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from omerta_rental.messages import Request

FILE = "rentals.json"
CLAIMS_FILE = "claims.json"
#: Heartbeats move the recorded "last heard" at most this often (the most a crash can under-bill).
WRITE_EVERY_S = 5.0


@dataclass
class Entry:
    """A consumer's rental whose escrow is locked."""

    provider: str
    session: str
    price_per_hour: int
    request: dict[str, Any]
    ready_wall: float | None = None
    last_heard_wall: float | None = None
    paid_ms: int = 0

    def as_request(self) -> Request:
        return Request(**self.request)


@dataclass
class ClaimEntry:
    """A provider's pending claim of lock ``session`` (``consumer`` never settled), due at ``due_wall``; ``image``
    and ``outcome`` (how the lease ended) are for ``omerta vm show`` after a restart."""

    session: str
    consumer: str
    due_wall: float
    attempts: int = 0
    image: str = ""
    outcome: str = ""


#: What a journal holds (each a dataclass written with :func:`dataclasses.asdict`).
T = TypeVar("T", "Entry", "ClaimEntry")


class JsonJournal(Generic[T]):
    """Entries of one kind by rental id, in one JSON file rewritten atomically (write, fsync, rename)."""

    def __init__(self, path: Path, kind: type[T]) -> None:
        self.path = path
        self.kind: type[T] = kind
        self.entries: dict[str, T] = {}
        self.written_at = 0.0

    def load(self) -> dict[str, T]:
        try:
            raw = json.loads(self.path.read_text())
            self.entries = {rental: self.kind(**fields) for rental, fields in raw.items()}
        except FileNotFoundError:
            self.entries = {}
        except (ValueError, TypeError, AttributeError) as exc:
            broken = self.path.with_suffix(".broken")
            self.path.replace(broken)
            raise JournalError(f"rental journal {self.path.name} unreadable ({exc}); moved to {broken.name}") from exc
        return dict(self.entries)

    def put(self, rental: str, entry: T, wall: float) -> None:
        self.entries[rental] = entry
        self.save(wall)

    def drop(self, rental: str, wall: float) -> None:
        if self.entries.pop(rental, None) is not None:
            self.save(wall)

    def save(self, wall: float) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({rental: asdict(entry) for rental, entry in self.entries.items()}, out)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)
        self.written_at = wall


class Journal(JsonJournal[Entry]):
    """The consumer's rentals with an open escrow lock (``rentals.json``)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory / FILE, Entry)


class ClaimJournal(JsonJournal[ClaimEntry]):
    """The provider's pending claims (``claims.json``)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory / CLAIMS_FILE, ClaimEntry)


class JournalError(ValueError):
    """A journal file is damaged (it is moved aside, and the node starts without it)."""
