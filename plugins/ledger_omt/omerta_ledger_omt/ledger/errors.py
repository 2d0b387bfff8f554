"""The ledger's error types: one base class, each failure carrying a one-line reason.

Touches nothing.
"""

from __future__ import annotations

from omerta_core.errors import OmertaError


class LedgerError(OmertaError):
    """Anything the ledger refuses; the message says why in one line."""


class EncodingError(LedgerError, ValueError):
    """Bytes or values that are not in the ledger's canonical encoding."""


class InvalidBlockError(LedgerError):
    """A block whose hash, signature, link or payload does not check out."""


class InvalidStatementError(LedgerError):
    """A multi-signed statement (lock, top-up, settlement, release) that does not check out."""


class ChainRuleError(LedgerError):
    """A block that is well formed but breaks the balance or escrow rules of its chain."""


class InvalidProofError(LedgerError):
    """A fork or misbehaviour proof that does not prove what it claims."""


class ForkDetectedError(LedgerError):
    """A second, different block at a (key, sequence) already held: the proof is attached."""

    def __init__(self, message: str, proof: object) -> None:
        super().__init__(message)
        self.proof = proof
