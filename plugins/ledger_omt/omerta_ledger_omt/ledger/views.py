"""What ``omerta ledger`` shows, computed from a :class:`LocalLedger`: used by control methods and the offline CLI.

Touches the chain store (reads; replaying may record proofs).
"""

from __future__ import annotations

from typing import Any

from omerta_ledger_omt.ledger.audit import audit_chain
from omerta_ledger_omt.ledger.backend import block_summary, now_ms
from omerta_ledger_omt.ledger.encoding import decode
from omerta_ledger_omt.ledger.errors import EncodingError
from omerta_ledger_omt.ledger.local import LocalLedger, supply_audit

#: Most blocks one ``show`` returns unless asked for more.
DEFAULT_SHOW_LIMIT = 50


def show(ledger: LocalLedger, peer: str | None, start: int = 0, limit: int = DEFAULT_SHOW_LIMIT) -> dict[str, Any]:
    owner = peer or ledger.me
    head = ledger.store.head(owner)
    blocks = ledger.store.blocks(owner, start, limit=limit)
    return {
        "owner": owner,
        "head": None if head is None else {"seq": head.seq, "hash": head.hash.hex()},
        "held_max_seq": ledger.store.max_seq(owner),
        "blocks": [block_summary(b) for b in blocks],
    }


def balances(ledger: LocalLedger, peer: str | None) -> dict[str, Any]:
    owners = [peer] if peer else ledger.store.owners()
    states = {owner: ledger.state(owner) for owner in owners}
    result: dict[str, Any] = {
        "balances": {
            owner: {"balance": s.balance, "locked": s.locked, "burned": s.burned, "head_seq": s.head_seq}
            for owner, s in states.items()
        }
    }
    if not peer:
        result["supply"] = supply_audit(ledger.store.states())
    return result


def trust(ledger: LocalLedger, peer: str) -> dict[str, Any]:
    return ledger.explain_trust(peer, now_ms())


def verify(ledger: LocalLedger) -> dict[str, Any]:
    report = ledger.verify_all()
    report["proofs_by_subject"] = ledger.store.proof_counts()
    return report


def audit(ledger: LocalLedger, peer: str) -> dict[str, Any]:
    """Transaction 04's audit of ``peer``'s chain as this node holds it, against everything else it holds."""
    served: list[Any] = []
    for raw in ledger.store.raw_blocks(peer, 0, 1 << 62, 1 << 30):
        try:
            served.append(decode(raw))
        except EncodingError:
            served.append(None)
    counterparties = {owner: ledger.state(owner) for owner in ledger.store.owners() if owner != peer}
    result = audit_chain(peer, served, ledger.params, counterparties=counterparties, proofs=ledger.store.proofs(peer))
    return result.summary()
