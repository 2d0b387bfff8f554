"""Building the statements of an escrow's life: lock, top-up, settlement, release.

These are the values transactions 00 (escrow lock and top-up) and 02 (settle)
pass around and witnesses sign; the chain rules in :mod:`.chainstate` check
them again when they land on a chain. Touches nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from omerta_ledger_omt.ledger.chainstate import WITNESS_THRESHOLD
from omerta_ledger_omt.ledger.locks import LockFacts
from omerta_ledger_omt.ledger.settlement import K_PAYMENT_MILLI, agreed_trust_milli, split_settlement
from omerta_ledger_omt.ledger.statements import Statement, StatementKind

SESSION_DOMAIN = b"omerta-ledger/session/v1\x00"


def session_id_for(consumer: str, provider: str, consumer_nonce: bytes) -> bytes:
    """A session id both parties can recompute; the consumer's fresh nonce keeps it unique."""
    return hashlib.sha256(SESSION_DOMAIN + consumer.encode() + b"\x00" + provider.encode() + consumer_nonce).digest()


def lock_statement(
    session_id: bytes,
    consumer: str,
    provider: str,
    amount: int,
    witnesses: list[str],
    expires_ms: int,
    threshold: int = WITNESS_THRESHOLD,
) -> Statement:
    body = {
        "session_id": session_id,
        "consumer": consumer,
        "provider": provider,
        "amount": amount,
        "witnesses": list(witnesses),
        "threshold": threshold,
        "expires_ms": expires_ms,
    }
    return Statement.create(StatementKind.LOCK, body)


def topup_statement(lock: Statement, current_total: int, amount: int) -> Statement:
    body = {
        "session_id": lock.body["session_id"],
        "lock": lock.hash,
        "amount": amount,
        "new_total": current_total + amount,
    }
    return Statement.create(StatementKind.TOPUP, body)


def settlement_statement(
    lock: Statement | LockFacts,
    escrow_total: int,
    duration_ms: int,
    hourly_rate: int,
    trust_reports_milli: Iterable[int],
    k_payment_milli: int = K_PAYMENT_MILLI,
) -> Statement:
    """The settlement every witness computes identically from the same inputs."""
    session_id, lock_hash = (
        (lock.body["session_id"], lock.hash)
        if isinstance(lock, Statement)
        else (
            lock.session_id,
            lock.lock_hash,
        )
    )
    trust = agreed_trust_milli(trust_reports_milli)
    split = split_settlement(escrow_total, duration_ms, hourly_rate, trust, k_payment_milli)
    body = {
        "session_id": session_id,
        "lock": lock_hash,
        "escrow_total": escrow_total,
        "duration_ms": duration_ms,
        "hourly_rate": hourly_rate,
        "provider_trust_milli": trust,
        "k_payment_milli": k_payment_milli,
        "provider_payment": split.provider_payment,
        "burn": split.burn,
        "refund": split.refund,
    }
    return Statement.create(StatementKind.SETTLEMENT, body)


def release_statement(lock: Statement, reason: str) -> Statement:
    body = {"session_id": lock.body["session_id"], "lock": lock.hash, "reason": reason}
    return Statement.create(StatementKind.RELEASE, body)
