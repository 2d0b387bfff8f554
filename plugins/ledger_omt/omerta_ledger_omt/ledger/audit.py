"""Transaction 04's pure part: audit one identity's chain and list what is wrong, with proofs.

:func:`audit_chain` takes the blocks a subject served (wire maps, sequence 0 on), the copies of
its blocks others hold (the auditor's store, counterparties' confirmations), the chains of its
counterparties that the auditor could fetch, proofs already held about it (e.g. a witness's
double-lock accusation) and signed state answers about it (transaction 03). It verifies every
block, compares each with the copies held elsewhere, replays balance and the facts trust uses,
checks that counterparties hold their half, and returns an :class:`AuditResult` whose
discrepancies each carry what a third party needs to check them offline (with the network's
parameters and nothing else):

* ``signature_invalid``: a served block does not verify (what an edited store serves). With the
  subject's signed chain response (between nodes) a served-corrupt proof; read from a local store,
  no proof, and the finding names the block.
* ``chain_fork``: a served block differs from a copy held elsewhere at its sequence. Fork proof.
* ``double_spend``: the replay breaks an amount rule (a spend or lock beyond the balance), or a
  double-lock proof about the subject is held. Chain-rule proof or double-lock proof.
* ``value_mismatch``: the replay breaks any other chain rule. Chain-rule proof.
* ``missing_counterparty``: a transfer to a counterparty whose held chain goes on past it without
  the agreement. No proof: the counterparty may not have synced.
* ``attestation_false``: a HIGH-confidence state answer about the chain disagrees with the replay
  at the head it named. False-answer proof, against the witness.

Touches nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from omerta_ledger_omt.ledger.blocks import Block, BlockKind
from omerta_ledger_omt.ledger.chainstate import ChainState, Parameters
from omerta_ledger_omt.ledger.encoding import canonical, decode, hash_value
from omerta_ledger_omt.ledger.errors import ChainRuleError, EncodingError, InvalidBlockError, InvalidProofError
from omerta_ledger_omt.ledger.proofs import (
    ChainRuleProof,
    DoubleLockProof,
    ForkProof,
    Proof,
    ServedCorruptProof,
    verified_proof,
)
from omerta_ledger_omt.ledger.state_query import (
    CHAIN_QUERIES,
    Answer,
    Confidence,
    FalseAnswerProof,
    chain_value,
)

#: Words of a chain-rule refusal that mean value was spent or locked twice.
DOUBLE_SPEND_MARKS = ("exceeds the available balance", "double lock")


class CounterpartyView(Protocol):
    """What the audit needs of a counterparty's chain: how far it goes and which proposals it agreed to."""

    @property
    def last_time_ms(self) -> int: ...

    @property
    def accepted_proposals(self) -> set[bytes]: ...


class Discrepancy(enum.StrEnum):
    MISSING_COUNTERPARTY = "missing_counterparty"
    SIGNATURE_INVALID = "signature_invalid"
    VALUE_MISMATCH = "value_mismatch"
    DOUBLE_SPEND = "double_spend"
    ATTESTATION_FALSE = "attestation_false"
    CHAIN_FORK = "chain_fork"


@dataclass(frozen=True)
class Finding:
    kind: Discrepancy
    seq: int | None
    detail: str
    proof: Proof | None = None

    @property
    def against(self) -> str | None:
        """Whom the proof convicts (the subject, or a witness for a false answer); None without proof."""
        return None if self.proof is None else self.proof.subject

    def to_wire(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "seq": self.seq,
            "detail": self.detail,
            "proof": None if self.proof is None else self.proof.to_wire(),
        }


@dataclass
class AuditResult:
    subject: str
    blocks_checked: int = 0
    head_seq: int = -1
    head_hash: str = ""
    balance: int = 0
    locked: int = 0
    burned: int = 0
    verified_value_out: int = 0
    verifications: tuple[int, int] = (0, 0)  # passed, failed (as the subject's own chain records them)
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings

    def to_wire(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "blocks_checked": self.blocks_checked,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "balance": self.balance,
            "locked": self.locked,
            "burned": self.burned,
            "verified_value_out": self.verified_value_out,
            "verifications": list(self.verifications),
            "discrepancies": [f.to_wire() for f in self.findings],
        }

    @property
    def hash(self) -> str:
        return hash_value(self.to_wire()).hex()

    def summary(self) -> dict[str, Any]:
        """The result for people and JSON: each finding with whom its proof convicts and the proof's hash."""
        wire = self.to_wire()
        wire["discrepancies"] = [
            {
                "kind": str(f.kind),
                "seq": f.seq,
                "detail": f.detail,
                "against": f.against,
                "proof": None if f.proof is None else {"kind": f.proof.kind, "hash": f.proof.hash.hex()},
            }
            for f in self.findings
        ]
        wire["audit_hash"] = self.hash
        return wire

    def published(self) -> dict[str, Any]:
        """The result as transaction 04 publishes it: the summary, each proof also whole (hex of its encoding).

        Plain text, numbers and lists only, so it travels in ``.omt`` values and in a block alike;
        :func:`verify_published` checks every proof in it with nothing else.
        """
        wire = self.summary()
        for entry, finding in zip(wire["discrepancies"], self.findings, strict=True):
            entry["proof_cbor"] = None if finding.proof is None else canonical(finding.proof.to_wire()).hex()
        return wire


