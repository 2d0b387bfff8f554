"""The peer cache: members' signed records in SQLite, so a restarted node rejoins without a bootstrap.

One table of records per (network, peer) and one of this node's own last
version per network (versions must keep growing across restarts). Records are
verified again when loaded. Touches only ``peers.sqlite`` in the plugin's state directory.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgpack

from omerta_discovery_gossip.errors import RecordError
from omerta_discovery_gossip.peer_record import PeerRecord, record_from_wire

FILE_NAME = "peers.sqlite"
#: Records kept per network: enough to find a live member after a long absence, small enough to load at once.
MAX_CACHED_PER_NETWORK = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    network BLOB NOT NULL, peer TEXT NOT NULL, record BLOB NOT NULL, seen_at REAL NOT NULL,
    PRIMARY KEY (network, peer));
CREATE TABLE IF NOT EXISTS own_versions (network BLOB PRIMARY KEY, version INTEGER NOT NULL);
"""


class PeerCache:
    """Cached records of one node, across all its networks."""

    def __init__(self, directory: Path) -> None:
        path = directory / FILE_NAME
        self._db = sqlite3.connect(path)
        try:
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            # only a cache: keep the damaged file for inspection and start an empty one
            self._db.close()
            path.replace(path.with_name(path.name + ".damaged"))
            self._db = sqlite3.connect(path)
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def save(self, network: bytes, records: list[PeerRecord], now: float) -> None:
        with self._db:
            self._db.executemany(
                "INSERT INTO records VALUES (?, ?, ?, ?) ON CONFLICT (network, peer) DO UPDATE SET "
                "record = excluded.record, seen_at = excluded.seen_at",
                [(network, str(r.peer), msgpack.packb(r.to_wire()), now) for r in records],
            )
            self._db.execute(
                "DELETE FROM records WHERE network = ? AND peer NOT IN "
                "(SELECT peer FROM records WHERE network = ? ORDER BY seen_at DESC LIMIT ?)",
                (network, network, MAX_CACHED_PER_NETWORK),
            )

    def load(self, network: bytes) -> list[PeerRecord]:
        """The cached records of ``network`` that still verify (a damaged row is skipped)."""
        records = []
        for (blob,) in self._db.execute("SELECT record FROM records WHERE network = ?", (network,)):
            try:
                record = record_from_wire(msgpack.unpackb(blob))
            except (RecordError, ValueError, TypeError):
                continue
            if record.network == network:
                records.append(record)
        return records

    def forget(self, network: bytes) -> None:
        with self._db:
            self._db.execute("DELETE FROM records WHERE network = ?", (network,))
            self._db.execute("DELETE FROM own_versions WHERE network = ?", (network,))

    def own_version(self, network: bytes) -> int:
        row = self._db.execute("SELECT version FROM own_versions WHERE network = ?", (network,)).fetchone()
        return int(row[0]) if row else 0

    def set_own_version(self, network: bytes, version: int) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO own_versions VALUES (?, ?) ON CONFLICT (network) DO UPDATE SET version = excluded.version",
                (network, version),
            )
