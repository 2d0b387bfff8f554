"""Witness selection that both parties recompute, and the witness's decision on a lock request.

Selection: the candidates are the peers named in the provider's checkpoint
blocks up to a checkpoint the consumer already knew (so the provider could not
stage identities for this session), minus both parties. The seed is
``SHA-256(SEED_DOMAIN || session_id || provider_nonce || consumer_nonce)`` and each
candidate is ranked by ``SHA-256(seed || candidate public key)``; the lowest
``count`` ranks win. Only SHA-256 and byte order are involved, so any language
reproduces it (the original used Python's ``random.Random``). Trust is local to
each observer and cannot be a shared input, so the original's high-trust quota
becomes a consumer-side policy check on the recomputed set.

Decision: a witness signs a lock only when the consumer's chain, as the witness
holds it, shows an available balance (already net of the locks on the chain)
that covers the amount plus every lock this witness signed that has not reached
the chain yet. Touches nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from omerta_core.interfaces.common import PeerId
from omerta_ledger_omt.ledger.chainstate import WITNESS_COUNT, ChainState
from omerta_ledger_omt.ledger.errors import LedgerError

SEED_DOMAIN = b"omerta-ledger/witness-seed/v1\x00"


def selection_seed(session_id: bytes, provider_nonce: bytes, consumer_nonce: bytes) -> bytes:
    return hashlib.sha256(SEED_DOMAIN + session_id + provider_nonce + consumer_nonce).digest()


def select_witnesses(
    candidates: Iterable[str],
    seed: bytes,
    exclude: Iterable[str],
    count: int = WITNESS_COUNT,
) -> list[str]:
    """The ``count`` candidates with the lowest seeded rank, in rank order."""
    excluded = set(exclude)
    pool = sorted(set(candidates) - excluded)
    if len(pool) < count:
        raise LedgerError(f"only {len(pool)} witness candidates at the checkpoint, {count} needed")
    ranked = sorted(pool, key=lambda peer: hashlib.sha256(seed + PeerId(peer).public_key).digest())
    return ranked[:count]


def verify_selection(
    claimed: list[str],
    candidates: Iterable[str],
    seed: bytes,
    exclude: Iterable[str],
    count: int = WITNESS_COUNT,
) -> None:
    """Raise unless ``claimed`` is exactly the recomputed selection (as a set)."""
    expected = select_witnesses(candidates, seed, exclude, count)
    if set(claimed) != set(expected) or len(claimed) != len(expected):
        raise LedgerError("the witness set differs from the one recomputed from the checkpoint and nonces")


@dataclass(frozen=True)
class LockDecision:
    accept: bool
    reason: str
    available: int
    pending: int


def decide_lock(consumer_state: ChainState, amount: int, pending_signed: Iterable[int]) -> LockDecision:
    """Whether a witness may sign a lock of ``amount`` on ``consumer_state``'s funds."""
    pending = sum(pending_signed)
    available = consumer_state.available() - pending
    if consumer_state.head_seq < 0:
        return LockDecision(False, "no_chain_knowledge", 0, pending)
    if amount > available:
        reason = "double_lock" if pending or consumer_state.locks else "insufficient_balance"
        return LockDecision(False, reason, available, pending)
    return LockDecision(True, "ok", available, pending)
