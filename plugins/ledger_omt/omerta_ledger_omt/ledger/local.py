"""One identity's view of the ledger: its own chain, the chains it holds, balances, trust, witnessing.

:class:`LocalLedger` joins the chain store, the chain rules and the trust model
for one identity. Every block this identity appends is first applied to its own
replayed state, so the node never writes a block its peers would reject (no
overspend, no double lock). Time comes in as ``now_ms``. Touches the chain store.
"""

from __future__ import annotations

import contextlib
from typing import Any

from omerta_core.identity import Identity
from omerta_ledger_omt.ledger.blocks import GENESIS_PREV, Block, BlockKind
from omerta_ledger_omt.ledger.chainstate import ChainState, Parameters
from omerta_ledger_omt.ledger.claims import claimed_closures
from omerta_ledger_omt.ledger.errors import ChainRuleError, LedgerError
from omerta_ledger_omt.ledger.locks import lock_facts
from omerta_ledger_omt.ledger.proofs import Proof
from omerta_ledger_omt.ledger.settlement import check_settlement_body
from omerta_ledger_omt.ledger.statements import Statement, StatementKind, lock_witnesses
from omerta_ledger_omt.ledger.store import ChainStore
from omerta_ledger_omt.ledger.trust import TrustGraph, TrustModel, TrustParameters
from omerta_ledger_omt.ledger.trust_columns import TrustColumns, trust_all
from omerta_ledger_omt.ledger.witnesses import decide_lock


