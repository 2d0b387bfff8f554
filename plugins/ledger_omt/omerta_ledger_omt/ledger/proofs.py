"""Misbehaviour proofs that any node can check on its own, with no trust in whoever relays them.

* A fork proof is two blocks signed by one key at one sequence with different
  hashes: the owner told two stories.
* A chain-rule proof is a prefix of one owner's chain (sequence 0 to n, all
  signed and linked) whose last block breaks a chain rule, such as a second escrow
  lock beyond the balance (the double lock) or a spend of locked funds.
* A double-lock proof is two lock requests signed by one consumer (spec 00's
  ``lock_request``) for different sessions, bound to one chain head, whose amounts
  together exceed the available balance the consumer itself stated at that head:
  the same funds promised twice. Two tries of one lock (same provider and amount,
  a retry after a timeout) are not one. It needs no chain to check.
* A served-corrupt proof (transaction 04) is a subject's signed ``CHAIN_RESPONSE`` to an auditor
  holding, at a named sequence, a block that does not verify as the subject's: what a node whose
  SQLite file was edited serves. The envelope signature shows the subject served it.
* A false-answer proof (:mod:`.state_query`) is a witness's signed HIGH-confidence
  answer about a chain and that chain up to the head it named, replaying to another
  value; it is against the witness.

Touches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

from omerta_core.identity import verify
from omerta_core.interfaces.common import PeerId
from omerta_ledger_omt.ledger import schema
from omerta_ledger_omt.ledger.blocks import Block
from omerta_ledger_omt.ledger.chainstate import ChainState, Parameters
from omerta_ledger_omt.ledger.encoding import hash_value
from omerta_ledger_omt.ledger.errors import ChainRuleError, InvalidBlockError, InvalidProofError
from omerta_ledger_omt.ledger.state_query import FalseAnswerProof, false_answer_from_wire
from omerta_ledger_omt.omt.runtime.values import canonical_bytes, digest

#: Longest chain prefix accepted as a chain-rule proof; a proof must stay small enough to gossip and check.
MAX_PROOF_BLOCKS = 4096


@dataclass(frozen=True)
class ForkProof:
    first: Block
    second: Block

    kind = "fork"

    @property
    def subject(self) -> str:
        return self.first.owner

    def verify(self, params: Parameters | None = None) -> None:
        a, b = self.first, self.second
        if a.owner != b.owner or a.seq != b.seq:
            raise InvalidProofError("fork proof blocks are not at one (key, sequence)")
        if a.hash == b.hash:
            raise InvalidProofError("fork proof holds the same block twice")

    def to_wire(self) -> dict[str, Any]:
        return {"kind": self.kind, "blocks": [self.first.to_wire(), self.second.to_wire()]}

    @property
    def hash(self) -> bytes:
        ordered = sorted([self.first.hash, self.second.hash])
        return hash_value({"kind": self.kind, "blocks": ordered})

    def describe(self) -> str:
        return f"fork: two different blocks at {self.first.ref}"


@dataclass(frozen=True)
class ChainRuleProof:
    blocks: tuple[Block, ...]

    kind = "chain_rule"

    @property
    def subject(self) -> str:
        return self.blocks[0].owner

    def verify(self, params: Parameters | None = None) -> None:
        """Replay the prefix: everything before the last block must pass and the last must fail."""
        if not self.blocks or len(self.blocks) > MAX_PROOF_BLOCKS:
            raise InvalidProofError(f"chain-rule proof must hold 1..{MAX_PROOF_BLOCKS} blocks")
        state = ChainState(self.subject, params or Parameters())
        try:
            for block in self.blocks[:-1]:
                state.apply(block)
        except ChainRuleError as exc:
            raise InvalidProofError(f"chain-rule proof breaks a rule before its last block: {exc}") from exc
        try:
            state.apply(self.blocks[-1])
        except ChainRuleError:
            return
        raise InvalidProofError(f"chain-rule proof's last block {self.blocks[-1].ref} breaks no rule")

    def reason(self, params: Parameters | None = None) -> str:
        state = ChainState(self.subject, params or Parameters())
        try:
            for block in self.blocks:
                state.apply(block)
        except ChainRuleError as exc:
            return str(exc)
        return "no rule broken"

    def to_wire(self) -> dict[str, Any]:
        return {"kind": self.kind, "blocks": [b.to_wire() for b in self.blocks]}

    @property
    def hash(self) -> bytes:
        return hash_value({"kind": self.kind, "blocks": [b.hash for b in self.blocks]})

    def describe(self) -> str:
        return f"chain rule broken at {self.blocks[-1].ref}"


#: The ``what`` of a lock request, so that no other signed value of spec 00 can pass for one.
LOCK_REQUEST = "lock_request"


def _hex_hash(value: Any) -> str | None:
    return None if isinstance(value, str) and len(value) == 64 and _is_hex(value) else "is not a hex hash"


def _is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return value == value.lower()


LOCK_REQUEST_SCHEMA = {
    "what": schema.Field(schema.one_of(LOCK_REQUEST)),
    "session_id": schema.Field(_hex_hash),
    "consumer": schema.PEER,
    "provider": schema.PEER,
    "amount": schema.AMOUNT,
    "hourly_rate": schema.COUNT,
    "head_seq": schema.COUNT,
    "head_hash": schema.Field(_hex_hash),
    "available": schema.COUNT,
}


@dataclass(frozen=True)
class SignedLockRequest:
    """A consumer's lock request of spec 00 and its signature over the runtime's canonical JSON of it."""

    request: dict[str, Any]
    signature: str

    @classmethod
    def from_wire(cls, obj: Any) -> SignedLockRequest:
        if not isinstance(obj, dict) or set(obj) != {"request", "signature"}:
            raise InvalidProofError("signed lock request is not a {request, signature} map")
        request, signature = obj["request"], obj["signature"]
        if not isinstance(request, dict) or not isinstance(signature, str):
            raise InvalidProofError("signed lock request holds no request map or no signature text")
        try:
            schema.check("lock request", request, LOCK_REQUEST_SCHEMA)
        except ValueError as exc:
            raise InvalidProofError(str(exc)) from exc
        return cls(dict(request), signature)

    def signed_by_consumer(self) -> bool:
        try:
            signature = bytes.fromhex(self.signature)
            return verify(PeerId(self.request["consumer"]), canonical_bytes(self.request), signature)
        except ValueError:
            return False

    def to_wire(self) -> dict[str, Any]:
        return {"request": self.request, "signature": self.signature}


#: Fields two lock requests share when they are tries of one lock (a retry after a timeout), not two locks.
RETRY_TERMS = ("consumer", "provider", "amount", "head_seq", "head_hash", "available")


def same_terms(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two lock requests are tries of one lock: same consumer, provider, amount, head and balance.

    Such a pair cannot lock the funds twice: the chain rules let one lock of ``amount`` at that head
    through and refuse (or prove) a second beyond the balance, and the one provider serves only locks
    on the consumer's chain. So a retry is not a double lock.
    """
    return all(a[key] == b[key] for key in RETRY_TERMS)


