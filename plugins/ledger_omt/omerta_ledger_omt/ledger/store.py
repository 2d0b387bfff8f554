"""The chain store: every verified block this node holds, in one SQLite database (WAL).

Blocks of any identity are kept by (owner, sequence) with gaps allowed (partial
knowledge); a block is checked against its stored neighbours on the way in. A
second, different block at a held (owner, sequence) is not stored: it becomes a
fork proof. Replaying an owner's contiguous prefix gives its :class:`ChainState`;
a block there that breaks a chain rule becomes a chain-rule proof and the state
stops before it. Witnesses also record here the locks they signed and that have
not reached the consumer's chain yet, with the consumer's signed request, so a
second lock on the same funds is refused and, when both requests are bound to one
chain head, proven (a double-lock proof). Proofs carried by accusation blocks are
verified and kept when the accuser's chain is replayed. It reads no clock: times come from
the blocks or from the caller. :meth:`ChainStore.in_memory` keeps the same store in memory
(tests, simulation). Touches only the database file ``chains.sqlite3`` and its WAL files.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from omerta_ledger_omt.ledger.blocks import Block, BlockKind
from omerta_ledger_omt.ledger.chainstate import ChainState, Parameters
from omerta_ledger_omt.ledger.encoding import canonical, decode
from omerta_ledger_omt.ledger.errors import (
    ChainRuleError,
    EncodingError,
    ForkDetectedError,
    InvalidBlockError,
    InvalidProofError,
    LedgerError,
)
from omerta_ledger_omt.ledger.proofs import ChainRuleProof, ForkProof, Proof, proof_from_wire

DATABASE_NAME = "chains.sqlite3"

#: Seconds a writer waits for the lock before giving up (a CLI reader may hold the database briefly).
BUSY_TIMEOUT_S = 10.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    owner TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    prev BLOB NOT NULL,
    kind TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    wire BLOB NOT NULL,
    PRIMARY KEY (owner, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS proofs (
    hash BLOB PRIMARY KEY,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL,
    wire BLOB NOT NULL,
    found_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS proofs_subject ON proofs (subject);
CREATE TABLE IF NOT EXISTS witnessed_topups (
    session_id BLOB NOT NULL,
    new_total INTEGER NOT NULL,
    consumer TEXT NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (session_id, new_total)
);
CREATE TABLE IF NOT EXISTS witnessed_requests (
    session_id BLOB PRIMARY KEY,
    consumer TEXT NOT NULL,
    signed_request BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS served_requests (
    session_id BLOB PRIMARY KEY,
    signed_request BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS witnessed_locks (
    session_id BLOB PRIMARY KEY,
    consumer TEXT NOT NULL,
    amount INTEGER NOT NULL,
    lock_hash BLOB NOT NULL,
    signed_ms INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Head:
    """The last block of an owner's contiguous prefix (sequence 0 to ``seq`` all held)."""

    owner: str
    seq: int
    hash: bytes


AddOutcome = Literal["added", "duplicate"]