class LocalLedger:
    """The ledger as seen and written by ``identity``."""

    def __init__(self, identity: Identity, store: ChainStore, trust_params: TrustParameters | None = None) -> None:
        self.identity = identity
        self.me = str(identity.peer_id)
        self.store = store
        self.trust_params = trust_params or TrustParameters()
        self._trust_columns = TrustColumns()

    @property
    def params(self) -> Parameters:
        return self.store.params

    # -- own chain ---------------------------------------------------------------------

    def ensure_identity(self, now_ms: int) -> Block | None:
        """Write the identity block on first start; return it, or None when it exists."""
        if self.store.block(self.me, 0) is not None:
            return None
        return self.append(BlockKind.IDENTITY, {}, now_ms)

    def append(self, kind: BlockKind, payload: dict[str, Any], now_ms: int) -> Block:
        """Sign and store the next block of this identity's chain, refusing one that breaks a rule."""
        state = self.store.state(self.me)
        if self.store.max_seq(self.me) != state.head_seq:
            raise LedgerError("own chain holds a block that breaks a rule; refusing to append")
        prev = state.head_hash if state.head_seq >= 0 else GENESIS_PREV
        block = Block.create(self.identity, state.head_seq + 1, prev, kind, max(now_ms, state.last_time_ms), payload)
        state.apply(block)
        self.store.add(block)
        return block

    def mint(self, to: str, amount: int, now_ms: int) -> Block:
        return self.append(BlockKind.MINT, {"to": to, "amount": amount}, now_ms)

    def transfer(self, to: str, amount: int, now_ms: int) -> Block:
        return self.append(BlockKind.TRANSFER, {"to": to, "amount": amount}, now_ms)

    def agree(self, proposal: Block, now_ms: int) -> Block:
        """Accept a mint or transfer proposal addressed to this identity (the agreement half block)."""
        with contextlib.suppress(LedgerError):  # keeping the proposer's half is a courtesy, not a condition
            self.store.add(proposal)
        return self.append(BlockKind.AGREEMENT, {"proposal": proposal.to_wire()}, now_ms)

    def burn(self, amount: int, now_ms: int) -> Block:
        return self.append(BlockKind.BURN, {"amount": amount}, now_ms)

    def checkpoint(self, now_ms: int, peers: list[str] | None = None) -> Block:
        """Record the heads this node holds of other peers' chains."""
        heads = [h for h in self.store.heads() if h.owner != self.me and (peers is None or h.owner in peers)]
        if not heads:
            raise LedgerError("no other chain held to checkpoint")
        return self.append(BlockKind.CHECKPOINT, {"heads": [[h.owner, h.seq, h.hash] for h in heads]}, now_ms)

    def record_lock(self, lock: Statement, now_ms: int) -> Block:
        return self.append(BlockKind.ESCROW_LOCK, {"lock": lock.to_wire()}, now_ms)

    def record_topup(self, topup: Statement, now_ms: int) -> Block:
        return self.append(BlockKind.ESCROW_TOPUP, {"topup": topup.to_wire()}, now_ms)

    def record_settlement(self, settlement: Statement, now_ms: int) -> Block:
        return self.append(BlockKind.ESCROW_SETTLE, {"settlement": settlement.to_wire()}, now_ms)

    def record_release(self, release: Statement, now_ms: int) -> Block:
        return self.append(BlockKind.ESCROW_RELEASE, {"release": release.to_wire()}, now_ms)

    def record_payment(self, lock: Statement, settlement: Statement, now_ms: int) -> Block:
        payload = {"lock": lock.to_wire(), "settlement": settlement.to_wire()}
        return self.append(BlockKind.ESCROW_PAYMENT, payload, now_ms)

    def accuse(self, subject: str, reason: str, now_ms: int, proof: Proof | None = None) -> Block:
        payload: dict[str, Any] = {"subject": subject, "reason": reason}
        if proof is not None:
            self.store.add_proof(proof, now_ms)
            payload["proof"] = proof.to_wire()
        return self.append(BlockKind.ACCUSATION, payload, now_ms)

    # -- witnessing ------------------------------------------------------------------------

    def witness_lock(self, lock: Statement, now_ms: int) -> Statement:
        """Sign a lock statement as one of its witnesses, or raise with the refusal reason."""
        if lock.kind != StatementKind.LOCK:
            raise LedgerError(f"asked to witness a {lock.kind} statement as a lock")
        witnesses, _threshold = lock_witnesses(lock)
        if self.me not in witnesses:
            raise LedgerError("this node is not a witness of the lock")
        consumer = lock.body["consumer"]
        pending = [
            amount for session, amount in self.store.witnessed_pending(consumer) if session != lock.body["session_id"]
        ]
        decision = decide_lock(self.store.state(consumer), lock.body["amount"], pending)
        if not decision.accept:
            raise LedgerError(
                f"lock refused: {decision.reason} (available {decision.available}, "
                f"{decision.pending} pending in other locks this witness signed)"
            )
        self.store.record_witnessed_lock(lock.body["session_id"], consumer, lock.body["amount"], lock.hash, now_ms)
        signed = lock.signed_by(self.identity)
        self.append(
            BlockKind.WITNESS_COMMITMENT,
            {
                "session_id": lock.body["session_id"],
                "lock": lock.hash,
                "consumer": consumer,
                "provider": lock.body["provider"],
                "amount": lock.body["amount"],
            },
            now_ms,
        )
        return signed

    def witness_statement(self, statement: Statement, lock: Statement | dict[str, Any], now_ms: int) -> Statement:
        """Sign a top-up, settlement or release of a lock this node witnessed, after checking it.

        ``lock`` is the lock evidence in either form (:mod:`.locks`).
        """
        facts = lock_facts(lock.to_wire() if isinstance(lock, Statement) else lock, self.params.witness_threshold)
        if self.me not in facts.witnesses:
            raise LedgerError("this node is not a witness of the lock")
        if statement.body.get("lock") != facts.lock_hash or statement.body.get("session_id") != facts.session_id:
            raise LedgerError(f"{statement.kind} statement does not belong to the lock")
        consumer = facts.consumer
        if statement.kind == StatementKind.SETTLEMENT:
            check_settlement_body(statement.body)
        elif statement.kind == StatementKind.TOPUP:
            decision = decide_lock(self.store.state(consumer), statement.body["amount"], [])
            if not decision.accept:
                raise LedgerError(f"top-up refused: {decision.reason} (available {decision.available})")
        elif statement.kind != StatementKind.RELEASE:
            raise LedgerError(f"a witness does not sign {statement.kind} statements this way")
        return statement.signed_by(self.identity)

    # -- reading ------------------------------------------------------------------------------

    def state(self, peer: str) -> ChainState:
        return self.store.state(peer)

    def balance(self, peer: str) -> int:
        return self.store.state(peer).balance

    def trust_model(self, now_ms: int) -> TrustModel:
        graph = TrustGraph.from_states(
            self.store.states().values(), self.store.proof_counts(), now_ms, self.trust_params
        )
        return TrustModel(graph, self.trust_params)

    def trust_all(self, now_ms: int) -> dict[str, float]:
        """``T(me, ·)`` over every held chain, evaluated over arrays that re-read only the chains that grew."""
        self._trust_columns.update(self.store.states().values(), complete=True)
        return trust_all(self._trust_columns, self.me, self.store.proof_counts(), now_ms, self.trust_params)

    def trust(self, peer: str, now_ms: int) -> float:
        return self.trust_all(now_ms).get(peer, 0.0)

    def explain_trust(self, peer: str, now_ms: int) -> dict[str, Any]:
        return self.trust_model(now_ms).explain(self.me, peer, now_ms)

    def verify_all(self) -> dict[str, Any]:
        """Re-check every held block's signature and every chain's rules; report problems by owner."""
        problems: dict[str, str] = {}
        checked = 0
        for owner in self.store.owners():
            expected_prev = GENESIS_PREV
            state = ChainState(owner, self.params)
            for raw in self.store.raw_blocks(owner, 0, 1 << 62, 1 << 30):
                checked += 1
                try:
                    block = Block.decode(raw)
                    if block.seq == state.head_seq + 1 and block.prev == expected_prev:
                        state.apply(block)
                        expected_prev = block.hash
                except (LedgerError, ChainRuleError) as exc:
                    problems.setdefault(owner, str(exc))
                    break
        return {
            "blocks_checked": checked,
            "chains": len(self.store.owners()),
            "problems": problems,
            "proofs": len(self.store.proofs()),
            "sqlite_integrity": self.store.integrity_check(),
        }


