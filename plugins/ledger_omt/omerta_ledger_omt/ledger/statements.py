"""Multi-signed statements: the witness-signed results of escrow lock, top-up, settlement and release.

A statement is a kind and a body; its hash is the hash of their canonical
encoding, and each witness signs ``STATEMENT_DOMAIN + hash`` with its identity
key. A statement is valid for a witness set when at least ``threshold``
distinct members signed it and every signature it carries verifies (one forged
signature spoils the statement, so a relayer cannot pad it). Touches nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from omerta_core.identity import Identity, verify
from omerta_core.interfaces.common import PeerId
from omerta_ledger_omt.ledger import schema
from omerta_ledger_omt.ledger.encoding import hash_value
from omerta_ledger_omt.ledger.errors import InvalidStatementError

#: Prefix of every signed statement hash, so a statement signature can never pass for a block signature.
STATEMENT_DOMAIN = b"omerta-ledger/statement/v1\x00"


class StatementKind(enum.StrEnum):
    LOCK = "lock"
    TOPUP = "topup"
    SETTLEMENT = "settlement"
    RELEASE = "release"


BODY_SCHEMAS: dict[StatementKind, dict[str, schema.Field]] = {
    StatementKind.LOCK: {
        "session_id": schema.HASH,
        "consumer": schema.PEER,
        "provider": schema.PEER,
        "amount": schema.AMOUNT,
        "witnesses": schema.PEERS,
        "threshold": schema.AMOUNT,
        "expires_ms": schema.COUNT,
    },
    StatementKind.TOPUP: {
        "session_id": schema.HASH,
        "lock": schema.HASH,
        "amount": schema.AMOUNT,
        "new_total": schema.AMOUNT,
    },
    StatementKind.SETTLEMENT: {
        "session_id": schema.HASH,
        "lock": schema.HASH,
        "escrow_total": schema.AMOUNT,
        "duration_ms": schema.COUNT,
        "hourly_rate": schema.COUNT,
        "provider_trust_milli": schema.COUNT,
        "k_payment_milli": schema.COUNT,
        "provider_payment": schema.COUNT,
        "burn": schema.COUNT,
        "refund": schema.COUNT,
    },
    StatementKind.RELEASE: {
        "session_id": schema.HASH,
        "lock": schema.HASH,
        "reason": schema.TEXT,
    },
}


@dataclass(frozen=True)
class Statement:
    """A statement body of one kind and the witness signatures gathered on it."""

    kind: StatementKind
    body: dict[str, Any]
    signatures: Mapping[str, bytes] = field(default_factory=dict)

    @classmethod
    def create(cls, kind: StatementKind, body: dict[str, Any]) -> Statement:
        try:
            schema.check(f"{kind} statement", body, BODY_SCHEMAS[kind])
        except ValueError as exc:
            raise InvalidStatementError(str(exc)) from exc
        return cls(kind, dict(body), {})

    @property
    def hash(self) -> bytes:
        return hash_value({"kind": str(self.kind), "body": self.body})

    def signed_by(self, identity: Identity) -> Statement:
        """This statement with ``identity``'s signature added."""
        signature = identity.sign(STATEMENT_DOMAIN + self.hash)
        return replace(self, signatures={**self.signatures, str(identity.peer_id): signature})

    def merged(self, other: Statement) -> Statement:
        """This statement with the signatures of ``other`` (the same statement) added."""
        if other.hash != self.hash:
            raise InvalidStatementError("cannot merge signatures of two different statements")
        return replace(self, signatures={**self.signatures, **other.signatures})

    def verify(self, signers: Sequence[str], threshold: int) -> None:
        """Raise unless ``threshold`` distinct ``signers`` signed and every carried signature verifies."""
        allowed = set(signers)
        message = STATEMENT_DOMAIN + self.hash
        for signer, signature in self.signatures.items():
            if signer not in allowed:
                raise InvalidStatementError(f"{self.kind} statement signed by {signer[:12]}, who is not a witness")
            if not verify(PeerId(signer), message, signature):
                raise InvalidStatementError(f"{self.kind} statement carries a bad signature from {signer[:12]}")
        if len(self.signatures) < threshold:
            raise InvalidStatementError(
                f"{self.kind} statement has {len(self.signatures)} witness signatures, needs {threshold}"
            )

    def to_wire(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "body": self.body, "sigs": dict(sorted(self.signatures.items()))}

    @classmethod
    def from_wire(cls, obj: Any) -> Statement:
        if not isinstance(obj, dict) or set(obj) != {"kind", "body", "sigs"}:
            raise InvalidStatementError("statement is not a {kind, body, sigs} map")
        try:
            kind = StatementKind(obj["kind"])
        except ValueError as exc:
            raise InvalidStatementError(f"unknown statement kind {obj['kind']!r}") from exc
        sigs = obj["sigs"]
        if not isinstance(sigs, dict) or not all(isinstance(s, bytes) and len(s) == 64 for s in sigs.values()):
            raise InvalidStatementError("statement signatures are not a map of 64-byte signatures")
        for signer in sigs:
            if schema.PEER.check(signer):
                raise InvalidStatementError("statement signature keyed by something that is not a peer id")
        statement = cls.create(kind, obj["body"])
        return replace(statement, signatures=dict(sigs))


def check_witness_signatures(
    what: str,
    message: bytes,
    entries: Iterable[Mapping[str, Any]],
    witnesses: Collection[str],
    threshold: int,
    *,
    verdict: str | None = None,
) -> None:
    """Raise unless ``entries`` (``{"witness", "signature"[, "value"]}``) sign ``message`` validly and enough.

    Every entry must come from one of ``witnesses`` (and, with ``verdict``, carry that vote), every
    signature must verify, and at least ``threshold`` distinct witnesses must have signed: the rule for
    the ``.omt`` specs' witness-signed results (lock, top-up, settlement).
    """
    seen = set()
    for entry in entries:
        witness, signature = entry.get("witness"), entry.get("signature")
        if verdict is None:
            if witness not in witnesses:
                raise InvalidStatementError(f"{what} signed by {str(witness)[:12]}, who is not a witness")
        elif witness not in witnesses or entry.get("value") != verdict:
            raise InvalidStatementError(f"{what} carries a vote that is not an accepting witness's")
        try:
            valid = verify(PeerId(str(witness)), message, bytes.fromhex(str(signature)))
        except ValueError:
            valid = False
        if not valid:
            raise InvalidStatementError(f"{what} carries a bad signature from {str(witness)[:12]}")
        seen.add(witness)
    if len(seen) < threshold:
        raise InvalidStatementError(f"{what} has {len(seen)} witness signatures, needs {threshold}")


def lock_witnesses(lock: Statement) -> tuple[list[str], int]:
    """The witness list and threshold a lock statement names, checked for sense."""
    witnesses = list(lock.body["witnesses"])
    threshold = int(lock.body["threshold"])
    if len(set(witnesses)) != len(witnesses):
        raise InvalidStatementError("lock names a witness twice")
    if threshold > len(witnesses):
        raise InvalidStatementError(f"lock threshold {threshold} exceeds its {len(witnesses)} witnesses")
    parties = {lock.body["consumer"], lock.body["provider"]}
    if parties & set(witnesses):
        raise InvalidStatementError("a party to the lock cannot be its witness")
    return witnesses, threshold