@dataclass(frozen=True)
class DoubleLockProof:
    first: SignedLockRequest
    second: SignedLockRequest

    kind = "double_lock"

    @property
    def subject(self) -> str:
        return str(self.first.request["consumer"])

    def verify(self, params: Parameters | None = None) -> None:
        a, b = self.first.request, self.second.request
        if a["consumer"] != b["consumer"]:
            raise InvalidProofError("double-lock proof requests come from two consumers")
        if a["session_id"] == b["session_id"]:
            raise InvalidProofError("double-lock proof requests are for one session")
        if (a["head_seq"], a["head_hash"]) != (b["head_seq"], b["head_hash"]):
            raise InvalidProofError("double-lock proof requests are bound to different chain heads")
        for which, signed in (("first", self.first), ("second", self.second)):
            if not signed.signed_by_consumer():
                raise InvalidProofError(f"double-lock proof's {which} request has a bad signature")
        if same_terms(a, b):
            raise InvalidProofError("double-lock proof requests are two tries of one lock (same provider and amount)")
        available = min(a["available"], b["available"])
        if a["amount"] + b["amount"] <= available:
            raise InvalidProofError(
                f"double-lock proof requests {a['amount']} + {b['amount']} fit the stated balance {available}"
            )

    def to_wire(self) -> dict[str, Any]:
        return {"kind": self.kind, "requests": [self.first.to_wire(), self.second.to_wire()]}

    @property
    def hash(self) -> bytes:
        ordered = sorted(bytes.fromhex(digest(r.to_wire())) for r in (self.first, self.second))
        return hash_value({"kind": self.kind, "requests": ordered})

    def describe(self) -> str:
        a, b = self.first.request, self.second.request
        return (
            f"double lock: {a['amount']} + {b['amount']} promised at head #{a['head_seq']} "
            f"with {min(a['available'], b['available'])} available"
        )


#: The spec 04 message whose signed copy a served-corrupt proof carries.
CHAIN_RESPONSE = "CHAIN_RESPONSE"
SERVED_FIELDS = ("type", "session", "sender", "payload")


