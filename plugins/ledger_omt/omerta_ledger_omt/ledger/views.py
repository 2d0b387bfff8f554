"""What ``omerta ledger`` shows, computed from a :class:`LocalLedger`: used by control methods and the offline CLI.

Touches the chain store (reads; replaying may record proofs).
"""

from __future__ import annotations

from typing import Any

from omerta_ledger_omt.ledger.audit import audit_chain, verify_published
from omerta_ledger_omt.ledger.backend import block_summary, now_ms
from omerta_ledger_omt.ledger.blocks import Block, BlockKind
from omerta_ledger_omt.ledger.chainstate import Parameters
from omerta_ledger_omt.ledger.claims import claimed_closures
from omerta_ledger_omt.ledger.encoding import decode
from omerta_ledger_omt.ledger.errors import EncodingError, InvalidBlockError, InvalidProofError, LedgerError
from omerta_ledger_omt.ledger.local import LocalLedger, supply_audit
from omerta_ledger_omt.ledger.omt_host import ChainLedgerView
from omerta_ledger_omt.ledger.suspicion import due

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
    """Each owner's balance, locked escrow and burn as the chains held here show them (with the supply audit
    when no peer is named). A lock its provider claimed counts as closed by the claim (:mod:`.claims`)."""
    owners = [peer] if peer else ledger.store.owners()
    states = {owner: ledger.state(owner) for owner in owners}
    closures = list(claimed_closures(ledger.store.states()).values())
    result: dict[str, Any] = {
        "balances": {
            owner: {
                "balance": s.balance + sum(c.refund for c in closures if c.consumer == owner),
                "locked": s.locked - sum(c.total for c in closures if c.consumer == owner),
                "burned": s.burned + sum(c.burn for c in closures if c.consumer == owner),
                "head_seq": s.head_seq,
            }
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


def suspicion(ledger: LocalLedger, peer: str, base_ms: int, at_ms: int | None = None) -> dict[str, Any]:
    """Transaction 05's view of ``peer`` here (now, or at ``at_ms``): suspicion, last check, interval, due."""
    view = ChainLedgerView(ledger, now_ms() if at_ms is None else at_ms)
    level = view.suspicion(peer)
    last = view.read(peer, "last_health_check_at")
    state = due(None if last is None else int(last * 1000), level, view.now_ms, base_ms)
    return {
        "peer": peer,
        "suspicion": round(level, 6),
        "last_check_at": last,
        "interval_s": state.interval_ms / 1000,
        "due": state.due,
        "reason": state.reason(),
        "proofs": len(ledger.store.proofs(peer)),
    }


def verify_audit(params: Parameters, audit: Any) -> dict[str, Any]:
    """Check a published audit with ``params`` alone: an ``audit_result`` block (hex) or a result map.

    A block is also checked for its auditor's signature. Each discrepancy is listed with whether its
    proof holds and whom it convicts.
    """
    auditor = None
    if isinstance(audit, str):
        try:
            block = Block.decode(bytes.fromhex(audit))
        except (InvalidBlockError, ValueError) as exc:
            raise LedgerError(f"not an audit_result block: {exc}") from exc
        if block.kind != BlockKind.AUDIT_RESULT:
            raise LedgerError(f"block {block.ref} is a {block.kind}, not an audit_result")
        auditor, audit = str(block.owner), block.payload["result"]
    try:
        checked = verify_published(audit, params)
    except InvalidProofError as exc:
        raise LedgerError(str(exc)) from exc
    subject = audit.get("subject") if isinstance(audit, dict) else None
    return {
        "auditor": auditor,
        "subject": subject,
        "discrepancies": checked,
        "proven": sum(1 for row in checked if row.get("verified")),
        "invalid": sum(1 for row in checked if row.get("proof") == "invalid"),
    }
