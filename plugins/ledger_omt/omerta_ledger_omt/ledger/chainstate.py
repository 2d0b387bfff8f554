"""Replaying one identity's chain: balance, escrow locks, and the facts trust is computed from.

:class:`ChainState` applies an owner's blocks in sequence order and enforces the
chain rules: links and monotonic time, no spending or locking beyond the
available balance (existing locks count against it, which is how a double lock
shows up), agreements that accept a real proposal addressed to the owner once,
mints only from a mint authority, and escrow blocks carrying witness-signed
statements whose arithmetic checks out. A block that breaks a rule raises
:class:`ChainRuleError`; every rule checks everything before its first change, so
a refused block leaves the state as it was. Touches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omerta_ledger_omt.ledger.blocks import GENESIS_PREV, PROPOSAL_KINDS, Block, BlockKind
from omerta_ledger_omt.ledger.errors import ChainRuleError, InvalidBlockError, InvalidStatementError
from omerta_ledger_omt.ledger.locks import OmtTopup, lock_facts, topup_evidence
from omerta_ledger_omt.ledger.settlement import check_settlement_body
from omerta_ledger_omt.ledger.settlements import SettlementEvidence, check_parties, settlement_evidence
from omerta_ledger_omt.ledger.statements import Statement, StatementKind

#: WITNESS_COUNT and WITNESS_THRESHOLD of transaction 00: five witnesses, three must sign.
WITNESS_COUNT = 5
WITNESS_THRESHOLD = 3


@dataclass(frozen=True)
class Parameters:
    """Network-wide rules every observer applies when replaying chains."""

    mint_authorities: frozenset[str] = frozenset()
    witness_count: int = WITNESS_COUNT
    witness_threshold: int = WITNESS_THRESHOLD


@dataclass
class EscrowLock:
    session_id: bytes
    lock_hash: bytes
    consumer: str
    provider: str
    total: int
    witnesses: list[str]
    threshold: int
    evidence: Any = None


@dataclass(frozen=True)
class Interaction:
    """A verified two-party transaction, seen from the chain of ``owner`` (the truster)."""

    counterparty: str
    value: int
    time_ms: int
    kind: str


#: How a witness's ``verification`` block from a misuse trial begins its detail: a guilty consumer, a false accuser
#: (a session's attestation carries ``duration_ms`` and may begin with the same termination reason).
MISUSE_VERDICT_DETAILS = ("CONSUMER_MISUSE", "FALSE_ACCUSATION")


@dataclass(frozen=True)
class VerificationFact:
    """A ``verification`` block: the owner (a witness) checked ``subject`` in a session.

    ``check`` is ``"session"`` for the attested session itself and ``"trial"`` for a misuse trial's verdict
    in it: the two are different findings, so the session's end does not overwrite the trial's.
    """

    subject: str
    session_id: bytes
    passed: bool
    time_ms: int
    check: str = "session"


@dataclass(frozen=True)
class AssertionFact:
    """A ``trust_assertion`` block: the owner's signed opinion of ``subject`` in thousandths (-1000..1000)."""

    subject: str
    score_milli: int
    reason: str
    time_ms: int


@dataclass(frozen=True)
class CheckFact:
    """A ``check_result`` block (transaction 05): the owner, a cabal member, checked ``subject``."""

    subject: str
    session_id: bytes
    checked_at_ms: int
    clean: bool