class ChainStore:
    """Verified blocks of many identities, fork and chain-rule proofs, and locks this node witnessed."""

    def __init__(self, directory: Path, params: Parameters, *, must_exist: bool = False) -> None:
        self.path = directory / DATABASE_NAME
        self.params = params
        if must_exist and not self.path.exists():
            raise LedgerError(f"no chain store at {self.path} (has a node with the omt plugin run here?)")
        directory.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._open(db)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise LedgerError(f"chain store {self.path} is damaged ({exc}); move it away to start afresh") from exc

    @classmethod
    def in_memory(cls, params: Parameters) -> ChainStore:
        """The same store with nothing on disk: for tests and simulation (one process, no WAL)."""
        store = cls.__new__(cls)
        store.path = Path(":memory:")
        store.params = params
        store._open(sqlite3.connect(":memory:", isolation_level=None))
        return store

    def _open(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._db.executescript(SCHEMA)
        self._states: dict[str, ChainState] = {}
        self._heads: dict[str, Head] = {}

    def close(self) -> None:
        self._db.close()

    # -- blocks ----------------------------------------------------------------------

    def add(self, block: Block) -> AddOutcome:
        """Store a block already verified by :meth:`Block.from_wire` (or built here).

        Raises :class:`ForkDetectedError` (proof stored) for a second block at a held
        (owner, seq), :class:`InvalidBlockError` when it does not link to held neighbours.
        """
        held = self._row(block.owner, block.seq)
        if held is not None:
            if held.hash == block.hash:
                return "duplicate"
            proof = ForkProof(held, block)
            self.add_proof(proof)
            raise ForkDetectedError(f"{proof.describe()} (proof stored)", proof)
        before = self._link(block.owner, block.seq - 1) if block.seq > 0 else None
        if before is not None and (before[0] != block.prev or before[2] > block.time_ms):
            raise InvalidBlockError(f"block {block.ref} does not follow the held block #{block.seq - 1}")
        after = self._link(block.owner, block.seq + 1)
        if after is not None and (after[1] != block.hash or after[2] < block.time_ms):
            raise InvalidBlockError(f"block {block.ref} does not precede the held block #{block.seq + 1}")
        self._db.execute(
            "INSERT INTO blocks (owner, seq, hash, prev, kind, time_ms, wire) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (block.owner, block.seq, block.hash, block.prev, str(block.kind), block.time_ms, block.encode()),
        )
        self._advance_head(block)
        return "added"

    def _link(self, owner: str, seq: int) -> tuple[bytes, bytes, int] | None:
        """(hash, prev, time_ms) of a held block, without decoding it."""
        row = self._db.execute(
            "SELECT hash, prev, time_ms FROM blocks WHERE owner = ? AND seq = ?", (owner, seq)
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def _advance_head(self, block: Block) -> None:
        cached = self._heads.get(block.owner)
        if cached is None or block.seq != cached.seq + 1:
            return
        head = Head(block.owner, block.seq, block.hash)
        while (nxt := self._link(block.owner, head.seq + 1)) is not None:
            head = Head(block.owner, head.seq + 1, nxt[0])
        self._heads[block.owner] = head

    def add_many(self, blocks: list[Block]) -> dict[str, int]:
        """Add blocks in one transaction; count outcomes (forks and unlinked blocks are counted, not raised)."""
        counts = {"added": 0, "duplicate": 0, "fork": 0, "unlinked": 0}
        self._db.execute("BEGIN")
        try:
            for block in sorted(blocks, key=lambda b: (b.owner, b.seq)):
                try:
                    counts[self.add(block)] += 1
                except ForkDetectedError:
                    counts["fork"] += 1
                except InvalidBlockError:
                    counts["unlinked"] += 1
        finally:
            self._db.execute("COMMIT")
        return counts

    def _row(self, owner: str, seq: int) -> Block | None:
        row = self._db.execute("SELECT wire FROM blocks WHERE owner = ? AND seq = ?", (owner, seq)).fetchone()
        return Block.decode(row[0], check_signature=False) if row else None

    def block(self, owner: str, seq: int) -> Block | None:
        return self._row(owner, seq)

    def blocks(self, owner: str, start: int = 0, end: int | None = None, *, limit: int = 1 << 30) -> list[Block]:
        """Held blocks of ``owner`` with ``start <= seq <= end``, in order."""
        rows = self._db.execute(
            "SELECT wire FROM blocks WHERE owner = ? AND seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
            (owner, start, end if end is not None else 1 << 62, limit),
        )
        return [Block.decode(row[0], check_signature=False) for row in rows]

    def raw_blocks(self, owner: str, start: int, end: int, limit: int) -> list[bytes]:
        rows = self._db.execute(
            "SELECT wire FROM blocks WHERE owner = ? AND seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
            (owner, start, end, limit),
        )
        return [row[0] for row in rows]

    def owners(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT owner FROM blocks ORDER BY owner")]

    def head(self, owner: str) -> Head | None:
        """The end of ``owner``'s contiguous prefix from sequence 0, or None without its identity block."""
        cached = self._heads.get(owner)
        if cached is not None:
            return cached
        last: tuple[int, bytes] | None = None
        rows = self._db.execute("SELECT seq, hash FROM blocks WHERE owner = ? ORDER BY seq", (owner,))
        for expected, (seq, block_hash) in enumerate(rows):
            if seq != expected:
                break
            last = (seq, block_hash)
        if last is None:
            return None
        head = Head(owner, last[0], last[1])
        self._heads[owner] = head
        return head

    def heads(self) -> list[Head]:
        return [head for owner in self.owners() if (head := self.head(owner)) is not None]

    def max_seq(self, owner: str) -> int:
        row = self._db.execute("SELECT MAX(seq) FROM blocks WHERE owner = ?", (owner,)).fetchone()
        return -1 if row[0] is None else int(row[0])

    def block_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM blocks").fetchone()[0])

    def iter_all(self) -> Iterator[bytes]:
        for row in self._db.execute("SELECT wire FROM blocks ORDER BY owner, seq"):
            yield row[0]

    # -- derived state -----------------------------------------------------------------

    def state(self, owner: str) -> ChainState:
        """Replay ``owner``'s contiguous prefix; a block breaking a rule is turned into a proof and ends it."""
        head = self.head(owner)
        cached = self._states.get(owner)
        if cached is not None and head is not None and cached.head_hash == head.hash:
            return cached
        state = cached if cached is not None and head is not None and cached.head_seq < head.seq else None
        state = state if state is not None and self._links(state) else ChainState(owner, self.params)
        if head is not None:
            for block in self.blocks(owner, state.head_seq + 1, head.seq):
                try:
                    state.apply(block)
                    self._keep_accusation_proof(block)
                    self.keep_audit_proofs(block)
                except ChainRuleError:
                    # the replay stops here either way; a prefix too long to gossip is kept as no proof
                    with contextlib.suppress(InvalidProofError):
                        self.add_proof(ChainRuleProof(tuple(self.blocks(owner, 0, block.seq))), block.time_ms)
                    break
        self._states[owner] = state
        return state

    def _keep_accusation_proof(self, block: Block) -> None:
        """An accusation's proof reaches every node that holds the accuser's chain; a false one is ignored."""
        if block.kind == BlockKind.ACCUSATION and "proof" in block.payload:
            with contextlib.suppress(InvalidProofError):
                self.add_proof(proof_from_wire(block.payload["proof"]), block.time_ms)

    def keep_audit_proofs(self, block: Block) -> None:
        """A published audit's proofs (transaction 04) reach every node that holds the auditor's chain."""
        if block.kind != BlockKind.AUDIT_RESULT:
            return
        for entry in block.payload["result"].get("discrepancies") or []:
            data = entry.get("proof_cbor") if isinstance(entry, dict) else None
            if isinstance(data, str):
                with contextlib.suppress(InvalidProofError, EncodingError, ValueError):
                    self.add_proof(proof_from_wire(decode(bytes.fromhex(data))), block.time_ms)

    def _links(self, state: ChainState) -> bool:
        held = self._link(state.owner, state.head_seq)
        return held is not None and held[0] == state.head_hash

    def states(self) -> dict[str, ChainState]:
        return {owner: self.state(owner) for owner in self.owners()}

    # -- proofs --------------------------------------------------------------------------

    def add_proof(self, proof: Proof, found_ms: int = 0) -> bool:
        """Verify and keep a proof found at ``found_ms`` (the time of the block that showed it); False if held."""
        proof.verify(self.params)
        # a proof first received bare (sync carries no time: 0) takes the time of a block showing it later
        cursor = self._db.execute(
            "INSERT INTO proofs (hash, subject, kind, wire, found_ms) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (hash) DO UPDATE SET found_ms = excluded.found_ms "
            "WHERE proofs.found_ms = 0 AND excluded.found_ms > 0",
            (proof.hash, proof.subject, proof.kind, canonical(proof.to_wire()), found_ms),
        )
        return cursor.rowcount > 0

    def proofs(self, subject: str | None = None) -> list[Proof]:
        query = "SELECT wire FROM proofs" + (" WHERE subject = ?" if subject else "") + " ORDER BY found_ms, rowid"
        rows = self._db.execute(query, (subject,) if subject else ())
        return [proof_from_wire(decode(row[0])) for row in rows]

    def proofs_found(self, subject: str) -> list[tuple[int, Proof]]:
        """Each proof held against ``subject`` with when it was found (the time of the block that showed it)."""
        rows = self._db.execute("SELECT found_ms, wire FROM proofs WHERE subject = ? ORDER BY found_ms", (subject,))
        return [(int(found), proof_from_wire(decode(wire))) for found, wire in rows]

    def proof_counts(self) -> dict[str, int]:
        return {s: n for s, n in self._db.execute("SELECT subject, COUNT(*) FROM proofs GROUP BY subject")}

    # -- locks this node witnessed -----------------------------------------------------------

    def record_witnessed_lock(
        self, session_id: bytes, consumer: str, amount: int, lock_hash: bytes, signed_ms: int
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO witnessed_locks VALUES (?, ?, ?, ?, ?)",
            (session_id, consumer, amount, lock_hash, signed_ms),
        )

    def record_witnessed_topup(self, session_id: bytes, consumer: str, amount: int, new_total: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO witnessed_topups VALUES (?, ?, ?, ?)", (session_id, new_total, consumer, amount)
        )

    def witnessed_pending(self, consumer: str) -> list[tuple[bytes, int]]:
        """Locks and top-ups this node signed for ``consumer`` that its chain does not show yet."""
        state = self.state(consumer)
        rows = self._db.execute("SELECT session_id, amount FROM witnessed_locks WHERE consumer = ?", (consumer,))
        pending = [
            (session, amount)
            for session, amount in rows
            if session not in state.locks and session not in state.closed_sessions
        ]
        topups = self._db.execute(
            "SELECT session_id, amount, new_total FROM witnessed_topups WHERE consumer = ?", (consumer,)
        )
        for session, amount, new_total in topups:
            lock = state.locks.get(session)
            if session not in state.closed_sessions and (lock is None or lock.total < new_total):
                pending.append((session, amount))
        return pending

    def forget_witnessed_lock(self, session_id: bytes) -> None:
        self._db.execute("DELETE FROM witnessed_locks WHERE session_id = ?", (session_id,))
        self._db.execute("DELETE FROM witnessed_requests WHERE session_id = ?", (session_id,))
        self._db.execute("DELETE FROM witnessed_topups WHERE session_id = ?", (session_id,))

    def record_witnessed_request(self, session_id: bytes, consumer: str, signed_request: dict[str, Any]) -> None:
        """Keep the consumer's signed request of a lock this node accepted: half of any double-lock proof."""
        self._db.execute(
            "INSERT OR REPLACE INTO witnessed_requests VALUES (?, ?, ?)",
            (session_id, consumer, canonical(signed_request)),
        )

    def witnessed_requests(self, consumer: str) -> list[dict[str, Any]]:
        """The signed requests (``{request, signature}``) of the locks this node accepted for ``consumer``."""
        rows = self._db.execute("SELECT signed_request FROM witnessed_requests WHERE consumer = ?", (consumer,))
        return [decode(row[0]) for row in rows]

    # -- locks this node serves as provider ----------------------------------------------------

    def record_served_request(self, session_id: bytes, signed_request: dict[str, Any]) -> None:
        """Keep the consumer's signed request of a lock confirmed to this provider: the rate a claim names."""
        self._db.execute(
            "INSERT OR REPLACE INTO served_requests VALUES (?, ?)", (session_id, canonical(signed_request))
        )

    def served_request(self, session_id: bytes) -> dict[str, Any] | None:
        """The signed request (``{request, signature}``) of a lock confirmed to this provider, or None."""
        row = self._db.execute("SELECT signed_request FROM served_requests WHERE session_id = ?", (session_id,))
        found = row.fetchone()
        return None if found is None else dict(decode(found[0]))

    def integrity_check(self) -> str:
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])
