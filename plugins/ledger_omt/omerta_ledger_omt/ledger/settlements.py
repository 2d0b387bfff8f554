"""Escrow settlement evidence in either of its two signed forms, checked the same way.

* a ledger :class:`Statement` of kind ``settlement`` (witnesses sign its statement hash), or
* the ``final_settlement`` of transaction 02 run by the ``.omt`` runtime:
  ``{settlement, signatures: [{witness, signature}]}`` where ``settlement`` is the spec's
  ``settlement_statement`` (hex session id and lock hash, parties, witnesses and the integer
  inputs and outputs) and each witness signed the runtime's canonical JSON of it.

Either way :func:`settlement_evidence` gives the body in the ledger's form (session id and lock as
bytes) and a ``verify(witnesses, threshold)`` that demands a threshold of distinct lock witnesses
with every carried signature valid. The chain rules then recompute the split. Touches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from omerta_ledger_omt.ledger import schema
from omerta_ledger_omt.ledger.errors import ChainRuleError, InvalidStatementError
from omerta_ledger_omt.ledger.statements import Statement, StatementKind, check_witness_signatures
from omerta_ledger_omt.omt.runtime.values import canonical_bytes


def _hex_hash(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) != 64:
        return "is not a hex hash"
    try:
        bytes.fromhex(value)
    except ValueError:
        return "is not a hex hash"
    return None


OMT_SETTLEMENT_SCHEMA = {
    "what": schema.Field(schema.one_of("settlement")),
    "session_id": schema.Field(_hex_hash),
    "lock": schema.Field(_hex_hash),
    "consumer": schema.PEER,
    "provider": schema.PEER,
    "witnesses": schema.PEERS,
    "escrow_total": schema.AMOUNT,
    "duration_ms": schema.COUNT,
    "hourly_rate": schema.COUNT,
    "provider_trust_milli": schema.COUNT,
    "k_payment_milli": schema.COUNT,
    "provider_payment": schema.COUNT,
    "burn": schema.COUNT,
    "refund": schema.COUNT,
}

#: Fields of the ledger's settlement body, taken from an .omt settlement as they are.
BODY_FIELDS = ("escrow_total", "duration_ms", "hourly_rate", "provider_trust_milli", "k_payment_milli",
               "provider_payment", "burn", "refund")  # fmt: skip


class SettlementEvidence(Protocol):
    @property
    def body(self) -> dict[str, Any]: ...

    def verify(self, signers: list[str], threshold: int) -> None: ...


@dataclass(frozen=True)
class OmtSettlement:
    """Transaction 02's settlement with its witness signatures."""

    settlement: dict[str, Any]
    signatures: list[dict[str, Any]]

    @property
    def body(self) -> dict[str, Any]:
        s = self.settlement
        return {
            "session_id": bytes.fromhex(s["session_id"]),
            "lock": bytes.fromhex(s["lock"]),
            **{k: s[k] for k in BODY_FIELDS},
        }

    @property
    def parties(self) -> tuple[str, str]:
        return self.settlement["consumer"], self.settlement["provider"]

    def verify(self, signers: list[str], threshold: int) -> None:
        message = canonical_bytes(self.settlement)
        check_witness_signatures("settlement", message, self.signatures, set(signers), threshold)


def settlement_evidence(wire: Any) -> Statement | OmtSettlement:
    """Parse settlement evidence of either form; signatures are checked by ``verify``."""
    if isinstance(wire, dict) and set(wire) == {"settlement", "signatures"}:
        settlement, signatures = wire["settlement"], wire["signatures"]
        try:
            schema.check("settlement", settlement, OMT_SETTLEMENT_SCHEMA)
        except ValueError as exc:
            raise InvalidStatementError(str(exc)) from exc
        if not isinstance(signatures, list) or not all(isinstance(s, dict) for s in signatures):
            raise InvalidStatementError("settlement signatures are not a list of {witness, signature} maps")
        return OmtSettlement(dict(settlement), list(signatures))
    statement = Statement.from_wire(wire)
    if statement.kind != StatementKind.SETTLEMENT:
        raise ChainRuleError(f"expected a settlement statement, got {statement.kind}")
    return statement


def check_parties(evidence: Statement | OmtSettlement, consumer: str, provider: str) -> None:
    """An .omt settlement names its parties; they must be the lock's."""
    if isinstance(evidence, OmtSettlement) and evidence.parties != (consumer, provider):
        raise ChainRuleError("settlement names other parties than its lock")