@dataclass
class ChainState:
    """What one owner's chain says, replayed up to ``head_seq``."""

    owner: str
    params: Parameters
    head_seq: int = -1
    head_hash: bytes = GENESIS_PREV
    genesis_ms: int | None = None
    last_time_ms: int = 0
    balance: int = 0
    locks: dict[bytes, EscrowLock] = field(default_factory=dict)
    closed_sessions: set[bytes] = field(default_factory=set)
    paid_sessions: set[bytes] = field(default_factory=set)
    accepted_proposals: set[bytes] = field(default_factory=set)
    proposals: dict[bytes, tuple[str, str, int]] = field(default_factory=dict)
    minted_accepted: int = 0
    burned: int = 0
    payments_out: dict[bytes, tuple[str, int]] = field(default_factory=dict)
    settled: dict[bytes, tuple[Any, Any]] = field(default_factory=dict)
    #: Provider's chain: each paid session's lock and settlement evidence (a claim closes an abandoned lock).
    payments: dict[bytes, tuple[Any, Any]] = field(default_factory=dict)
    checkpoints: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    interactions: list[Interaction] = field(default_factory=list)
    accusations: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    assertions: list[AssertionFact] = field(default_factory=list)
    verifications: list[VerificationFact] = field(default_factory=list)
    checks: list[CheckFact] = field(default_factory=list)
    #: The first time this chain recorded each other identity: what its identity age is measured from.
    mentions: dict[str, int] = field(default_factory=dict)

    @property
    def locked(self) -> int:
        return sum(lock.total for lock in self.locks.values())

    def apply(self, block: Block) -> None:
        """Apply the next block, or raise and leave the state as it was."""
        if block.owner != self.owner:
            raise ChainRuleError(f"block {block.ref} is not on the chain of {self.owner[:12]}")
        if block.seq != self.head_seq + 1 or block.prev != self.head_hash:
            raise ChainRuleError(f"block {block.ref} does not link to head #{self.head_seq}")
        if block.time_ms < self.last_time_ms:
            raise ChainRuleError(f"block {block.ref} is older than its predecessor")
        try:
            _RULES[block.kind](self, block)
        except (InvalidBlockError, InvalidStatementError) as exc:
            raise ChainRuleError(f"block {block.ref}: {exc}") from exc
        self.head_seq, self.head_hash, self.last_time_ms = block.seq, block.hash, block.time_ms

    def available(self) -> int:
        return self.balance

    def _saw(self, peer: str, time_ms: int) -> None:
        """This chain records ``peer`` at ``time_ms``: evidence, from someone else, that ``peer`` existed then."""
        if peer != self.owner and time_ms < self.mentions.get(peer, time_ms + 1):
            self.mentions[peer] = time_ms

    # -- rules, one per block kind; each checks everything before changing anything ----------

    def _identity(self, block: Block) -> None:
        self.genesis_ms = block.time_ms

    def _checkpoint(self, block: Block) -> None:
        heads = block.payload["heads"]
        if any(peer == self.owner for peer, _, _ in heads):
            raise ChainRuleError(f"checkpoint {block.ref} records its own chain")
        for peer, seq, head in heads:
            self.checkpoints[peer] = (seq, head)
            self._saw(peer, block.time_ms)

    def _mint(self, block: Block) -> None:
        if self.owner not in self.params.mint_authorities:
            raise ChainRuleError(f"mint {block.ref} by {self.owner[:12]}, who is not a mint authority")
        self._propose(block)

    def _transfer(self, block: Block) -> None:
        self._check_addressee(block)
        self._spend(block, block.payload["amount"], "transfer")
        self._propose(block)

    def _check_addressee(self, block: Block) -> None:
        if block.payload["to"] == self.owner:
            raise ChainRuleError(f"{block.kind} {block.ref} is addressed to its own owner")

    def _propose(self, block: Block) -> None:
        self._check_addressee(block)
        self.proposals[block.hash] = (str(block.kind), block.payload["to"], block.payload["amount"])
        self._saw(block.payload["to"], block.time_ms)

    def _agreement(self, block: Block) -> None:
        proposal = Block.from_wire(block.payload["proposal"])
        if proposal.kind not in PROPOSAL_KINDS:
            raise ChainRuleError(f"agreement {block.ref} accepts a {proposal.kind}, not a proposal")
        if proposal.payload["to"] != self.owner:
            raise ChainRuleError(f"agreement {block.ref} accepts a proposal addressed to someone else")
        if proposal.kind == BlockKind.MINT and proposal.owner not in self.params.mint_authorities:
            raise ChainRuleError(f"agreement {block.ref} accepts a mint from a non-authority")
        if proposal.hash in self.accepted_proposals:
            raise ChainRuleError(f"agreement {block.ref} accepts proposal {proposal.ref} a second time")
        amount = proposal.payload["amount"]
        self.accepted_proposals.add(proposal.hash)
        self._saw(proposal.owner, block.time_ms)
        self.balance += amount
        if proposal.kind == BlockKind.MINT:
            self.minted_accepted += amount
        else:
            self.interactions.append(Interaction(proposal.owner, amount, block.time_ms, "transfer"))

    def _burn(self, block: Block) -> None:
        self._spend(block, block.payload["amount"], "burn")
        self.burned += block.payload["amount"]

    def _spend(self, block: Block, amount: int, what: str) -> None:
        if amount > self.balance:
            raise ChainRuleError(
                f"{what} {block.ref} of {amount} exceeds the available balance {self.balance} "
                f"({self.locked} locked in escrow)"
            )
        self.balance -= amount

    def _escrow_lock(self, block: Block) -> None:
        facts = lock_facts(block.payload["lock"], self.params.witness_threshold)
        if facts.consumer != self.owner:
            raise ChainRuleError(f"escrow lock {block.ref} locks funds of another consumer")
        session = facts.session_id
        if session in self.locks or session in self.closed_sessions:
            raise ChainRuleError(f"escrow lock {block.ref} reuses session {session.hex()[:16]}")
        if facts.amount > self.balance:
            raise ChainRuleError(
                f"double lock: escrow lock {block.ref} of {facts.amount} exceeds the available balance "
                f"{self.balance} ({self.locked} already locked in {len(self.locks)} escrow(s))"
            )
        self.balance -= facts.amount
        self._saw(facts.provider, block.time_ms)
        self.locks[session] = EscrowLock(
            session, facts.lock_hash, self.owner, facts.provider, facts.amount, facts.witnesses, facts.threshold,
            block.payload["lock"],
        )  # fmt: skip

    def _open_lock(self, block: Block, statement: Statement | SettlementEvidence | OmtTopup) -> EscrowLock:
        session = statement.body["session_id"]
        lock = self.locks.get(session)
        if lock is None:
            raise ChainRuleError(f"{block.kind} {block.ref} refers to session {session.hex()[:16]}, not locked here")
        if statement.body["lock"] != lock.lock_hash:
            raise ChainRuleError(f"{block.kind} {block.ref} names another lock of its session")
        statement.verify(lock.witnesses, lock.threshold)
        return lock

    def _escrow_topup(self, block: Block) -> None:
        topup = topup_evidence(block.payload["topup"])
        lock = self._open_lock(block, topup)
        amount = topup.body["amount"]
        if topup.body["new_total"] != lock.total + amount:
            raise ChainRuleError(f"top-up {block.ref} new total does not equal the old total plus the top-up")
        self._spend(block, amount, "top-up")
        lock.total += amount

    def _escrow_settle(self, block: Block) -> None:
        settlement = settlement_evidence(block.payload["settlement"])
        lock = self._open_lock(block, settlement)
        check_parties(settlement, lock.consumer, lock.provider)
        body = settlement.body
        if body["escrow_total"] != lock.total:
            raise ChainRuleError(f"settlement {block.ref} settles {body['escrow_total']}, the lock holds {lock.total}")
        check_settlement_body(body)
        del self.locks[lock.session_id]
        self.closed_sessions.add(lock.session_id)
        self.balance += body["refund"]
        self.burned += body["burn"]
        self.payments_out[lock.session_id] = (lock.provider, body["provider_payment"])
        self.settled[lock.session_id] = (lock.evidence, block.payload["settlement"])
        paid = body["provider_payment"] + body["burn"]
        self.interactions.append(Interaction(lock.provider, paid, block.time_ms, "session"))

    def _escrow_release(self, block: Block) -> None:
        release = _statement(block.payload["release"], StatementKind.RELEASE)
        lock = self._open_lock(block, release)
        del self.locks[lock.session_id]
        self.closed_sessions.add(lock.session_id)
        self.balance += lock.total

    def _escrow_payment(self, block: Block) -> None:
        facts = lock_facts(block.payload["lock"], self.params.witness_threshold)
        if facts.provider != self.owner:
            raise ChainRuleError(f"payment {block.ref} claims a session of another provider")
        settlement = settlement_evidence(block.payload["settlement"])
        body = settlement.body
        if body["lock"] != facts.lock_hash or body["session_id"] != facts.session_id:
            raise ChainRuleError(f"payment {block.ref} settlement does not belong to its lock")
        check_parties(settlement, facts.consumer, facts.provider)
        settlement.verify(facts.witnesses, facts.threshold)
        check_settlement_body(body)
        if body["session_id"] in self.paid_sessions:
            raise ChainRuleError(f"payment {block.ref} claims session {body['session_id'].hex()[:16]} twice")
        self.paid_sessions.add(body["session_id"])
        self.payments[body["session_id"]] = (block.payload["lock"], block.payload["settlement"])
        self._saw(facts.consumer, block.time_ms)
        self.balance += body["provider_payment"]
        paid = body["provider_payment"] + body["burn"]
        self.interactions.append(Interaction(facts.consumer, paid, block.time_ms, "session"))

    def _record(self, block: Block) -> None:
        payload = block.payload
        for key in ("subject", "counterparty", "consumer", "provider"):
            if key in payload:
                self._saw(payload[key], block.time_ms)
        if block.kind == BlockKind.ACCUSATION:
            self.accusations.append((payload["subject"], payload["reason"], payload.get("proof")))
        elif block.kind == BlockKind.TRUST_ASSERTION:
            self.assertions.append(
                AssertionFact(payload["subject"], payload["score_milli"], payload["reason"], block.time_ms)
            )
        elif block.kind == BlockKind.VERIFICATION:
            verdict = "duration_ms" not in payload and str(payload.get("detail", "")).startswith(MISUSE_VERDICT_DETAILS)
            check = "trial" if verdict else "session"
            self.verifications.append(
                VerificationFact(payload["subject"], payload["session_id"], payload["passed"], block.time_ms, check)
            )
        elif block.kind == BlockKind.CHECK_RESULT:
            self.checks.append(
                CheckFact(payload["subject"], payload["session_id"], payload["checked_at_ms"], payload["clean"])
            )


