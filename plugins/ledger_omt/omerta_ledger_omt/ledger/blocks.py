"""Blocks: one signed, hash-linked entry in one identity's chain, and the kinds of fact a block records.

A block's body is ``{v, owner, seq, prev, kind, time_ms, payload}``; its hash is
SHA-256 of the body's canonical encoding; the owner signs ``BLOCK_DOMAIN + hash``.
Sequence 0 is the owner's identity block with ``prev`` all zeros. Two-party
facts are TrustChain half blocks: a *proposal* (mint, transfer) on one chain and
an *agreement* on the counterparty's chain that embeds the signed proposal, so
the agreement alone proves both halves. Touches nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from omerta_core.identity import Identity, verify
from omerta_core.interfaces.common import PeerId
from omerta_ledger_omt.ledger import schema
from omerta_ledger_omt.ledger.encoding import HASH_BYTES, canonical, decode, digest
from omerta_ledger_omt.ledger.errors import EncodingError, InvalidBlockError

#: Version of the block body layout; a block with another version is refused.
BLOCK_VERSION = 1

#: Prefix of every signed block hash, so a block signature can never pass for a statement signature.
BLOCK_DOMAIN = b"omerta-ledger/block/v1\x00"

#: ``prev`` of every identity block.
GENESIS_PREV = bytes(HASH_BYTES)

SIGNATURE_BYTES = 64


class BlockKind(enum.StrEnum):
    IDENTITY = "identity"
    CHECKPOINT = "checkpoint"
    MINT = "mint"
    TRANSFER = "transfer"
    AGREEMENT = "agreement"
    BURN = "burn"
    ESCROW_LOCK = "escrow_lock"
    ESCROW_TOPUP = "escrow_topup"
    ESCROW_SETTLE = "escrow_settle"
    ESCROW_RELEASE = "escrow_release"
    ESCROW_PAYMENT = "escrow_payment"
    WITNESS_COMMITMENT = "witness_commitment"
    VM_SESSION = "vm_session"
    VERIFICATION = "verification"
    TRUST_ASSERTION = "trust_assertion"
    ACCUSATION = "accusation"
    # spec 03 (state query)
    STATE_ATTESTATION = "state_attestation"
    # transactions 04 and 05 (stream 17b): an auditor's published audit, a cabal member's health check
    AUDIT_RESULT = "audit_result"
    CHECK_RESULT = "check_result"


#: Proposals an agreement may accept.
PROPOSAL_KINDS = frozenset({BlockKind.MINT, BlockKind.TRANSFER})

PAYLOAD_SCHEMAS: dict[BlockKind, dict[str, schema.Field]] = {
    BlockKind.IDENTITY: {"name": schema.optional(schema.TEXT)},
    BlockKind.CHECKPOINT: {"heads": schema.HEADS},
    BlockKind.MINT: {"to": schema.PEER, "amount": schema.AMOUNT, "memo": schema.optional(schema.TEXT)},
    BlockKind.TRANSFER: {"to": schema.PEER, "amount": schema.AMOUNT, "memo": schema.optional(schema.TEXT)},
    BlockKind.AGREEMENT: {"proposal": schema.MAP},
    BlockKind.BURN: {"amount": schema.AMOUNT},
    BlockKind.ESCROW_LOCK: {"lock": schema.MAP},
    BlockKind.ESCROW_TOPUP: {"topup": schema.MAP},
    BlockKind.ESCROW_SETTLE: {"settlement": schema.MAP},
    BlockKind.ESCROW_RELEASE: {"release": schema.MAP},
    BlockKind.ESCROW_PAYMENT: {"lock": schema.MAP, "settlement": schema.MAP},
    BlockKind.WITNESS_COMMITMENT: {
        "session_id": schema.HASH,
        "lock": schema.HASH,
        "consumer": schema.PEER,
        "provider": schema.PEER,
        "amount": schema.AMOUNT,
    },
    BlockKind.VM_SESSION: {
        "session_id": schema.HASH,
        "counterparty": schema.PEER,
        "role": schema.Field(schema.one_of("consumer", "provider")),
        "event": schema.Field(schema.one_of("start", "end")),
        "duration_ms": schema.optional(schema.COUNT),
        "reason": schema.optional(schema.TEXT),
    },
    BlockKind.VERIFICATION: {
        "subject": schema.PEER,
        "session_id": schema.HASH,
        "passed": schema.FLAG,
        "detail": schema.optional(schema.TEXT),
        "duration_ms": schema.optional(schema.COUNT),
    },
    BlockKind.TRUST_ASSERTION: {
        "subject": schema.PEER,
        "score_milli": schema.SCORE,
        "reason": schema.TEXT,
        "evidence": schema.optional(schema.HASHES),
    },
    BlockKind.ACCUSATION: {
        "subject": schema.PEER,
        "reason": schema.TEXT,
        "proof": schema.optional(schema.MAP),
    },
    # spec 03: the requester's record of what a threshold of witnesses agreed on, with their signed answers
    BlockKind.STATE_ATTESTATION: {
        "session_id": schema.HASH,
        "subject": schema.PEER,
        "query": schema.Field(schema.one_of("balance", "chain_head", "chain_length", "age", "trust")),
        "value": schema.STATE_VALUE,
        "confidence": schema.Field(schema.one_of("HIGH", "MEDIUM", "LOW")),
        "answers": schema.MAPS,
    },
    # transactions 04 and 05 (stream 17b)
    BlockKind.AUDIT_RESULT: {
        "subject": schema.PEER,
        "session_id": schema.HASH,
        "result": schema.MAP,
        "result_hash": schema.HASH,
    },
    BlockKind.CHECK_RESULT: {
        "subject": schema.PEER,
        "session_id": schema.HASH,
        "checked_at_ms": schema.COUNT,
        "clean": schema.FLAG,
        "audit_hash": schema.HASH,
        "suspicion_milli": schema.COUNT,
        "votes": schema.MAPS,
    },
}


@dataclass(frozen=True)
class Block:
    """One block of ``owner``'s chain at sequence ``seq``."""

    owner: PeerId
    seq: int
    prev: bytes
    kind: BlockKind
    time_ms: int
    payload: dict[str, Any]
    signature: bytes

    @staticmethod
    def body_of(
        owner: str, seq: int, prev: bytes, kind: BlockKind, time_ms: int, payload: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "v": BLOCK_VERSION,
            "owner": str(owner),
            "seq": seq,
            "prev": prev,
            "kind": str(kind),
            "time_ms": time_ms,
            "payload": payload,
        }

    @classmethod
    def create(
        cls,
        identity: Identity,
        seq: int,
        prev: bytes,
        kind: BlockKind,
        time_ms: int,
        payload: dict[str, Any],
    ) -> Block:
        """Build and sign a block; the payload is checked against its kind's schema first."""
        _check_payload(kind, payload)
        body_hash = digest(canonical(cls.body_of(identity.peer_id, seq, prev, kind, time_ms, payload)))
        signature = identity.sign(BLOCK_DOMAIN + body_hash)
        block = cls(identity.peer_id, seq, prev, kind, time_ms, dict(payload), signature)
        block.__dict__["hash"] = body_hash
        return block

    @cached_property
    def hash(self) -> bytes:
        return digest(canonical(self.body_of(self.owner, self.seq, self.prev, self.kind, self.time_ms, self.payload)))

    def verify(self) -> None:
        """Raise :class:`InvalidBlockError` unless the structure, payload and owner's signature check out."""
        if self.seq < 0:
            raise InvalidBlockError(f"block of {self.owner.short} has negative sequence {self.seq}")
        if self.seq == 0 and (self.kind != BlockKind.IDENTITY or self.prev != GENESIS_PREV):
            raise InvalidBlockError(f"block 0 of {self.owner.short} is not an identity block with a zero prev")
        if self.seq > 0 and self.kind == BlockKind.IDENTITY:
            raise InvalidBlockError(f"identity block of {self.owner.short} at sequence {self.seq}, not 0")
        if not verify(self.owner, BLOCK_DOMAIN + self.hash, self.signature):
            raise InvalidBlockError(f"block {self.owner.short}#{self.seq} has a bad signature")

    @property
    def ref(self) -> str:
        """``owner-short#seq`` for messages and logs."""
        return f"{self.owner.short}#{self.seq}"

    def to_wire(self) -> dict[str, Any]:
        body = self.body_of(self.owner, self.seq, self.prev, self.kind, self.time_ms, self.payload)
        return {**body, "sig": self.signature}

    def encode(self) -> bytes:
        return canonical(self.to_wire())

    @classmethod
    def from_wire(cls, obj: Any, *, check_signature: bool = True) -> Block:
        """Parse a wire map and verify the block; raise :class:`InvalidBlockError` with the reason.

        ``check_signature=False`` is only for blocks read back from this node's own
        store, which verified them on the way in.
        """
        if not isinstance(obj, dict):
            raise InvalidBlockError("block is not a map")
        expected = {"v", "owner", "seq", "prev", "kind", "time_ms", "payload", "sig"}
        if set(obj) != expected:
            raise InvalidBlockError(f"block fields are {sorted(obj)}, want {sorted(expected)}")
        if obj["v"] != BLOCK_VERSION:
            raise InvalidBlockError(f"block version {obj['v']!r} is not {BLOCK_VERSION}")
        if schema.PEER.check(obj["owner"]):
            raise InvalidBlockError("block owner is not a peer id")
        if type(obj["seq"]) is not int or type(obj["time_ms"]) is not int or min(obj["seq"], obj["time_ms"]) < 0:
            raise InvalidBlockError("block seq and time_ms must be non-negative integers")
        if not isinstance(obj["prev"], bytes) or len(obj["prev"]) != HASH_BYTES:
            raise InvalidBlockError("block prev is not a 32-byte hash")
        if not isinstance(obj["sig"], bytes) or len(obj["sig"]) != SIGNATURE_BYTES:
            raise InvalidBlockError("block signature is not 64 bytes")
        try:
            kind = BlockKind(obj["kind"])
        except ValueError as exc:
            raise InvalidBlockError(f"unknown block kind {obj['kind']!r}") from exc
        _check_payload(kind, obj["payload"])
        block = cls(PeerId(obj["owner"]), obj["seq"], obj["prev"], kind, obj["time_ms"], obj["payload"], obj["sig"])
        if check_signature:
            block.verify()
        return block

    @classmethod
    def decode(cls, data: bytes, *, check_signature: bool = True) -> Block:
        """Decode and verify block bytes; raise only :class:`InvalidBlockError`."""
        if not isinstance(data, bytes):
            raise InvalidBlockError(f"block is {type(data).__name__}, not bytes")
        try:
            return cls.from_wire(decode(data), check_signature=check_signature)
        except EncodingError as exc:
            raise InvalidBlockError(f"block bytes: {exc}") from exc


def _check_payload(kind: BlockKind, payload: Any) -> None:
    try:
        schema.check(f"{kind} payload", payload, PAYLOAD_SCHEMAS[kind])
    except ValueError as exc:
        raise InvalidBlockError(str(exc)) from exc
