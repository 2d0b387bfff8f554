"""Misbehaviour proofs that any node can check on its own, with no trust in whoever relays them.

* A fork proof is two blocks signed by one key at one sequence with different
  hashes: the owner told two stories.
* A chain-rule proof is a prefix of one owner's chain (sequence 0 to n, all
  signed and linked) whose last block breaks a chain rule, such as a second escrow
  lock beyond the balance (the double lock) or a spend of locked funds.

Touches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omerta_ledger_omt.ledger.blocks import Block
from omerta_ledger_omt.ledger.chainstate import ChainState, Parameters
from omerta_ledger_omt.ledger.encoding import hash_value
from omerta_ledger_omt.ledger.errors import ChainRuleError, InvalidBlockError, InvalidProofError

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


Proof = ForkProof | ChainRuleProof


def proof_from_wire(obj: Any) -> Proof:
    """Parse a proof; every block inside is signature-checked. Call ``verify`` to check what it proves."""
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
