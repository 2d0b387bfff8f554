"""Running transactions between real nodes: spec 00 on the ``.omt`` runtime, settlement by witness signatures.

:class:`TransactionRunner` is the asyncio adapter around the sans-IO runtime: it keeps a
:class:`SessionTable` of actor instances keyed by session id, feeds it envelopes from the
transport channel ``ledger.omt`` and clock ticks, sends what the actors send, and writes
the blocks they append through :func:`omt_host.block_for`. A witness records a lock as
pending, with the consumer's signed request, the moment it votes to accept it, so a second
lock on the same funds is refused; when both requests are bound to one chain head the spec has
the witness write an accusation carrying the double-lock proof, which this adapter verifies
and keeps (sync spreads it). A witness drops the pending lock when the session ends without
one or when the witnesses agreed to reject it.

Settlement (``settle``) asks the lock's witnesses on channel ``ledger.escrow`` for their trust
in the provider, builds the integer settlement from the lower median, gathers a threshold of
witness signatures and writes ``escrow_settle``; the provider claims its payment when it next
syncs the consumer's chain. Touches the transport and the chain store.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import itertools
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from omerta_core.interfaces.common import PeerId
from omerta_ledger_omt.ledger.blocks import BlockKind
from omerta_ledger_omt.ledger.encoding import canonical, decode
from omerta_ledger_omt.ledger.errors import EncodingError, LedgerError
from omerta_ledger_omt.ledger.escrow import settlement_statement
from omerta_ledger_omt.ledger.local import LocalLedger
from omerta_ledger_omt.ledger.locks import lock_facts
from omerta_ledger_omt.ledger.omt_host import (
    BLOCK_AUTHORS,
    CHANNEL,
    ChainLedgerView,
    block_for,
    decode_envelope,
    encode_envelope,
)
from omerta_ledger_omt.ledger.proofs import verified_proof
from omerta_ledger_omt.ledger.statements import Statement
from omerta_ledger_omt.omt.errors import OmtError
from omerta_ledger_omt.omt.runtime import (
    Action,
    ActorInstance,
    AppendBlockAction,
    Envelope,
    FireTrigger,
    MessageDropped,
    Program,
    SendAction,
    SessionTable,
    StateChanged,
    Tick,
)

ESCROW_CHANNEL = "ledger.escrow"
SPEC_00 = "00_escrow_lock.omt"

#: Seconds between timeout checks of open sessions; timeouts in the specs are tens of seconds.
TICK_INTERVAL_S = 0.25

#: Seconds an ended session instance is kept, so late duplicates find it instead of opening a new one.
TERMINAL_RETENTION_S = 120.0

#: Seconds a resting instance (a lock in force, waiting for top-ups) is kept without any step.
RESTING_RETENTION_S = 3600.0

#: Messages held per session that arrived before the message opening it (one per other witness, twice).
MAX_EARLY_PER_SESSION = 16

#: Sessions with held early messages; the oldest are forgotten first (bounds memory against junk sessions).
MAX_EARLY_SESSIONS = 256

#: The runtime's reason for a message whose session this node has not opened (yet).
NO_SESSION = "no session for this message"

#: Seconds a witness has to answer a trust or signature request during settlement.
WITNESS_ANSWER_TIMEOUT_S = 10.0

ROLES = frozenset({"Consumer", "Provider", "Witness"})
CONSUMER_DONE = frozenset({"LOCKED", "FAILED"})

SendFunction = Callable[[PeerId, str, bytes], Awaitable[None]]


def load_spec(name: str) -> Program:
    spec = importlib.resources.files("omerta_ledger_omt") / "specs" / name
    with importlib.resources.as_file(spec) as path:
        return Program.load(path)


class TransactionRunner:
    """The node's open transaction sessions and their I/O."""

    def __init__(self, ledger: LocalLedger, send: SendFunction, log: Any, now_ms: Callable[[], int]) -> None:
        self.ledger = ledger
        self.send = send
        self.log = log
        self.now_ms = now_ms
        self.program = load_spec(SPEC_00)
        self.view = ChainLedgerView(ledger, now_ms)
        self.table = SessionTable(self.program, set(ROLES), self._new_instance)
        self.changed = asyncio.Condition()
        self.dropped = 0
        self.block_failures: list[str] = []
        self._ids = itertools.count(1)
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._early: dict[str, list[Envelope]] = {}
        self._ticker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_forever())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    def _now(self) -> float:
        return self.now_ms() / 1000.0

    def _new_instance(self, session: str, actor: str, now: float) -> ActorInstance:
        store: dict[str, Any] = {}
        if actor == "Provider":
            store["known_peers"] = sorted(self.ledger.store.owners())
        return ActorInstance(
            self.program, actor, signer=self.ledger.identity, ledger=self.view, session=session, now=now, store=store
        )

    # -- the runtime's I/O ------------------------------------------------------------------

    async def on_envelope(self, peer: PeerId, data: bytes) -> None:
        try:
            envelope = decode_envelope(data)
        except EncodingError:
            self.dropped += 1
            return
        if envelope.sender != str(peer) or envelope.recipient != self.ledger.me:
            self.dropped += 1
            return
        try:
            actions = self.table.deliver(envelope, self._now())
        except OmtError as exc:
            self.dropped += 1
            self.log.warning("transaction message refused", session=envelope.session[:12], reason=str(exc))
            return
        early = [a for a in actions if isinstance(a, MessageDropped) and a.reason == NO_SESSION]
        if early:
            self._keep_early(envelope)
            actions = [a for a in actions if a not in early]
        await self._apply(envelope.session, actions)
        if not early and envelope.session in self._early:
            for held in self._early.pop(envelope.session):
                try:
                    replayed = self.table.deliver(held, self._now())
                except OmtError:
                    self.dropped += 1
                    continue
                await self._apply(held.session, replayed)

    def _keep_early(self, envelope: Envelope) -> None:
        """Hold a message that arrived before the one opening its session (the network reorders)."""
        held = self._early.setdefault(envelope.session, [])
        if len(held) < MAX_EARLY_PER_SESSION:
            held.append(envelope)
        while len(self._early) > MAX_EARLY_SESSIONS:
            self._early.pop(next(iter(self._early)))

    async def _apply(self, session: str, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendAction):
                self._note_vote(session, action)
                envelope = action.envelope
                await self.send(PeerId(envelope.recipient), CHANNEL, encode_envelope(envelope))
            elif isinstance(action, AppendBlockAction):
                self._append(session, action)
            elif isinstance(action, StateChanged):
                self.log.info("transaction step", session=session[:12], old=action.old, new=action.new,
                              cause=action.cause)  # fmt: skip
                if action.new == "DONE" or self._rejected_by_witnesses(session, action.new):
                    self.ledger.store.forget_witnessed_lock(bytes.fromhex(session))
            elif isinstance(action, MessageDropped):
                self.dropped += 1
                self.log.info("transaction message dropped", session=session[:12], type=action.envelope.type,
                              reason=action.reason)  # fmt: skip
        async with self.changed:
            self.changed.notify_all()

    def _rejected_by_witnesses(self, session: str, state: str) -> bool:
        if state != "AWAITING_CONSUMER_SIGNATURE":
            return False
        witness = self.table.get(session, "Witness")
        return witness is not None and witness.store.get("consensus") == "REJECTED"

    def _note_vote(self, session: str, action: SendAction) -> None:
        """A witness that votes to accept a lock counts it against the consumer's funds from now on."""
        envelope = action.envelope
        if envelope.type != "WITNESS_PRELIMINARY" or envelope.payload.get("verdict") != "ACCEPT":
            return
        witness = self.table.get(session, "Witness")
        if witness is not None:
            store = witness.store
            session_id = bytes.fromhex(session)
            self.ledger.store.record_witnessed_lock(session_id, store["consumer"], store["amount"], b"")
            signed_request = {"request": store["lock_request"], "signature": store["request_signature"]}
            self.ledger.store.record_witnessed_request(session_id, store["consumer"], signed_request)

    def _append(self, session: str, action: AppendBlockAction) -> None:
        instance = self.table.get(session, BLOCK_AUTHORS.get(action.block, ""))
        if instance is None:
            return
        mapped = block_for(action.block, instance.store, session)
        if mapped is None:
            return
        kind, payload = mapped
        try:
            if kind == BlockKind.ACCUSATION:
                proof = verified_proof(payload["proof"], self.ledger.params)
                block = self.ledger.accuse(payload["subject"], payload["reason"], self.now_ms(), proof)
            else:
                block = self.ledger.append(kind, payload, self.now_ms())
        except LedgerError as exc:
            self.block_failures.append(f"{action.block}: {exc}")
            self.log.warning("transaction block refused", session=session[:12], block=action.block, reason=str(exc))
            return
        self.log.info("transaction block written", session=session[:12], block=block.ref, kind=str(kind))

    def _forget_finished(self, now: float) -> None:
        """Drop instances that ended (after a grace period for late messages) or rested too long."""
        for instance in list(self.table):
            idle = now - instance.entered_at
            resting = instance.next_deadline() is None
            if (instance.terminal and idle > TERMINAL_RETENTION_S) or (resting and idle > RESTING_RETENTION_S):
                self.table.instances.pop((instance.session, instance.actor), None)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_INTERVAL_S)
            now = self._now()
            self._forget_finished(now)
            for instance in list(self.table):
                deadline = instance.next_deadline()
                if deadline is not None and deadline <= now:
                    try:
                        actions = instance.handle(Tick(), now)
                    except OmtError as exc:
                        self.log.warning("transaction instance failed", session=instance.session[:12], reason=str(exc))
                        self.table.close(instance.session)
                        continue
                    await self._apply(instance.session, actions)

    # -- transaction 00 -------------------------------------------------------------------------

    async def lock(self, provider: str, amount: int, timeout: float) -> dict[str, Any]:
        """Run spec 00 as the consumer; return when LOCKED or FAILED (or after ``timeout``)."""
        session = secrets.token_hex(32)
        instance = self._new_instance(session, "Consumer", self._now())
        self.table.add(instance)
        trigger = FireTrigger("initiate_lock", {"provider": provider, "amount": amount})
        await self._apply(session, instance.handle(trigger, self._now()))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async with self.changed:
                    await self.changed.wait_for(lambda: instance.state in CONSUMER_DONE)
        store = instance.store
        return {
            "session": session,
            "state": instance.state,
            "failure_reason": store.get("failure_reason"),
            "witnesses": store.get("witnesses") or [],
            "amount": amount,
        }

    # -- settlement over ledger.escrow -------------------------------------------------------------

    async def on_escrow(self, peer: PeerId, data: bytes) -> None:
        try:
            message = decode(data)
            kind, request_id = message["t"], message["id"]
        except (EncodingError, KeyError, TypeError):
            self.dropped += 1
            return
        if kind in ("trust", "signed", "refused"):
            future = self._answers.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result({**message, "from": str(peer)})
            return
        reply: dict[str, Any] = {"id": request_id}
        try:
            if kind == "trust?":
                subject = str(PeerId(message["peer"]))
                reply |= {"t": "trust", "trust_milli": round(self.ledger.trust(subject, self.now_ms()) * 1000)}
            elif kind == "sign?":
                statement = Statement.from_wire(message["statement"])
                signed = self.ledger.witness_statement(statement, message["lock"], self.now_ms())
                reply |= {"t": "signed", "sig": signed.signatures[self.ledger.me]}
            else:
                raise LedgerError(f"unknown escrow request {kind!r}")
        except (LedgerError, KeyError, TypeError, ValueError) as exc:
            reply |= {"t": "refused", "reason": str(exc)[:200]}
        await self.send(peer, ESCROW_CHANNEL, canonical(reply))

    async def _ask(self, peer: str, request: dict[str, Any]) -> dict[str, Any]:
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._answers[request_id] = future
        try:
            await self.send(PeerId(peer), ESCROW_CHANNEL, canonical({**request, "id": request_id}))
            return await asyncio.wait_for(future, WITNESS_ANSWER_TIMEOUT_S)
        finally:
            self._answers.pop(request_id, None)

    async def _ask_all(self, peers: list[str], request: dict[str, Any]) -> list[dict[str, Any]]:
        answers = await asyncio.gather(*(self._ask(p, request) for p in peers), return_exceptions=True)
        return [a for a in answers if isinstance(a, dict)]

    async def settle(self, session: str, duration_ms: int, hourly_rate: int) -> dict[str, Any]:
        """Settle this consumer's open lock ``session`` with a threshold of its witnesses."""
        state = self.ledger.state(self.ledger.me)
        lock = state.locks.get(bytes.fromhex(session))
        if lock is None:
            raise LedgerError(f"no open escrow lock for session {session[:16]} on this chain")
        facts = lock_facts(lock.evidence, self.ledger.params.witness_threshold)
        answers = await self._ask_all(facts.witnesses, {"t": "trust?", "peer": facts.provider})
        reports = [int(a["trust_milli"]) for a in answers if a.get("t") == "trust"]
        if len(reports) < facts.threshold:
            raise LedgerError(f"only {len(reports)} witnesses reported trust, {facts.threshold} needed")
        statement = settlement_statement(facts, lock.total, duration_ms, hourly_rate, reports)
        request = {"t": "sign?", "lock": lock.evidence, "statement": statement.to_wire()}
        signed = statement
        refusals = []
        for answer in await self._ask_all(facts.witnesses, request):
            if answer.get("t") == "signed":
                signed = signed.merged(Statement(statement.kind, statement.body, {answer["from"]: answer["sig"]}))
            else:
                refusals.append(str(answer.get("reason")))
        block = self.ledger.record_settlement(signed, self.now_ms())
        return {
            "session": session,
            "block": block.ref,
            "signatures": len(signed.signatures),
            "refusals": refusals,
            "settlement": {k: v for k, v in statement.body.items() if isinstance(v, int)},
            "trust_reports_milli": sorted(reports),
        }
