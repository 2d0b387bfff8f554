"""Running transactions between real nodes: specs 00 (escrow lock) and 02 (escrow settle) on the ``.omt`` runtime.

:class:`TransactionRunner` is the asyncio adapter around the sans-IO runtime: it keeps one
:class:`SessionTable` of actor instances keyed by session id per spec, feeds it envelopes from
the spec's transport channel (``ledger.omt`` for 00, ``ledger.omt.settle`` for 02) and clock
ticks, sends what the actors send, and writes the blocks they append through
:func:`omt_host.block_for`. A witness records a lock (or top-up) as pending, with the
consumer's signed request, the moment it votes to accept it, so a second lock on the same funds
is refused; when both requests are bound to one chain head the spec has the witness write an
accusation carrying the double-lock proof, which this adapter verifies and keeps (sync spreads
it). A witness drops the pending lock when the session ends without one or when the witnesses
agreed to reject it, and syncs with a consumer whose request names a head it does not hold yet.

Settlement (``settle``) runs spec 02 as the consumer under the lock's session id: the lock's
witnesses report their trust in the provider, sign the integer split computed from the lower
median, and send their signatures to both parties; the consumer writes ``escrow_settle`` and the
provider ``escrow_payment`` from the signed settlement (a provider that missed it claims its
payment when it next syncs the consumer's chain). Touches the transport and the chain store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.resources
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from omerta_core.interfaces.common import PeerId
from omerta_ledger_omt.ledger.blocks import BlockKind
from omerta_ledger_omt.ledger.errors import EncodingError, LedgerError
from omerta_ledger_omt.ledger.local import LocalLedger
from omerta_ledger_omt.ledger.omt_host import (
    BLOCK_AUTHORS,
    CHANNEL,
    SETTLE_CHANNEL,
    ChainLedgerView,
    block_for,
    decode_envelope,
    encode_envelope,
)
from omerta_ledger_omt.ledger.proofs import verified_proof
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

SPECS = {CHANNEL: "00_escrow_lock.omt", SETTLE_CHANNEL: "02_escrow_settle.omt"}

#: Seconds between timeout checks of open sessions; timeouts in the specs are tens of seconds.
TICK_INTERVAL_S = 0.25

#: Seconds an ended session instance is kept, so late duplicates find it instead of opening a new one.
TERMINAL_RETENTION_S = 120.0

#: Seconds a resting instance (a lock in force, waiting for top-ups) is kept without any step.
RESTING_RETENTION_S = 3600.0

#: Seconds ``settle`` waits for spec 02 to end: its report and signature timeouts are 30 s and 180 s.
SETTLE_WAIT_S = 240.0

ROLES = frozenset({"Consumer", "Provider", "Witness"})
CONSUMER_DONE = frozenset({"LOCKED", "FAILED"})
SETTLE_DONE = frozenset({"SETTLED", "UNSETTLED"})

#: Seconds a witness spends fetching a consumer's newer blocks before judging its request (spec 00's
#: other witnesses wait PRELIMINARY_TIMEOUT = 30 s for its verdict).
CATCH_UP_TIMEOUT_S = 10.0

SendFunction = Callable[[PeerId, str, bytes], Awaitable[None]]
CatchUpFunction = Callable[[str], Awaitable[object]]


def load_spec(name: str) -> Program:
    spec = importlib.resources.files("omerta_ledger_omt") / "specs" / name
    with importlib.resources.as_file(spec) as path:
        return Program.load(path)


class TransactionRunner:
    """The node's open transaction sessions and their I/O."""

    def __init__(
        self,
        ledger: LocalLedger,
        send: SendFunction,
        log: Any,
        now_ms: Callable[[], int],
        catch_up: CatchUpFunction | None = None,
    ) -> None:
        self.ledger = ledger
        self.catch_up = catch_up
        self.send = send
        self.log = log
        self.now_ms = now_ms
        self.programs = {channel: load_spec(name) for channel, name in SPECS.items()}
        self.view = ChainLedgerView(ledger, now_ms)
        self.tables = {
            channel: SessionTable(program, set(ROLES), functools.partial(self._new_instance, program))
            for channel, program in self.programs.items()
        }
        self.table = self.tables[CHANNEL]
        self.changed = asyncio.Condition()
        self.dropped = 0
        self.block_failures: list[str] = []
        self.written: dict[tuple[str, str], str] = {}  # (session, spec block) -> block ref
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

    def _new_instance(self, program: Program, session: str, actor: str, now: float) -> ActorInstance:
        store: dict[str, Any] = {}
        if actor == "Provider" and program is self.programs[CHANNEL]:
            store["known_peers"] = sorted(self.ledger.store.owners())
        return ActorInstance(
            program, actor, signer=self.ledger.identity, ledger=self.view, session=session, now=now, store=store
        )

    # -- the runtime's I/O ------------------------------------------------------------------

    async def on_envelope(self, peer: PeerId, data: bytes) -> None:
        """A message of spec 00 (transport channel ``ledger.omt``)."""
        await self._receive(CHANNEL, peer, data)

    async def on_settle_envelope(self, peer: PeerId, data: bytes) -> None:
        """A message of spec 02 (transport channel ``ledger.omt.settle``)."""
        await self._receive(SETTLE_CHANNEL, peer, data)

    async def _receive(self, channel: str, peer: PeerId, data: bytes) -> None:
        table = self.tables[channel]
        try:
            envelope = decode_envelope(data)
        except EncodingError:
            self.dropped += 1
            return
        if envelope.sender != str(peer) or envelope.recipient != self.ledger.me:
            self.dropped += 1
            return
        if channel == CHANNEL and envelope.type == "WITNESS_REQUEST":
            await self._catch_up_with(envelope)
        try:
            actions = table.deliver(envelope, self._now())
        except OmtError as exc:
            self.dropped += 1
            self.log.warning("transaction message refused", session=envelope.session[:12], reason=str(exc))
            return
        await self._apply(channel, envelope.session, actions)

    async def _catch_up_with(self, envelope: Envelope) -> None:
        """A lock request bound to a head beyond the consumer's chain as held here: fetch the newer blocks first."""
        request = envelope.payload.get("lock_request")
        claimed = request.get("head_seq") if isinstance(request, dict) else None
        head = self.ledger.store.head(envelope.sender)
        if self.catch_up is None or type(claimed) is not int or (head is not None and head.seq >= claimed):
            return
        try:
            async with asyncio.timeout(CATCH_UP_TIMEOUT_S):
                await self.catch_up(envelope.sender)
        except (TimeoutError, LedgerError) as exc:
            self.log.info("catching up with a consumer failed", peer=envelope.sender[:12], reason=str(exc))

    async def _apply(self, channel: str, session: str, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendAction):
                if channel == CHANNEL:
                    self._note_vote(session, action)
                envelope = action.envelope
                await self.send(PeerId(envelope.recipient), channel, encode_envelope(envelope))
            elif isinstance(action, AppendBlockAction):
                self._append(channel, session, action)
            elif isinstance(action, StateChanged):
                self.log.info("transaction step", session=session[:12], old=action.old, new=action.new,
                              cause=action.cause)  # fmt: skip
                if channel != CHANNEL:
                    continue
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
        """A witness that votes to accept a lock or a top-up counts it against the consumer's funds from now on."""
        envelope = action.envelope
        witness = self.table.get(session, "Witness")
        if witness is None:
            return
        if envelope.type == "TOPUP_VOTE" and envelope.payload.get("topup_verdict") == "ACCEPT":
            store = witness.store
            new_total = store["total_escrowed"] + store["topup_amount"]
            self.ledger.store.record_witnessed_topup(
                bytes.fromhex(session), store["consumer"], store["topup_amount"], new_total
            )
        if envelope.type == "WITNESS_PRELIMINARY" and envelope.payload.get("verdict") == "ACCEPT":
            store = witness.store
            session_id = bytes.fromhex(session)
            self.ledger.store.record_witnessed_lock(session_id, store["consumer"], store["amount"], b"")
            signed_request = {"request": store["lock_request"], "signature": store["request_signature"]}
            self.ledger.store.record_witnessed_request(session_id, store["consumer"], signed_request)

    def _append(self, channel: str, session: str, action: AppendBlockAction) -> None:
        instance = self.tables[channel].get(session, BLOCK_AUTHORS.get(action.block, ""))
        if instance is None:
            return
        try:
            mapped = block_for(action.block, instance.store, session, self.ledger.store)
            if mapped is None:
                return
            kind, payload = mapped
            if kind == BlockKind.ACCUSATION:
                proof = verified_proof(payload["proof"], self.ledger.params)
                block = self.ledger.accuse(payload["subject"], payload["reason"], self.now_ms(), proof)
            else:
                block = self.ledger.append(kind, payload, self.now_ms())
        except LedgerError as exc:
            self.block_failures.append(f"{action.block}: {exc}")
            self.log.warning("transaction block refused", session=session[:12], block=action.block, reason=str(exc))
            return
        self.written[(session, action.block)] = block.ref
        self.log.info("transaction block written", session=session[:12], block=block.ref, kind=str(kind))

    def _forget_finished(self, table: SessionTable, now: float) -> None:
        """Drop instances that ended (after a grace period for late messages) or rested too long."""
        for instance in list(table):
            idle = now - instance.entered_at
            resting = instance.next_deadline() is None
            if (instance.terminal and idle > TERMINAL_RETENTION_S) or (resting and idle > RESTING_RETENTION_S):
                table.instances.pop((instance.session, instance.actor), None)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_INTERVAL_S)
            now = self._now()
            for channel, table in self.tables.items():
                self._forget_finished(table, now)
                for instance in list(table):
                    deadline = instance.next_deadline()
                    if deadline is not None and deadline <= now:
                        try:
                            actions = instance.handle(Tick(), now)
                        except OmtError as exc:
                            self.log.warning("transaction instance failed", session=instance.session[:12],
                                             reason=str(exc))  # fmt: skip
                            table.close(instance.session)
                            continue
                        await self._apply(channel, instance.session, actions)

    # -- transaction 00 -------------------------------------------------------------------------

    async def lock(self, provider: str, amount: int, timeout: float) -> dict[str, Any]:
        """Run spec 00 as the consumer; return when LOCKED or FAILED (or after ``timeout``)."""
        session = secrets.token_hex(32)
        instance = self._new_instance(self.programs[CHANNEL], session, "Consumer", self._now())
        self.table.add(instance)
        trigger = FireTrigger("initiate_lock", {"provider": provider, "amount": amount})
        await self._apply(CHANNEL, session, instance.handle(trigger, self._now()))
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

    async def topup(self, session: str, amount: int, timeout: float) -> dict[str, Any]:
        """Add ``amount`` to this consumer's lock ``session`` through spec 00; return when the round ends."""
        instance = self.table.get(session, "Consumer")
        if instance is None or instance.state != "LOCKED":
            raise LedgerError(f"no locked spec 00 session {session[:16]} here to top up")
        total = instance.store["total_escrowed"]
        await self._apply(CHANNEL, session, instance.handle(FireTrigger("initiate_topup", {"topup_amount": amount}),
                                                           self._now()))  # fmt: skip
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async with self.changed:
                    await self.changed.wait_for(lambda: instance.state == "LOCKED")
        return {
            "session": session,
            "state": instance.state,
            "total_escrowed": instance.store["total_escrowed"],
            "topped_up": instance.store["total_escrowed"] == total + amount,
            "failure_reason": None
            if instance.store["total_escrowed"] == total + amount
            else instance.store.get("failure_reason"),
            "block": self.written.get((session, "BALANCE_TOPUP")),
        }

    # -- transaction 02 -------------------------------------------------------------------------

    async def settle(self, session: str, duration_ms: int, hourly_rate: int, timeout: float = SETTLE_WAIT_S
                     ) -> dict[str, Any]:  # fmt: skip
        """Run spec 02 as the consumer of the open lock ``session``; return when SETTLED or UNSETTLED."""
        state = self.ledger.state(self.ledger.me)
        lock = state.locks.get(bytes.fromhex(session))
        if lock is None:
            raise LedgerError(f"no open escrow lock for session {session[:16]} on this chain")
        if self.tables[SETTLE_CHANNEL].get(session, "Consumer") is not None:
            raise LedgerError(f"session {session[:16]} is being settled already")
        instance = self._new_instance(self.programs[SETTLE_CHANNEL], session, "Consumer", self._now())
        self.tables[SETTLE_CHANNEL].add(instance)
        inputs = {
            "provider": lock.provider,
            "witnesses": list(lock.witnesses),
            "lock_hash": lock.lock_hash.hex(),
            "escrow_total": lock.total,
            "duration_ms": duration_ms,
            "hourly_rate": hourly_rate,
        }
        await self._apply(SETTLE_CHANNEL, session, instance.handle(FireTrigger("settle", inputs), self._now()))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async with self.changed:
                    await self.changed.wait_for(lambda: instance.state in SETTLE_DONE)
        store = instance.store
        final = store.get("final_settlement") or {}
        settlement = final.get("settlement") or {}
        block = self.written.get((session, "BALANCE_UNLOCK"))
        if instance.state == "SETTLED" and block is None:
            raise LedgerError(f"settlement of {session[:16]} was signed but not written: {self.block_failures[-1:]}")
        return {
            "session": session,
            "state": instance.state,
            "failure_reason": store.get("failure_reason"),
            "block": block,
            "signatures": len(final.get("signatures") or []),
            "settlement": {k: v for k, v in settlement.items() if type(v) is int},
            "trust_reports_milli": sorted(r["trust_milli"] for r in store.get("reports") or []),
        }
