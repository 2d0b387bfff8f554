"""What the runtime asks of its host: a signer and a read-only ledger view.

:class:`MemoryLedger` is a small in-memory ledger for ``omerta omt run`` and tests; the
real ledger plugin implements :class:`LedgerView` over its chains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from omerta_ledger_omt.omt.runtime.values import digest


class Signer(Protocol):
    """This peer's identity (``omerta_core.identity.Identity`` fits)."""

    @property
    def peer_id(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


class LedgerView(Protocol):
    """Read-only questions a spec may ask about chains (deterministic for a given view)."""

    def read(self, peer: str, key: str) -> Any:
        """What this peer's ledger knows about ``peer``: e.g. ``head_hash``, ``balance``, ``trust``."""

    def chain_head(self) -> str:
        """Hash of this peer's newest block."""

    def chain_segment(self, from_hash: str) -> list[dict[str, Any]]:
        """This peer's blocks from ``from_hash`` (inclusive) to the head; empty if unknown."""

    def verify_segment(self, peer: str, segment: list[dict[str, Any]]) -> bool:
        """True when the segment's blocks link up and belong to ``peer``."""


GENESIS_PREV = "0" * 64


@dataclass
class MemoryLedger:
    """One peer's chain plus what it knows about others, in memory."""

    owner: str
    knowledge: dict[str, dict[str, Any]] = field(default_factory=dict)
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.blocks:
            self.append("GENESIS", {"owner": self.owner}, 0.0)

    def append(self, block_type: str, payload: dict[str, Any], now: float) -> dict[str, Any]:
        prev = self.blocks[-1]["hash"] if self.blocks else GENESIS_PREV
        body = {"owner": self.owner, "seq": len(self.blocks), "prev": prev, "type": block_type, "time": now,
                "payload": payload}  # fmt: skip
        block = {**body, "hash": digest(body)}
        self.blocks.append(block)
        return block

    def read(self, peer: str, key: str) -> Any:
        return self.knowledge.get(peer, {}).get(key)

    def chain_head(self) -> str:
        return str(self.blocks[-1]["hash"])

    def chain_segment(self, from_hash: str) -> list[dict[str, Any]]:
        for i, b in enumerate(self.blocks):
            if b["hash"] == from_hash:
                return [dict(x) for x in self.blocks[i:]]
        return []

    def verify_segment(self, peer: str, segment: list[dict[str, Any]]) -> bool:
        if not segment:
            return False
        for i, block in enumerate(segment):
            body = {k: v for k, v in block.items() if k != "hash"}
            if block.get("owner") != peer or digest(body) != block.get("hash"):
                return False
            if i and block.get("prev") != segment[i - 1]["hash"]:
                return False
        return True
