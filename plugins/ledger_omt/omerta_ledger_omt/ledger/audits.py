"""Transactions 04 (state audit) and 05 (health check) between nodes: their natives and their requests.

:class:`AuditHost` gives the engine the natives the two specs declare and runs their local requests
on a :class:`~.transactions.TransactionRunner`:

* ``audit_chain`` audits the segment the subject served (:func:`.audit.audit_chain`) against
  every block, proof and counterparty chain held here and the counterparties' confirmations, and
  returns the published result: each discrepancy with its proof whole, so anyone checks it offline.
  The signed spec 03 answers about the subject that ``state_attestation`` blocks held here carry are
  checked too: a HIGH one the replay disproves is proven false against its witness.
  The subject's signed ``CHAIN_RESPONSE`` is kept per session as it arrives, so a block in it that
  does not verify is proven against the subject (a served-corrupt proof).
* ``halves_held`` is a counterparty's answer: which of the subject's proposals its own chain agreed
  to, and how far its chain goes.
* ``run_audit`` is the audit a cabal member ran (as the auditor of a spec 04 session) when the
  ``CHECK_TRIGGER`` arrived and before it was delivered; ``suspicion_after`` the subject's suspicion
  with this check counted (:mod:`.health`).

:meth:`AuditHost.audit` and :meth:`AuditHost.health_check` are the ``ledger.audit_peer`` and
``ledger.health_check`` requests. Touches what the runner touches (the transport, the chain store).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omerta_ledger_omt.ledger.audit import CounterpartyView, audit_chain
from omerta_ledger_omt.ledger.blocks import BlockKind
from omerta_ledger_omt.ledger.encoding import decode
from omerta_ledger_omt.ledger.errors import EncodingError, InvalidProofError, LedgerError
from omerta_ledger_omt.ledger.health import Check
from omerta_ledger_omt.ledger.local import LocalLedger
from omerta_ledger_omt.ledger.omt_host import AUDIT_CHANNEL, CHECK_CHANNEL, ChainLedgerView
from omerta_ledger_omt.ledger.state_query import Answer
from omerta_ledger_omt.ledger.suspicion import due
from omerta_ledger_omt.ledger.witnesses import select_witnesses
from omerta_ledger_omt.omt.runtime import ActorInstance, Envelope, NativeContext, NativeRegistry, standard_natives

if TYPE_CHECKING:
    from omerta_ledger_omt.ledger.transactions import TransactionRunner

#: Seconds an audit may take: spec 04 waits 60 s for the chain and 60 s for the counterparties.
AUDIT_WAIT_S = 150.0
#: Seconds a health check may take: spec 05's cabal waits CHECK_TIMEOUT = 180 s for votes after auditing.
CHECK_WAIT_S = 360.0
#: Members of a cabal chosen when the request names none (spec 05 needs CHECK_THRESHOLD = 3 to agree).
CABAL_SIZE = 3
#: Most counterparties an audit asks (each one that does not answer costs COUNTERPARTY_TIMEOUT).
MAX_COUNTERPARTIES = 8
#: Outcomes after which the requests stop waiting (see engine.SPECS).
AUDIT_DONE = frozenset({"audited"})
CHECK_DONE = frozenset({"checked", "refused"})


@dataclass(frozen=True)
class Halves:
    """A counterparty's confirmation as the audit uses it (:class:`.audit.CounterpartyView`)."""

    last_time_ms: int
    accepted_proposals: set[bytes]


