"""The consumer's journal: rentals with an open escrow lock, kept on disk so a crash does not lose them.

One JSON file, ``<state>/plugins/rental/rentals.json`` (0600), rewritten atomically whenever a rental
locks escrow, becomes ready, hears a heartbeat (at most every :data:`WRITE_EVERY_S`) or settles. At the
next start every entry is resumed: released, and settled by the billing rule up to the last heartbeat
recorded, or by the provider's lower figure. Touches only that file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omerta_rental.messages import Request

FILE = "rentals.json"
#: Heartbeats move the recorded "last heard" at most this often (the most a crash can under-bill).
WRITE_EVERY_S = 5.0


@dataclass
class Entry:
    provider: str
    session: str
    price_per_hour: int
    request: dict[str, Any]
    ready_wall: float | None = None
    last_heard_wall: float | None = None
    paid_ms: int = 0

    def as_request(self) -> Request:
        return Request(**self.request)


class Journal:
    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE
        self.entries: dict[str, Entry] = {}
        self.written_at = 0.0

    def load(self) -> dict[str, Entry]:
        try:
            raw = json.loads(self.path.read_text())
            self.entries = {rental: Entry(**fields) for rental, fields in raw.items()}
        except FileNotFoundError:
            self.entries = {}
        except (ValueError, TypeError) as exc:
            broken = self.path.with_suffix(".broken")
            self.path.replace(broken)
            raise JournalError(f"rental journal unreadable ({exc}); moved to {broken.name}") from exc
        return dict(self.entries)

    def put(self, rental: str, entry: Entry, wall: float) -> None:
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


class JournalError(ValueError):
    """The journal file is damaged (it is moved aside, and the node starts without it)."""
