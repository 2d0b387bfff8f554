"""A provider's claim of an abandoned escrow session, as the chains held here show it.

When a consumer never settles, its provider has the lock's witnesses sign the split for the attested
duration (spec 02's claim) and records ``escrow_payment`` with it. The consumer's chain still shows
the lock open, so observers read the two chains together:

* :func:`payment_claim` finds the payment recorded for a session on any provider chain held here;
* :func:`claimed_closures` lists the open locks that such a payment closes: the settlement names the
  lock's hash, parties and total, so the lock is counted as closed by it (refund back to the
  consumer, burn destroyed, the payment already on the provider's chain);
* :func:`session_facts` answers spec 02's ``READ(session, ...)`` about a lock and its attestation
  (``open_lock``, ``attested_at``, ``lock_witnessed_at``, ``payment_claimed``).

Touches nothing (reads the chain states it is given).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omerta_ledger_omt.ledger.blocks import BlockKind
from omerta_ledger_omt.ledger.chainstate import ChainState
from omerta_ledger_omt.ledger.errors import ChainRuleError, InvalidStatementError
from omerta_ledger_omt.ledger.settlements import settlement_evidence
from omerta_ledger_omt.ledger.store import ChainStore


@dataclass(frozen=True)
class Closure:
    """An open lock closed by its provider's recorded claim: what goes back to the consumer, what is burned."""

    session_id: bytes
    consumer: str
    provider: str
    total: int
    refund: int
    burn: int
    provider_payment: int
    settlement: Any


def payment_claim(states: Mapping[str, ChainState], session_id: bytes) -> tuple[Any, Any] | None:
    """The (lock, settlement) evidence of a payment recorded for ``session_id`` on a chain held here, or None."""
    for state in states.values():
        found = state.payments.get(session_id)
        if found is not None:
            return found
    return None


def claimed_closures(states: Mapping[str, ChainState]) -> dict[bytes, Closure]:
    """Open locks on the chains held here that a payment recorded on their provider's chain closes."""
    out: dict[bytes, Closure] = {}
    for consumer, state in states.items():
        for session_id, lock in state.locks.items():
            provider = states.get(lock.provider)
            claim = None if provider is None else provider.payments.get(session_id)
            if claim is None:
                continue
            try:
                evidence = settlement_evidence(claim[1])
            except (ChainRuleError, InvalidStatementError):
                continue
            body = evidence.body
            if body["lock"] != lock.lock_hash or body["escrow_total"] != lock.total:
                continue  # a claim of another lock of the session, or of a total the consumer since topped up
            out[session_id] = Closure(session_id, consumer, lock.provider, lock.total, body["refund"], body["burn"],
                                      body["provider_payment"], claim[1])  # fmt: skip
    return out


def session_facts(store: ChainStore, me: str, session_id: bytes, key: str) -> Any:
    """Spec 02's ``READ(session, key)``: the open lock (a map, or None), when this node attested the session's
    end (seconds, or None), when it witnessed the session's lock (its witness commitment block, seconds, or
    None), and whether its provider's payment is recorded on a chain held here."""
    if key == "open_lock":
        for owner in store.owners():
            lock = store.state(owner).locks.get(session_id)
            if lock is not None:
                return {
                    "consumer": lock.consumer,
                    "provider": lock.provider,
                    "lock_hash": lock.lock_hash.hex(),
                    "total": lock.total,
                    "witnesses": list(lock.witnesses),
                }
        return None
    if key == "attested_at":
        for block in reversed(store.blocks(me)):
            payload = block.payload
            if (
                block.kind == BlockKind.VERIFICATION
                and payload["session_id"] == session_id
                and "duration_ms" in payload
            ):
                return block.time_ms / 1000.0
        return None
    if key == "lock_witnessed_at":
        for block in store.blocks(me):
            if block.kind == BlockKind.WITNESS_COMMITMENT and block.payload["session_id"] == session_id:
                return block.time_ms / 1000.0
        return None
    if key == "payment_claimed":
        return payment_claim(store.states(), session_id) is not None
    return None