def _statement(wire: Any, kind: StatementKind) -> Statement:
    statement = Statement.from_wire(wire)
    if statement.kind != kind:
        raise ChainRuleError(f"expected a {kind} statement, got {statement.kind}")
    return statement


_RULES = {
    BlockKind.IDENTITY: ChainState._identity,
    BlockKind.CHECKPOINT: ChainState._checkpoint,
    BlockKind.MINT: ChainState._mint,
    BlockKind.TRANSFER: ChainState._transfer,
    BlockKind.AGREEMENT: ChainState._agreement,
    BlockKind.BURN: ChainState._burn,
    BlockKind.ESCROW_LOCK: ChainState._escrow_lock,
    BlockKind.ESCROW_TOPUP: ChainState._escrow_topup,
    BlockKind.ESCROW_SETTLE: ChainState._escrow_settle,
    BlockKind.ESCROW_RELEASE: ChainState._escrow_release,
    BlockKind.ESCROW_PAYMENT: ChainState._escrow_payment,
    BlockKind.WITNESS_COMMITMENT: ChainState._record,
    BlockKind.VM_SESSION: ChainState._record,
    BlockKind.VERIFICATION: ChainState._record,
    BlockKind.TRUST_ASSERTION: ChainState._record,
    BlockKind.ACCUSATION: ChainState._record,
    BlockKind.STATE_ATTESTATION: ChainState._record,
    BlockKind.AUDIT_RESULT: ChainState._record,
    BlockKind.CHECK_RESULT: ChainState._record,
}


def replay(owner: str, blocks: list[Block], params: Parameters) -> ChainState:
    """Replay ``blocks`` (sequence 0 onward, in order) into a fresh state; raise at the first broken rule."""
    state = ChainState(owner, params)
    for block in blocks:
        state.apply(block)
    return state
