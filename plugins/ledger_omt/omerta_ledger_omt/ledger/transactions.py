"""Running transactions between real nodes: specs 00 (escrow lock), 01 (cabal attestation) and 02 (escrow settle).

:class:`TransactionRunner` is the asyncio adapter around the sans-IO runtime: it keeps one
:class:`SessionTable` of actor instances keyed by session id per spec, feeds it envelopes from
the spec's transport channel (``ledger.omt`` for 00, ``ledger.omt.attest`` for 01,
``ledger.omt.settle`` for 02) and clock
ticks, sends what the actors send, and writes the blocks they append through
:func:`omt_host.block_for`. A witness records a lock (or top-up) as pending, with the
consumer's signed request, the moment it votes to accept it, so a second lock on the same funds
is refused; when both requests are bound to one chain head the spec has the witness write an
accusation carrying the double-lock proof, which this adapter verifies and keeps (sync spreads
it). A witness drops the pending lock when the session ends without one or when the witnesses
agreed to reject it, and syncs with a consumer whose request names a head it does not hold yet.

Attestation runs spec 01 under the lock's session id: the provider announces the VM
(``start_vm``), each witness of the lock opens its instance from the lock as held on the chains
(syncing the consumer it committed to if need be), asks the provider whether the VM runs and the
consumer whether it is connected (``ledger.omt.probe``; each answers from its own spec 01 instance)
and votes; when the consumer or the provider ends the session (``end_vm``) the witnesses sign the
duration and each writes a ``verification`` block; a party holding the valid attestation writes a
``vm_session`` end block with the attested duration, which ``settle`` uses when given no duration.

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
from omerta_ledger_omt.ledger import attestations
from omerta_ledger_omt.ledger.blocks import BlockKind
from omerta_ledger_omt.ledger.chainstate import EscrowLock
from omerta_ledger_omt.ledger.errors import EncodingError, LedgerError
from omerta_ledger_omt.ledger.local import LocalLedger
from omerta_ledger_omt.ledger.omt_host import (
    ATTEST_CHANNEL,
    BLOCK_AUTHORS,
    CHANNEL,
    PROBE_CHANNEL,
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
    NativeContext,
    Program,
    SendAction,
    SessionTable,
    StateChanged,
    Tick,
    standard_natives,
)
from omerta_ledger_omt.omt.runtime.values import digest

SPECS = {
    CHANNEL: "00_escrow_lock.omt",
    ATTEST_CHANNEL: "01_cabal_attestation.omt",
    SETTLE_CHANNEL: "02_escrow_settle.omt",
}

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
#: Spec 01 states in which ``start_vm`` stops waiting: the VM verified, or the session over and attested (or not).
VM_START_DONE = frozenset({"VM_RUNNING", "SESSION_COMPLETE", "SESSION_ABORTED"})
#: Spec 01 states of a consumer or provider in which ``end_vm`` stops waiting.
ATTEST_DONE = frozenset({"ATTESTED", "UNATTESTED", "SESSION_COMPLETE", "SESSION_ABORTED"})
#: The spec 01 state in which a party holds a valid attestation, and the role it writes it in.
ATTESTED_ROLES = {"ATTESTED": ("Consumer", "consumer"), "SESSION_COMPLETE": ("Provider", "provider")}
#: Spec 01 states in which the provider's records say the VM runs.
VM_UP = frozenset({"WAITING_FOR_VERIFICATION", "VM_RUNNING"})

#: Seconds a witness waits for a probe answer; spec 01's witnesses vote within CONNECTIVITY_VOTE_TIMEOUT = 30 s.
PROBE_TIMEOUT_S = 10.0

#: Seconds ``start_vm`` and ``end_vm`` wait: spec 01's verification and attestation waits are 60 s and 180 s.
ATTEST_WAIT_S = 240.0

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
        self.observations: dict[str, dict[str, bool]] = {}  # session -> probe subject -> answer
        self._probes: dict[int, tuple[str, asyncio.Future[bool]]] = {}  # nonce -> (asked peer, answer)
        self.attest_natives = standard_natives().with_natives(
            {
                "check_vm_connectivity": self._observed("vm"),
                "check_consumer_connected": self._observed("consumer"),
                "judge_misuse": self._observed("misuse"),
            }
        )
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
        natives = self.attest_natives if program is self.programs[ATTEST_CHANNEL] else None
        return ActorInstance(
            program, actor, signer=self.ledger.identity, ledger=self.view, session=session, now=now, store=store,
            natives=natives,
        )  # fmt: skip

    def _observed(self, subject: str) -> Any:
        """Spec 01's native for ``subject``: the probe answer recorded for the session before the vote."""

        def native(ctx: NativeContext, _argument: Any) -> bool:
            return self.observations.get(ctx.session, {}).get(subject, False)

        return native

    # -- the runtime's I/O ------------------------------------------------------------------

    async def on_envelope(self, peer: PeerId, data: bytes) -> None:
        """A message of spec 00 (transport channel ``ledger.omt``)."""
        await self._receive(CHANNEL, peer, data)

    async def on_settle_envelope(self, peer: PeerId, data: bytes) -> None:
        """A message of spec 02 (transport channel ``ledger.omt.settle``)."""
        await self._receive(SETTLE_CHANNEL, peer, data)

    async def on_attest_envelope(self, peer: PeerId, data: bytes) -> None:
        """A message of spec 01 (transport channel ``ledger.omt.attest``)."""
        await self._receive(ATTEST_CHANNEL, peer, data)

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
        opened = channel == ATTEST_CHANNEL and await self._open_attestation(envelope)
        try:
            actions = table.deliver(envelope, self._now())
            if opened:
                for held in table.held.pop(envelope.session, []):
                    actions += table.deliver(held, self._now())
        except OmtError as exc:
            self.dropped += 1
            self.log.warning("transaction message refused", session=envelope.session[:12], reason=str(exc))
            return
        await self._apply(channel, envelope.session, actions)

    async def _open_attestation(self, envelope: Envelope) -> bool:
        """Open this node's spec 01 instance from the lock when the provider's announcement reaches it."""
        table, program, now = self.tables[ATTEST_CHANNEL], self.programs[ATTEST_CHANNEL], self._now()
        session = envelope.session
        try:
            session_id = bytes.fromhex(session)
        except ValueError:
            return False
        if envelope.type == "VM_ALLOCATED" and table.get(session, "Witness") is None:
            lock = await self._witnessed_lock(session_id)
            if lock is None or lock.provider != envelope.sender or self.ledger.me not in lock.witnesses:
                return False
            vm, connected = await asyncio.gather(
                self._probe(lock.provider, session, "vm"), self._probe(lock.consumer, session, "consumer")
            )
            self.observations[session] = {"vm": vm, "consumer": connected}
            if table.get(session, "Witness") is not None:
                return False
            actor = "Witness"
            inputs: dict[str, Any] = {
                "provider": lock.provider,
                "consumer": lock.consumer,
                "witnesses": list(lock.witnesses),
                "lock_result_hash": digest(attestations.lock_summary(lock)),
            }
        elif envelope.type == "VM_READY" and table.get(session, "Consumer") is None:
            lock = self.ledger.state(self.ledger.me).locks.get(session_id)
            if lock is None or lock.provider != envelope.sender:
                return False
            actor, inputs = "Consumer", {"provider": lock.provider, "witnesses": list(lock.witnesses)}
        else:
            return False
        instance = self._new_instance(program, session, actor, now)
        table.add(instance)
        await self._apply(ATTEST_CHANNEL, session, instance.handle(FireTrigger("setup_session", inputs), now))
        return True

    async def _witnessed_lock(self, session_id: bytes) -> EscrowLock | None:
        """The lock of a session this node witnesses, syncing its consumer's chain if the lock is not held yet."""
        lock = attestations.find_lock(self.ledger.store, session_id)
        consumer = attestations.committed_consumer(self.ledger.store, self.ledger.me, session_id)
        if lock is None and consumer is not None and self.catch_up is not None:
            try:
                async with asyncio.timeout(CATCH_UP_TIMEOUT_S):
                    await self.catch_up(consumer)
            except (TimeoutError, LedgerError) as exc:
                self.log.info("catching up with a consumer failed", peer=consumer[:12], reason=str(exc))
            lock = attestations.find_lock(self.ledger.store, session_id)
        return lock

    async def _probe(self, peer: str, session: str, subject: str) -> bool:
        """Ask ``peer`` about the session's VM (``vm``) or its consumer's connection (``consumer``)."""
        nonce = secrets.randbits(62)
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._probes[nonce] = (peer, answer)
        try:
            await self.send(PeerId(peer), PROBE_CHANNEL, attestations.encode_probe(session, subject, nonce))
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                return await answer
        except TimeoutError:
            return False
        finally:
            self._probes.pop(nonce, None)

    async def on_probe(self, peer: PeerId, data: bytes) -> None:
        """A probe or a probe answer (transport channel ``ledger.omt.probe``)."""
        try:
            session, subject, nonce, answer = attestations.decode_probe(data)
        except EncodingError:
            self.dropped += 1
            return
        if answer is not None:
            pending = self._probes.get(nonce)
            if pending is None or pending[0] != str(peer):
                self.dropped += 1
            elif not pending[1].done():
                pending[1].set_result(answer)
            return
        role, states = ("Provider", VM_UP) if subject == "vm" else ("Consumer", frozenset({"CONNECTED"}))
        instance = self.tables[ATTEST_CHANNEL].get(session, role)
        if instance is not None and str(peer) not in instance.store.get("witnesses", []):
            self.dropped += 1
            return
        found = await self._reaches(session, role, states, PROBE_TIMEOUT_S / 2)
        instance = self.tables[ATTEST_CHANNEL].get(session, role)
        asked_by_witness = instance is not None and str(peer) in instance.store.get("witnesses", [])
        await self.send(
            peer, PROBE_CHANNEL, attestations.encode_probe(session, subject, nonce, found and asked_by_witness)
        )

    async def _reaches(self, session: str, role: str, states: frozenset[str], timeout: float) -> bool:
        """Whether our spec 01 ``role`` instance of ``session`` is (or gets within ``timeout``) in ``states``."""

        def there() -> bool:
            instance = self.tables[ATTEST_CHANNEL].get(session, role)
            return instance is not None and instance.state in states

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async with self.changed:
                    await self.changed.wait_for(there)
        return there()

    def _write_session_end(self, session: str, state: str) -> None:
        """A party holding the valid attestation records the session's end with the attested duration."""
        actor, role = ATTESTED_ROLES[state]
        instance = self.tables[ATTEST_CHANNEL].get(session, actor)
        if instance is None or not instance.store.get("final_attestation"):
            return
        try:
            payload = attestations.session_end_payload(instance.store, session, role)
            block = self.ledger.append(BlockKind.VM_SESSION, payload, self.now_ms())
        except (LedgerError, KeyError, TypeError, ValueError) as exc:
            self.block_failures.append(f"vm_session: {exc}")
            self.log.warning("session end not recorded", session=session[:12], reason=str(exc))
            return
        self.written[(session, "VM_SESSION")] = block.ref

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
                if channel == ATTEST_CHANNEL and action.new in ATTESTED_ROLES:
                    self._write_session_end(session, action.new)
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
                if instance.actor == "Witness" and instance.program is self.programs[ATTEST_CHANNEL]:
                    self.observations.pop(instance.session, None)

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

    # -- transaction 01 -------------------------------------------------------------------------

    async def start_vm(self, session: str, vm_endpoint: str | None = None, timeout: float = ATTEST_WAIT_S
                       ) -> dict[str, Any]:  # fmt: skip
        """Run spec 01 as the provider of lock ``session``: announce the VM; return once the witnesses decided."""
        lock = attestations.find_lock(self.ledger.store, bytes.fromhex(session))
        if lock is None or lock.provider != self.ledger.me:
            raise LedgerError(f"no open escrow lock for session {session[:16]} with this node as provider (sync first)")
        table = self.tables[ATTEST_CHANNEL]
        if table.get(session, "Provider") is not None:
            raise LedgerError(f"the VM of session {session[:16]} was started already")
        instance = self._new_instance(self.programs[ATTEST_CHANNEL], session, "Provider", self._now())
        table.add(instance)
        inputs = {
            "consumer": lock.consumer,
            "witnesses": list(lock.witnesses),
            "lock_result": attestations.lock_summary(lock),
        }
        await self._apply(ATTEST_CHANNEL, session, instance.handle(FireTrigger("start_session", inputs), self._now()))
        endpoint = vm_endpoint or f"{self.ledger.me}/{session}"
        allocate = FireTrigger("allocate_vm", {"vm_endpoint": endpoint})
        await self._apply(ATTEST_CHANNEL, session, instance.handle(allocate, self._now()))
        await self._reaches(session, "Provider", VM_START_DONE, timeout)
        return {
            "session": session,
            "state": instance.state,
            "vm_endpoint": endpoint,
            "witnesses": list(lock.witnesses),
            "votes": len(instance.store.get("connectivity_votes") or []),
        }

    async def end_vm(self, session: str, timeout: float = ATTEST_WAIT_S) -> dict[str, Any]:
        """End the VM session as its consumer or provider and wait for the witnesses' attestation."""
        table = self.tables[ATTEST_CHANNEL]
        consumer, provider = table.get(session, "Consumer"), table.get(session, "Provider")
        if consumer is not None and consumer.state == "CONNECTED":
            instance, trigger = consumer, FireTrigger("request_cancel", {})
        elif provider is not None and provider.state == "VM_RUNNING":
            instance, trigger = provider, FireTrigger("cancel_session", {})
        else:
            raise LedgerError(f"no running VM session {session[:16]} here to end")
        await self._apply(ATTEST_CHANNEL, session, instance.handle(trigger, self._now()))
        await self._reaches(session, instance.actor, ATTEST_DONE, timeout)
        final = instance.store.get("final_attestation") or {}
        attestation = final.get("attestation") or {}
        return {
            "session": session,
            "state": instance.state,
            "duration_ms": attestations.duration_ms(attestation.get("duration")) if attestation else None,
            "termination_reason": attestation.get("termination_reason"),
            "signatures": len(final.get("signatures") or []),
            "block": self.written.get((session, "VM_SESSION")),
        }

    # -- transaction 02 -------------------------------------------------------------------------

    async def settle(self, session: str, duration_ms: int | None, hourly_rate: int, timeout: float = SETTLE_WAIT_S
                     ) -> dict[str, Any]:  # fmt: skip
        """Run spec 02 as the consumer of the open lock ``session``; return when SETTLED or UNSETTLED.

        ``duration_ms`` None settles the duration the witnesses attested (spec 01) as recorded on this chain.
        """
        if duration_ms is None:
            duration_ms = attestations.attested_duration_ms(self.ledger.store, self.ledger.me, bytes.fromhex(session))
            if duration_ms is None:
                raise LedgerError(f"no attested duration for session {session[:16]}; end the VM session or give one")
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