def audit_chain(
    subject: str,
    served: Sequence[Any],
    params: Parameters,
    *,
    held: Iterable[Block] = (),
    counterparties: Mapping[str, CounterpartyView] | None = None,
    proofs: Iterable[Proof] = (),
    answers: Iterable[Answer] = (),
    response: Mapping[str, Any] | None = None,
) -> AuditResult:
    """Audit ``subject``'s chain as served (wire maps in sequence order from 0).

    ``response`` is the subject's signed chain response the blocks came in (transaction 04 between
    nodes): a block in it that does not verify then carries a served-corrupt proof.
    """
    result = AuditResult(subject)
    copies = {b.seq: b for b in held if b.owner == subject}
    blocks: list[Block] = []
    state = ChainState(subject, params)
    prefix: list[Block] = []
    for raw in served:
        result.blocks_checked += 1
        try:
            block = Block.from_wire(raw)
        except InvalidBlockError as exc:
            seq = raw.get("seq") if isinstance(raw, dict) else None
            seq = seq if type(seq) is int else None
            proof = _served_corrupt(response, seq)
            result.findings.append(Finding(Discrepancy.SIGNATURE_INVALID, seq, str(exc), proof))
            break
        if block.owner != subject:
            result.findings.append(
                Finding(Discrepancy.VALUE_MISMATCH, block.seq, f"block {block.ref} is not the subject's")
            )
            break
        copy = copies.get(block.seq)
        if copy is not None and copy.hash != block.hash:
            fork = ForkProof(copy, block)
            result.findings.append(Finding(Discrepancy.CHAIN_FORK, block.seq, fork.describe(), fork))
        blocks.append(block)
        try:
            state.apply(block)
        except ChainRuleError as exc:
            kind = (
                Discrepancy.DOUBLE_SPEND
                if any(m in str(exc) for m in DOUBLE_SPEND_MARKS)
                else Discrepancy.VALUE_MISMATCH
            )
            result.findings.append(Finding(kind, block.seq, str(exc), ChainRuleProof((*prefix, block))))
            break
        prefix.append(block)
    result.head_seq, result.head_hash = state.head_seq, state.head_hash.hex()
    result.balance, result.locked, result.burned = state.available(), state.locked, state.burned
    result.verified_value_out = sum(fact.value for fact in state.interactions)
    passed = sum(1 for v in state.verifications if v.passed)
    result.verifications = (passed, len(state.verifications) - passed)
    result.findings += _missing_counterparties(prefix, counterparties or {})
    for proof in proofs:
        if proof.subject == subject and isinstance(proof, DoubleLockProof):
            result.findings.append(Finding(Discrepancy.DOUBLE_SPEND, None, proof.describe(), proof))
    result.findings += _false_answers(subject, prefix, answers, params)
    return result


def _served_corrupt(response: Mapping[str, Any] | None, seq: int | None) -> Proof | None:
    """A served-corrupt proof of the block at ``seq`` of the signed ``response``, if it proves it."""
    if response is None or seq is None:
        return None
    proof = ServedCorruptProof(dict(response), seq)
    try:
        proof.verify()
    except (InvalidProofError, KeyError, TypeError, AttributeError):
        return None
    return proof


def _missing_counterparties(blocks: list[Block], counterparties: Mapping[str, CounterpartyView]) -> list[Finding]:
    findings = []
    for block in blocks:
        if block.kind != BlockKind.TRANSFER:
            continue
        other = counterparties.get(block.payload["to"])
        if other is not None and other.last_time_ms > block.time_ms and block.hash not in other.accepted_proposals:
            findings.append(
                Finding(Discrepancy.MISSING_COUNTERPARTY, block.seq, f"{block.payload['to'][:12]} holds no agreement")
            )
    return findings


def _false_answers(subject: str, blocks: list[Block], answers: Iterable[Answer], params: Parameters) -> list[Finding]:
    findings = []
    for item in answers:
        s = item.statement
        head = s["head_seq"]
        if s["subject"] != subject or s["query"] not in CHAIN_QUERIES or item.confidence != Confidence.HIGH:
            continue
        if not 0 <= head < len(blocks) or not item.signed():
            continue
        state = ChainState(subject, params)
        for block in blocks[: head + 1]:
            state.apply(block)
        if state.head_hash.hex() == s["evidence"] and chain_value(state, s["query"]) != s["value"]:
            proof = FalseAnswerProof(item, tuple(blocks[: head + 1]))
            findings.append(Finding(Discrepancy.ATTESTATION_FALSE, head, proof.describe(), proof))
    return findings


def verify_published(result: Any, params: Parameters) -> list[dict[str, Any]]:
    """Check every proof of a published audit result with ``params`` alone (no chain, no network).

    Returns one entry per discrepancy: its kind, whether it carries a proof, whether that proof
    holds, whom it convicts and why it failed. Raises :class:`InvalidProofError` if the result is
    not a published audit.
    """
    if not isinstance(result, dict) or not isinstance(result.get("discrepancies"), list):
        raise InvalidProofError("not a published audit result (no discrepancies list)")
    checked = []
    for entry in result["discrepancies"]:
        if not isinstance(entry, dict):
            raise InvalidProofError("a discrepancy of the audit result is not a map")
        row: dict[str, Any] = {"kind": entry.get("kind"), "seq": entry.get("seq"), "proof": None}
        data = entry.get("proof_cbor")
        if isinstance(data, str):
            try:
                proof = verified_proof(decode(bytes.fromhex(data)), params)
            except (InvalidProofError, EncodingError, ValueError) as exc:
                row.update(proof="invalid", reason=str(exc))
            else:
                row.update(proof=proof.kind, verified=True, against=proof.subject, hash=proof.hash.hex())
        checked.append(row)
    return checked


def verify_finding(wire: Any, params: Parameters) -> Proof:
    """Check a published discrepancy's proof with no other data; raise :class:`InvalidProofError` if it fails."""
    if not isinstance(wire, dict) or not isinstance(wire.get("proof"), dict):
        raise InvalidProofError("discrepancy carries no proof")
    return verified_proof(wire["proof"], params)