@dataclass(frozen=True)
class ServedCorruptProof:
    """A subject's signed chain response (spec 04) with a block at ``seq`` that is not a valid block of it."""

    response: dict[str, Any]  # the envelope's signed part and its "signature"
    seq: int

    kind = "served_corrupt"

    @property
    def subject(self) -> str:
        return str(self.response["sender"])

    def _entry(self) -> Any:
        segment = self.response["payload"].get("segment")
        if not isinstance(segment, list):
            raise InvalidProofError("served-corrupt proof's response holds no segment")
        for entry in segment:
            if isinstance(entry, dict) and entry.get("seq") == self.seq:
                return entry
        raise InvalidProofError(f"served-corrupt proof's response holds no entry at sequence {self.seq}")

    def verify(self, params: Parameters | None = None) -> None:
        response = self.response
        if response["type"] != CHAIN_RESPONSE:
            raise InvalidProofError(f"served-corrupt proof carries a {response['type']}, not a {CHAIN_RESPONSE}")
        signed = {name: response[name] for name in SERVED_FIELDS}
        try:
            valid = verify(PeerId(self.subject), canonical_bytes(signed), bytes.fromhex(str(response["signature"])))
        except ValueError:
            valid = False
        if not valid:
            raise InvalidProofError("served-corrupt proof's response is not signed by its sender")
        entry = self._entry()
        try:
            block = Block.decode(bytes.fromhex(str(entry.get("block", ""))))
        except (InvalidBlockError, ValueError):
            return
        if block.owner != self.subject or block.seq != self.seq:
            return
        raise InvalidProofError(f"served-corrupt proof's block {block.ref} is a valid block of its sender")

    def to_wire(self) -> dict[str, Any]:
        return {"kind": self.kind, "response": dict(self.response), "seq": self.seq}

    @property
    def hash(self) -> bytes:
        return hash_value({"kind": self.kind, "response": digest(self.response), "seq": self.seq})

    def describe(self) -> str:
        return f"{self.subject[:12]} served a block at #{self.seq} that is not validly signed by it"


def _served_corrupt_from_wire(obj: dict[str, Any]) -> ServedCorruptProof:
    response, seq = obj.get("response"), obj.get("seq")
    if set(obj) != {"kind", "response", "seq"} or not isinstance(response, dict) or type(seq) is not int:
        raise InvalidProofError("served-corrupt proof is not a {kind, response, seq} map")
    if set(response) != {*SERVED_FIELDS, "signature"} or not isinstance(response["payload"], dict):
        raise InvalidProofError(f"served-corrupt proof's response fields must be {[*SERVED_FIELDS, 'signature']}")
    if schema.PEER.check(response["sender"]) or not isinstance(response["signature"], str):
        raise InvalidProofError("served-corrupt proof's response has no sender or no signature")
    return ServedCorruptProof(dict(response), seq)


Proof: TypeAlias = ForkProof | ChainRuleProof | DoubleLockProof | FalseAnswerProof | ServedCorruptProof


def proof_from_wire(obj: Any) -> Proof:
    """Parse a proof; every block inside is signature-checked. Call ``verify`` to check what it proves."""
    if isinstance(obj, dict) and obj.get("kind") == FalseAnswerProof.kind:
        return false_answer_from_wire(obj)
    if isinstance(obj, dict) and obj.get("kind") == ServedCorruptProof.kind:
        return _served_corrupt_from_wire(obj)
    if isinstance(obj, dict) and obj.get("kind") == DoubleLockProof.kind:
        if set(obj) != {"kind", "requests"} or not isinstance(obj["requests"], list) or len(obj["requests"]) != 2:
            raise InvalidProofError("double-lock proof is not a {kind, requests} map with two requests")
        first, second = (SignedLockRequest.from_wire(r) for r in obj["requests"])
        return DoubleLockProof(first, second)
    if not isinstance(obj, dict) or set(obj) != {"kind", "blocks"} or not isinstance(obj["blocks"], list):
        raise InvalidProofError("proof is not a {kind, blocks} map")
    try:
        blocks = tuple(Block.from_wire(b) for b in obj["blocks"][: MAX_PROOF_BLOCKS + 1])
    except InvalidBlockError as exc:
        raise InvalidProofError(f"proof holds an invalid block: {exc}") from exc
    if obj["kind"] == ForkProof.kind:
        if len(blocks) != 2:
            raise InvalidProofError("fork proof must hold exactly two blocks")
        return ForkProof(blocks[0], blocks[1])
    if obj["kind"] == ChainRuleProof.kind:
        return ChainRuleProof(blocks)
    raise InvalidProofError(f"unknown proof kind {obj['kind']!r}")


def verified_proof(obj: Any, params: Parameters) -> Proof:
    proof = proof_from_wire(obj)
    proof.verify(params)
    return proof
