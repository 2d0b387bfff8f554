"""Escrow lock and top-up evidence in either of their two signed forms, reduced to what the chain rules need.

* a ledger :class:`Statement` of kind ``lock`` (witnesses sign its statement hash), or
* the ``lock_result`` of transaction 00 run by the ``.omt`` runtime: ``{session_id, consumer,
  provider, amount, status, witnesses, witness_signatures: [{witness, value, signature}]}``, where
  each witness signed the runtime's canonical JSON of ``{session_id, consumer, provider, amount,
  status}`` (the spec's ``lock_statement``) and the lock hash is the runtime's ``HASH(lock_result)``.

Both are checked the same way: at least the network's threshold of distinct witnesses, every
carried signature valid and from a listed witness, parties never witnesses.

A top-up is a ledger ``topup`` statement or spec 00's ``topup_result``: ``{session_id,
lock_result_hash, topup_amount, new_total, status, witness_signatures}``, each witness having signed
the runtime's canonical JSON of ``{session_id, lock_result_hash, topup_amount, new_total, verdict:
"ACCEPT"}`` (the spec's ``topup_statement``). Touches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omerta_ledger_omt.ledger import schema
from omerta_ledger_omt.ledger.errors import ChainRuleError, InvalidStatementError
from omerta_ledger_omt.ledger.statements import Statement, StatementKind, check_witness_signatures, lock_witnesses
from omerta_ledger_omt.omt.runtime.values import canonical_bytes, digest

#: The status an accepted lock result carries (LockStatus.ACCEPTED of spec 00).
ACCEPTED = "ACCEPTED"

OMT_RESULT_SCHEMA = {
    "session_id": schema.Field(lambda v: None if isinstance(v, str) and len(v) == 64 else "is not a hex hash"),
    "consumer": schema.PEER,
    "provider": schema.PEER,
    "amount": schema.AMOUNT,
    "status": schema.Field(schema.one_of(ACCEPTED)),
    "witnesses": schema.PEERS,
    "witness_signatures": schema.Field(schema.list_of(schema.MAP.check)),
}


@dataclass(frozen=True)
class LockFacts:
    session_id: bytes
    consumer: str
    provider: str
    amount: int
    witnesses: list[str]
    threshold: int
    lock_hash: bytes


def lock_facts(wire: Any, min_threshold: int) -> LockFacts:
    """Check lock evidence of either form and return its facts; raise ChainRuleError/InvalidStatementError."""
    if isinstance(wire, dict) and "witness_signatures" in wire:
        return _omt_lock_facts(wire, min_threshold)
    lock = Statement.from_wire(wire)
    if lock.kind != StatementKind.LOCK:
        raise ChainRuleError(f"expected a lock statement, got {lock.kind}")
    witnesses, threshold = lock_witnesses(lock)
    if threshold < min_threshold:
        raise ChainRuleError(f"lock threshold {threshold} is below the network's {min_threshold}")
    lock.verify(witnesses, threshold)
    body = lock.body
    return LockFacts(body["session_id"], body["consumer"], body["provider"], body["amount"], witnesses, threshold,
                     lock.hash)  # fmt: skip


def _omt_lock_facts(result: dict[str, Any], threshold: int) -> LockFacts:
    try:
        schema.check("lock result", result, OMT_RESULT_SCHEMA)
    except ValueError as exc:
        raise InvalidStatementError(str(exc)) from exc
    witnesses = list(result["witnesses"])
    if len(set(witnesses)) != len(witnesses):
        raise InvalidStatementError("lock result names a witness twice")
    if {result["consumer"], result["provider"]} & set(witnesses):
        raise InvalidStatementError("a party to the lock cannot be its witness")
    statement = {k: result[k] for k in ("session_id", "consumer", "provider", "amount", "status")}
    message = canonical_bytes(statement)
    check_witness_signatures(
        "lock result", message, result["witness_signatures"], witnesses, threshold, verdict=ACCEPTED
    )
    return LockFacts(bytes.fromhex(result["session_id"]), result["consumer"], result["provider"], result["amount"],
                     witnesses, threshold, bytes.fromhex(digest(result)))  # fmt: skip


OMT_TOPUP_SCHEMA = {
    "session_id": OMT_RESULT_SCHEMA["session_id"],
    "lock_result_hash": OMT_RESULT_SCHEMA["session_id"],
    "topup_amount": schema.AMOUNT,
    "new_total": schema.AMOUNT,
    "status": schema.Field(schema.one_of(ACCEPTED)),
    "witness_signatures": OMT_RESULT_SCHEMA["witness_signatures"],
}

#: The verdict an accepting witness signed a top-up with (WitnessVerdict.ACCEPT of spec 00).
ACCEPT = "ACCEPT"


@dataclass(frozen=True)
class OmtTopup:
    """Spec 00's top-up result, shaped like a ledger ``topup`` statement for the chain rules."""

    result: dict[str, Any]

    @property
    def body(self) -> dict[str, Any]:
        r = self.result
        return {
            "session_id": bytes.fromhex(r["session_id"]),
            "lock": bytes.fromhex(r["lock_result_hash"]),
            "amount": r["topup_amount"],
            "new_total": r["new_total"],
        }

    def verify(self, signers: list[str], threshold: int) -> None:
        r = self.result
        statement = {k: r[k] for k in ("session_id", "lock_result_hash", "topup_amount", "new_total")}
        message = canonical_bytes({**statement, "verdict": ACCEPT})
        check_witness_signatures("top-up result", message, r["witness_signatures"], signers, threshold, verdict=ACCEPT)


def topup_evidence(wire: Any) -> Statement | OmtTopup:
    """Parse top-up evidence of either form; signatures are checked by ``verify``."""
    if isinstance(wire, dict) and "witness_signatures" in wire:
        try:
            schema.check("top-up result", wire, OMT_TOPUP_SCHEMA)
        except ValueError as exc:
            raise InvalidStatementError(str(exc)) from exc
        return OmtTopup(dict(wire))
    topup = Statement.from_wire(wire)
    if topup.kind != StatementKind.TOPUP:
        raise ChainRuleError(f"expected a topup statement, got {topup.kind}")
    return topup
