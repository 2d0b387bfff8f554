"""Transaction 05's inputs as this node holds them: a subject's last health check and its suspicion.

Every honest observer computes the same numbers from the same chains: the check results cabal
members recorded (``check_result`` blocks, counted once per check session and only when
:data:`CHECK_THRESHOLD` members' signed votes agree on them, so one member cannot fake a check), the
proofs held against the subject (each offence a ``proven`` event at the time the first block showing
it was written, however many auditors proved it), failed verifications by witnesses and accusations
without proof (weighted by this observer's trust in their authors). The formula is
:mod:`.suspicion` (docs/ledger.md §7.3).
Touches the chain store (reads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omerta_core.identity import verify
from omerta_core.interfaces.common import PeerId
from omerta_ledger_omt.ledger.blocks import BlockKind
from omerta_ledger_omt.ledger.chainstate import CheckFact
from omerta_ledger_omt.ledger.proofs import ChainRuleProof, ForkProof, Proof, ServedCorruptProof
from omerta_ledger_omt.ledger.store import ChainStore
from omerta_ledger_omt.ledger.suspicion import SuspicionEvent, suspicion
from omerta_ledger_omt.omt.runtime.values import canonical_bytes

#: Agreeing members a check result needs (spec 05's CHECK_THRESHOLD).
CHECK_THRESHOLD = 3

#: The ``what`` of a cabal member's signed vote (spec 05's ``vote_statement``).
CHECK_VOTE = "check_vote"


@dataclass(frozen=True)
class Check:
    """One health check of a subject as the chains held here record it."""

    session_id: bytes
    checked_at_ms: int
    clean: bool


def vote_signed(vote: Any, session: str, subject: str) -> bool:
    """Whether ``vote`` (a ``check_result`` vote entry) is its member's valid signature of its verdict."""
    if not isinstance(vote, dict):
        return False
    statement = {
        "what": CHECK_VOTE,
        "session_id": session,
        "subject": subject,
        "clean": vote.get("clean"),
        "audit_hash": vote.get("audit_hash"),
    }
    try:
        signature = bytes.fromhex(str(vote["signature"]))
        return verify(PeerId(str(vote.get("member"))), canonical_bytes(statement), signature)
    except (ValueError, KeyError, TypeError):
        return False


def checks(store: ChainStore, subject: str) -> list[Check]:
    """The subject's health checks whose result a threshold of signed votes backs, one per session, by time."""
    found: dict[bytes, Check] = {}
    for owner in store.owners():
        if owner == subject:
            continue
        state = store.state(owner)
        for fact in state.checks:
            if fact.subject != subject or not _backed(store, owner, fact):
                continue
            known = found.get(fact.session_id)  # members record one check at moments apart: the earliest counts
            if known is None or fact.checked_at_ms < known.checked_at_ms:
                found[fact.session_id] = Check(fact.session_id, fact.checked_at_ms, fact.clean)
    return sorted(found.values(), key=lambda c: c.checked_at_ms)


def _backed(store: ChainStore, owner: str, fact: CheckFact) -> bool:
    for block in store.blocks(owner):
        payload = block.payload
        if block.kind == BlockKind.CHECK_RESULT and payload["session_id"] == fact.session_id:
            session = fact.session_id.hex()
            agreeing = {
                v["member"]
                for v in payload["votes"]
                if v.get("clean") == fact.clean and vote_signed(v, session, fact.subject)
            }
            return len(agreeing) >= CHECK_THRESHOLD
    return False


def last_check_ms(store: ChainStore, subject: str) -> int | None:
    found = checks(store, subject)
    return found[-1].checked_at_ms if found else None


def offence(proof: Proof) -> tuple[str, object]:
    """What a proof shows, so that several proofs of one offence (each auditor's own) count once."""
    if isinstance(proof, ServedCorruptProof):
        return proof.kind, proof.seq
    if isinstance(proof, ForkProof):
        return proof.kind, proof.first.seq
    if isinstance(proof, ChainRuleProof):
        return proof.kind, proof.blocks[-1].seq
    return proof.kind, proof.hash


def suspicion_of(
    store: ChainStore, subject: str, now_ms: int, credibility: Callable[[str], float], extra: tuple[Check, ...] = ()
) -> float:
    """The subject's suspicion at ``now_ms`` from the chains held here (and ``extra`` checks not recorded yet).

    ``credibility`` is this observer's trust in an author, in [0, 1].
    """
    # replaying the chains first keeps the proofs their accusations and audit results carry
    states = [store.state(owner) for owner in store.owners() if owner != subject]
    offences: dict[tuple[str, object], int] = {}
    unknown_ms = store.state(subject).last_time_ms  # a proof received bare: as recent as the subject's chain
    for found_ms, proof in store.proofs_found(subject):
        offences.setdefault(offence(proof), found_ms or unknown_ms)
    events = [SuspicionEvent("proven", t) for t in offences.values()]
    for state in states:
        owner = state.owner
        for fact in state.verifications:
            if fact.subject == subject and not fact.passed:
                events.append(SuspicionEvent("failed_verification", fact.time_ms, credibility(owner)))
        for accused, _reason, proof in state.accusations:
            if accused == subject and proof is None:  # its chain records no time per fact: its last block's
                events.append(SuspicionEvent("unproven_accusation", state.last_time_ms, credibility(owner)))
    found = {c.session_id: c for c in (*checks(store, subject), *extra)}.values()
    # an unclean check backed by a threshold of the cabal counts as a failed verification by a fully
    # credible witness; the proofs its audit published count on their own (above, once held)
    events += [SuspicionEvent("failed_verification", c.checked_at_ms) for c in found if not c.clean]
    return suspicion(events, [c.checked_at_ms for c in found if c.clean], now_ms)