def supply_audit(states: dict[str, ChainState]) -> dict[str, int]:
    """Where every minted unit is, across the chains held: held, locked, burned or in flight.

    ``unaccounted`` is zero when no value appeared or disappeared except by mint and burn
    (and every counterparty chain involved is held). A lock its provider claimed (spec 02's claim,
    :mod:`.claims`) counts as closed by the claim: its refund held by the consumer, its burn burned,
    its payment already on the provider's chain.
    """
    closures = claimed_closures(states).values()
    accepted: set[bytes] = set()
    for state in states.values():
        accepted |= state.accepted_proposals
    paid: set[bytes] = set()
    for state in states.values():
        paid |= state.paid_sessions
    minted = sum(state.minted_accepted for state in states.values())
    held = sum(state.balance for state in states.values()) + sum(c.refund for c in closures)
    locked = sum(state.locked for state in states.values()) - sum(c.total for c in closures)
    burned = sum(state.burned for state in states.values()) + sum(c.burn for c in closures)
    transfers_in_flight = sum(
        amount
        for state in states.values()
        for proposal, (kind, _to, amount) in state.proposals.items()
        if kind == BlockKind.TRANSFER and proposal not in accepted
    )
    payments_in_flight = sum(
        amount
        for state in states.values()
        for session, (_provider, amount) in state.payments_out.items()
        if session not in paid
    )
    accounted = held + locked + burned + transfers_in_flight + payments_in_flight
    return {
        "minted": minted,
        "held": held,
        "locked": locked,
        "burned": burned,
        "transfers_in_flight": transfers_in_flight,
        "payments_in_flight": payments_in_flight,
        "unaccounted": minted - accounted,
    }