class AuditHost:
    """Specs 04 and 05 on one node's transaction runner."""

    def __init__(self, ledger: LocalLedger, check_base_ms: int) -> None:
        self.ledger = ledger
        self.check_base_ms = check_base_ms
        self.runner: TransactionRunner | None = None
        self.responses: dict[str, dict[str, Any]] = {}  # audit session -> the subject's signed CHAIN_RESPONSE
        self.audits: dict[str, dict[str, Any]] = {}  # check session -> the audit this member ran for it
        self._auditing: set[str] = set()  # check sessions whose audit runs now

    def natives(self) -> dict[str, NativeRegistry]:
        base = standard_natives()
        return {
            AUDIT_CHANNEL: base.with_natives({"audit_chain": self._audit_chain, "halves_held": self._halves_held}),
            CHECK_CHANNEL: base.with_natives({"run_audit": self._run_audit, "suspicion_after": self._suspicion_after}),
        }

    def _runner(self) -> TransactionRunner:
        if self.runner is None:
            raise LedgerError("audits need the transaction runner")
        return self.runner

    def forget(self, channel: str, instance: ActorInstance) -> None:
        if channel == AUDIT_CHANNEL:
            self.responses.pop(instance.session, None)
        elif channel == CHECK_CHANNEL:
            self.audits.pop(instance.session, None)

    # -- natives ----------------------------------------------------------------------------

    def _audit_chain(self, ctx: NativeContext, subject: Any, segment: Any, confirmations: Any) -> dict[str, Any]:
        store = self.ledger.store
        subject = str(subject)
        served = [_served_block(entry) for entry in segment or []]
        counterparties: dict[str, CounterpartyView] = {o: store.state(o) for o in store.owners() if o != subject}
        for confirmation in confirmations or []:
            halves = _halves(confirmation.get("halves") if isinstance(confirmation, dict) else None)
            if halves is not None:
                counterparties[str(confirmation["counterparty"])] = halves
        result = audit_chain(
            subject,
            served,
            self.ledger.params,
            held=store.blocks(subject),
            counterparties=counterparties,
            proofs=store.proofs(subject),
            answers=attested_answers(self.ledger, subject),
            response=self.responses.get(ctx.session),
        )
        return {**result.published(), "answered": True}

    def _halves_held(self, ctx: NativeContext, subject: Any, segment: Any) -> dict[str, Any]:
        mine = self.ledger.state(self.ledger.me)
        agreed = []
        for entry in segment or []:
            block_hash = entry.get("hash") if isinstance(entry, dict) else None
            if isinstance(block_hash, str) and _hex_bytes(block_hash) in mine.accepted_proposals:
                agreed.append(block_hash)
        return {"last_time_ms": mine.last_time_ms, "agreed": agreed}

    def _run_audit(self, ctx: NativeContext, subject: Any) -> dict[str, Any]:
        found = self.audits.get(ctx.session)
        if found is not None and found.get("answered"):
            return found
        # non-response is evidence: an audit that got no chain is not clean
        missing = {"kind": "subject_did_not_answer", "seq": None, "detail": "no chain within the audit's wait"}
        return {"subject": str(subject), "answered": False, "discrepancies": [missing]}

    def _suspicion_after(self, ctx: NativeContext, subject: Any, clean: Any, checked_at: Any) -> float:
        view = ChainLedgerView(self.ledger, int(float(checked_at) * 1000))
        check = Check(bytes.fromhex(ctx.session), int(float(checked_at) * 1000), bool(clean))
        return view.suspicion(str(subject), (check,))

    # -- what arrives before the engine sees it ---------------------------------------------------

    async def before_receive(self, channel: str, envelope: Envelope) -> None:
        """Keep a subject's signed chain response (04); audit the subject before a check trigger is delivered (05)."""
        engine = self._runner().engine
        if channel == AUDIT_CHANNEL and envelope.type == "CHAIN_RESPONSE":
            auditor = engine.instance(AUDIT_CHANNEL, envelope.session, "Auditor")
            if auditor is not None and auditor.store.get("subject") == envelope.sender and envelope.signature:
                self.responses[envelope.session] = {**envelope.signed_part(), "signature": envelope.signature}
        elif channel == CHECK_CHANNEL and envelope.type == "CHECK_TRIGGER":
            await self._audit_for_check(envelope)

    async def _audit_for_check(self, envelope: Envelope) -> None:
        session, payload = envelope.session, envelope.payload
        subject = payload.get("subject")
        engine = self._runner().engine
        if (
            session in self._auditing
            or session in self.audits
            or engine.instance(CHECK_CHANNEL, session, "Cabal") is not None
            or not isinstance(subject, str)
            or subject == self.ledger.me
            or self.ledger.me not in (payload.get("cabal") or [])
            or not self.is_due(subject)
        ):
            return  # the spec refuses (or ignores) it without an audit
        self._auditing.add(session)
        try:
            outcome = await self.audit(subject)
            self.audits[session] = outcome["result"] or {}
        except LedgerError as exc:
            self._runner().log.info("audit for a health check failed", peer=subject[:12], reason=str(exc))
        finally:
            self._auditing.discard(session)

    def is_due(self, subject: str) -> bool:
        """Spec 05's ``SHOULD_CHECK`` as this node sees it now."""
        view = ChainLedgerView(self.ledger, self._runner().now_ms())
        last = view.read(subject, "last_health_check_at")
        last_ms = None if last is None else int(last * 1000)
        return due(last_ms, view.suspicion(subject), view.now_ms, self.check_base_ms).due

    # -- requests ------------------------------------------------------------------------------

    def counterparties_of(self, subject: str) -> list[str]:
        """Whom an audit asks: the peers the subject's chain (as held here) transferred to, that this node knows."""
        known = set(self.ledger.store.owners()) - {subject, self.ledger.me}
        named = {b.payload["to"] for b in self.ledger.store.blocks(subject) if b.kind == BlockKind.TRANSFER} & known
        return sorted(named)[:MAX_COUNTERPARTIES]

    async def audit(
        self, subject: str, counterparties: list[str] | None = None, timeout: float = AUDIT_WAIT_S
    ) -> dict[str, Any]:
        """Run spec 04 as the auditor of ``subject``; return the published result and the block recording it."""
        runner = self._runner()
        if subject == self.ledger.me:
            raise LedgerError("a node does not audit itself between nodes; use `omerta ledger audit` on its chain")
        asked = self.counterparties_of(subject) if counterparties is None else counterparties
        inputs = {"subject": subject, "counterparties": asked}
        session, actions = runner.engine.open(AUDIT_CHANNEL, "Auditor", "audit", inputs, runner.now_ms() / 1000)
        instance = await runner.follow(AUDIT_CHANNEL, session, "Auditor", actions, AUDIT_DONE, timeout)
        store = instance.store
        block = self._own_block(BlockKind.AUDIT_RESULT, session)
        if block is not None:  # its proofs count here at once (others keep them when they sync this chain)
            self.ledger.store.keep_audit_proofs(block)
        return {
            "session": session,
            "state": instance.state,
            "subject": subject,
            "counterparties": asked,
            "confirmations": len(store.get("confirmations") or []),
            "failure_reason": store.get("failure_reason"),
            "result": store.get("result"),
            "block": None if block is None else block.encode().hex(),
        }

    def _own_block(self, kind: BlockKind, session: str) -> Any:
        wanted = _hex_bytes(session)
        for block in reversed(self.ledger.store.blocks(self.ledger.me)):
            if block.kind == kind and block.payload.get("session_id") == wanted:
                return block
        return None

    def default_cabal(self, subject: str) -> list[str]:
        """A cabal for ``subject`` when the request names none: chains held here, ranked by a seed of the subject."""
        candidates = self.ledger.store.owners()
        seed = hashlib.sha256(b"omerta-ledger/cabal/v1\x00" + subject.encode()).digest()
        return select_witnesses(candidates, seed, [subject, self.ledger.me], CABAL_SIZE)

    async def health_check(
        self, subject: str, cabal: list[str] | None = None, timeout: float = CHECK_WAIT_S
    ) -> dict[str, Any]:
        """Run spec 05 as the initiator: prove ``subject`` is due and ask the cabal to check it."""
        runner = self._runner()
        members = cabal or self.default_cabal(subject)
        view = ChainLedgerView(self.ledger, runner.now_ms())
        before = {"suspicion": view.suspicion(subject), "last_check_at": view.read(subject, "last_health_check_at")}
        inputs = {"subject": subject, "cabal": members}
        session, actions = runner.engine.open(
            CHECK_CHANNEL, "Initiator", "request_check", inputs, runner.now_ms() / 1000
        )
        instance = await runner.follow(CHECK_CHANNEL, session, "Initiator", actions, CHECK_DONE, timeout)
        store = instance.store
        return {
            "session": session,
            "state": instance.state,
            "subject": subject,
            "cabal": members,
            "before": before,
            "failure_reason": store.get("failure_reason"),
            "refusals": list(store.get("refusals") or []),
            "results": list(store.get("results") or []),
        }


def attested_answers(ledger: LocalLedger, subject: str) -> list[Answer]:
    """The signed spec 03 answers about ``subject`` that ``state_attestation`` blocks held here carry.

    A HIGH answer the audit's replay disproves becomes a false-answer proof against its witness: a
    threshold that agreed on a false value is caught later, and pays in trust once the proof spreads.
    """
    found = []
    for owner in ledger.store.owners():
        for block in ledger.store.blocks(owner):
            if block.kind != BlockKind.STATE_ATTESTATION or block.payload["subject"] != subject:
                continue
            for wire in block.payload["answers"]:
                with contextlib.suppress(InvalidProofError):
                    found.append(Answer.from_wire(wire))
    return found


def _hex_bytes(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        return b""


def _served_block(entry: Any) -> Any:
    """A served segment entry as the audit reads it: the block's wire map (or what is left of a corrupt one)."""
    seq = entry.get("seq") if isinstance(entry, dict) else None
    try:
        return decode(bytes.fromhex(str(entry["block"])))
    except (EncodingError, ValueError, KeyError, TypeError):
        return {"seq": seq}


def _halves(value: Any) -> Halves | None:
    if not isinstance(value, dict) or type(value.get("last_time_ms")) is not int:
        return None
    agreed = value.get("agreed")
    if not isinstance(agreed, list):
        return None
    return Halves(value["last_time_ms"], {_hex_bytes(h) for h in agreed if isinstance(h, str)})
