"""Running transactions between real nodes: specs 00 (escrow lock), 01 (cabal attestation), 02 (escrow settle)
and 03 (state query).

:class:`TransactionRunner` is the asyncio adapter around the sans-IO
:class:`~.engine.TransactionEngine`: it feeds the engine envelopes from each spec's transport
channel (``ledger.omt`` for 00, ``ledger.omt.attest`` for 01, ``ledger.omt.settle`` for 02,
``ledger.omt.query`` for 03), its
timeouts (sleeping until the engine's next deadline) and local requests, and applies the actions
it returns: sends, blocks to append, outcomes to report to waiting callers. Each action is applied
on its own: a failed send or block is logged with its peer and session, counted
(``action_failures`` in ``omerta status``), and the rest go on, so one broken peer cannot stop
other sessions' timeouts. A witness records a lock (or top-up) as pending, with the
consumer's signed request, the moment it votes to accept it, so a second lock on the same funds
is refused; when both requests are bound to one chain head the spec has the witness write an
accusation carrying the double-lock proof, which this adapter verifies and keeps (sync spreads
it). A witness drops the pending lock when the session ends without one or when the witnesses
agreed to reject it. A witness syncs with the consumer before judging its request, and the engine
asks the lock's witnesses for the consumer's balance (spec 03) before spec 00 judges it; a witness that
votes to reject logs why ("lock request refused").

A consumer's lock request names its chain head, and a witness holding a newer head refuses it. So while
this node's own request is out (from ``lock`` until its outcome), the blocks it writes as a witness of
other nodes' locks wait and are written, in order, once the request is decided: a node that is both
renting and witnessing another's rental keeps its head where its request says. A failed lock comes back
with one line saying why as far as this node can tell; ``lock(..., tries=N)`` asks again at the new head
when its own chain moved on meanwhile (its own settlement or transfer), or after a pause when too few
witnesses could confirm its balance.

State queries (``query``) run spec 03 as the requester; a witness asked about a subject whose chain
it holds syncs with the subject first (bounded), so it answers from a fresh copy with HIGH
confidence when the subject is reachable. Each successful sync is noted on the engine
(``note_synced``): a witness's confidence is the recency of its last sync of the subject.

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
payment when it next syncs the consumer's chain).

Audits (spec 04, ``ledger.omt.audit``) and health checks (spec 05, ``ledger.omt.check``) run through
:class:`~.audits.AuditHost` (``self.audits``): its natives, and what it must see of their messages
before the engine does. Touches the transport and the chain store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.ledger import INSUFFICIENT_FUNDS
from omerta_core.randomness import RandomSource, child_random, system_random
from omerta_ledger_omt.ledger import attestations, misuse
from omerta_ledger_omt.ledger.audits import AuditHost
from omerta_ledger_omt.ledger.blocks import BlockKind
from omerta_ledger_omt.ledger.chainstate import EscrowLock
from omerta_ledger_omt.ledger.claims import claimed_closures
from omerta_ledger_omt.ledger.encoding import canonical
from omerta_ledger_omt.ledger.engine import (
    AppendBlock,
    Dropped,
    EngineAction,
    Outcome,
    Refused,
    Send,
    Step,
    TransactionEngine,
    append_block,
)
from omerta_ledger_omt.ledger.errors import LedgerError
from omerta_ledger_omt.ledger.local import LocalLedger
from omerta_ledger_omt.ledger.omt_host import (
    ATTEST_CHANNEL,
    AUDIT_CHANNEL,
    CHANNEL,
    CHECK_CHANNEL,
    PROBE_CHANNEL,
    QUERY_CHANNEL,
    SETTLE_CHANNEL,
)
from omerta_ledger_omt.ledger.refusals import consumer_refusal
from omerta_ledger_omt.ledger.state_query import CHAIN_QUERIES, Answer, Confidence, FalseAnswerProof
from omerta_ledger_omt.ledger.suspicion import BASE_INTERVAL_MS
from omerta_ledger_omt.omt.runtime import ActorInstance, Envelope, NativeContext, Program, standard_natives
from omerta_ledger_omt.omt.runtime.values import digest

#: Longest sleep of the timeout ticker: wall-clock time (the specs' clock) may jump while it sleeps.
MAX_TICK_SLEEP_S = 30.0
#: Shortest sleep between two ticks: bounds the cost of a timeout that stays due.
MIN_TICK_GAP_S = 0.01

#: Seconds ``settle`` waits for spec 02 to end: its report and signature timeouts are 30 s and 180 s.
SETTLE_WAIT_S = 240.0

#: Seconds a consumer settling a lock spends fetching its provider's chain first, to find a claim of it (a
#: provider that is gone has no claim to find; one that is up answers in well under a second). If spec 02 then
#: fails, it looks again for CATCH_UP_TIMEOUT_S.
CLAIM_LOOKUP_TIMEOUT_S = 5.0

#: Outcomes after which ``lock``, ``start_vm``, ``end_vm`` and ``settle`` stop waiting (see engine.SPECS).
LOCK_DONE = frozenset({"locked", "failed"})
LOCK_CONFIRM_DONE = frozenset({"confirmed", "rejected", "abandoned"})
VM_START_DONE = frozenset({"vm_verified", "attested", "aborted"})
ATTEST_DONE = frozenset({"attested", "unattested", "aborted"})
SETTLE_DONE = frozenset({"settled", "unsettled"})
#: The outcomes in which a probe's answer is yes: the provider's VM runs, the consumer is connected.
VM_UP = frozenset({"vm_up", "vm_verified"})
CONNECTED = frozenset({"connected"})
#: Who writes the attested end of a VM session, in which role.
ATTESTED_ROLES = {"Consumer": "consumer", "Provider": "provider"}

#: Seconds a witness waits for a probe answer; spec 01's witnesses vote within CONNECTIVITY_VOTE_TIMEOUT = 30 s.
PROBE_TIMEOUT_S = 10.0

#: Seconds ``start_vm`` and ``end_vm`` wait: spec 01's verification and attestation waits are 60 s and 180 s.
ATTEST_WAIT_S = 240.0

#: Seconds a witness spends fetching a consumer's newer blocks before judging its request (spec 00's
#: other witnesses wait PRELIMINARY_TIMEOUT = 30 s for its verdict) or a subject's before answering a
#: state query (spec 03's requester waits QUERY_TIMEOUT = 30 s).
CATCH_UP_TIMEOUT_S = 10.0

#: Outcomes after which ``query`` stops waiting; spec 03's requester gives up after QUERY_TIMEOUT = 30 s.
QUERY_DONE = frozenset({"attested", "failed"})
QUERY_WAIT_S = 45.0

SendFunction = Callable[[PeerId, str, bytes], Awaitable[None]]
CatchUpFunction = Callable[[str], Awaitable[object]]


class TransactionRunner:
    """The node's open transaction sessions and their I/O."""

    def __init__(
        self,
        ledger: LocalLedger,
        send: SendFunction,
        log: Any,
        now_ms: Callable[[], int],
        catch_up: CatchUpFunction | None = None,
        *,
        rng: RandomSource | None = None,
        engine: TransactionEngine | None = None,
        lie: bool = False,
        programs: dict[str, Program] | None = None,
        check_base_ms: int = BASE_INTERVAL_MS,
    ) -> None:
        self.ledger = ledger
        self.catch_up = catch_up
        self.send = send
        self.log = log
        self.now_ms = now_ms
        self.rng = rng or system_random()
        self.observations: dict[str, dict[str, bool]] = {}  # session -> probe subject -> answer
        attest_natives = standard_natives().with_natives(
            {
                "check_vm_connectivity": self._observed("vm"),
                "check_consumer_connected": self._observed("consumer"),
                "judge_misuse": self._observed("misuse"),
            }
        )
        self.audits = AuditHost(ledger, check_base_ms)
        self.engine = engine or TransactionEngine(
            ledger,
            rng=child_random(self.rng, "sessions"),
            natives={ATTEST_CHANNEL: attest_natives, **self.audits.natives()},
            programs=programs,
            lie=lie,
        )
        self.audits.runner = self
        self.engine.on_forget = self._forgotten
        self.tables = self.engine.tables
        self.table = self.tables[CHANNEL]
        self.changed = asyncio.Condition()
        self.block_failures: list[str] = []
        self.action_failures = 0
        self.written: dict[tuple[str, str], str] = {}  # (session, spec block) -> block ref
        #: (channel, session, actor) -> the outcome its current state reports (None: none).
        self.outcomes: dict[tuple[str, str, str], str | None] = {}
        self._probes: dict[int, tuple[str, asyncio.Future[bool]]] = {}  # nonce -> (asked peer, answer)
        self._wake = asyncio.Event()
        self.vm_probes: dict[str, Callable[[], bool]] = {}  # session -> the hypervisor's answer: does the VM run?
        self._ticker: asyncio.Task[None] | None = None
        self._requests_out: set[str] = set()  # this node's spec 00 sessions whose signed request awaits its outcome
        self._witness_blocks: list[AppendBlock] = []  # blocks for other nodes' locks, held while a request is out

    @property
    def dropped(self) -> int:
        return self.engine.dropped

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

    def _observed(self, subject: str) -> Any:
        """Spec 01's native for ``subject``: the probe answer recorded for the session before the vote."""

        def native(ctx: NativeContext, _argument: Any) -> bool:
            return self.observations.get(ctx.session, {}).get(subject, False)

        return native

    def _forgotten(self, channel: str, instance: ActorInstance) -> None:
        self.outcomes.pop((channel, instance.session, instance.actor), None)
        self.audits.forget(channel, instance)
        if channel == ATTEST_CHANNEL and instance.actor == "Witness":
            self.observations.pop(instance.session, None)

    # -- the engine's I/O -----------------------------------------------------------------

    async def on_envelope(self, peer: PeerId, data: bytes) -> None:
        """A message of spec 00 (transport channel ``ledger.omt``)."""
        await self._receive(CHANNEL, peer, data)

    async def on_settle_envelope(self, peer: PeerId, data: bytes) -> None:
        """A message of spec 02 (transport channel ``ledger.omt.settle``)."""
        await self._receive(SETTLE_CHANNEL, peer, data)

    async def on_attest_envelope(self, peer: PeerId, data: bytes) -> None:
        """A message of spec 01 (transport channel ``ledger.omt.attest``)."""
        await self._receive(ATTEST_CHANNEL, peer, data)

    async def on_query_envelope(self, peer: PeerId, data: bytes) -> None:
        """A message of spec 03 (transport channel ``ledger.omt.query``)."""
        await self._receive(QUERY_CHANNEL, peer, data)

    async def on_audit_envelope(self, peer: PeerId, data: bytes) -> None:
        """A message of spec 04 (transport channel ``ledger.omt.audit``)."""
        await self._receive(AUDIT_CHANNEL, peer, data)

    async def on_check_envelope(self, peer: PeerId, data: bytes) -> None:
        """A message of spec 05 (transport channel ``ledger.omt.check``)."""
        await self._receive(CHECK_CHANNEL, peer, data)

    async def _receive(self, channel: str, peer: PeerId, data: bytes) -> None:
        envelope = self.engine.decode(channel, str(peer), data)
        if envelope is None:
            return
        if channel in (AUDIT_CHANNEL, CHECK_CHANNEL):
            await self.audits.before_receive(channel, envelope)
        if channel == CHANNEL and envelope.type == "WITNESS_REQUEST":
            await self.refresh(envelope.sender)
        if channel == SETTLE_CHANNEL and envelope.type == "CLAIM_TRUST_QUERY":
            consumer = envelope.payload.get("consumer")
            if isinstance(consumer, str) and self.ledger.store.head(consumer) is not None:
                await self.refresh(consumer)  # judge the claim against the consumer's chain as it is now
        if channel == QUERY_CHANNEL and envelope.type == "STATE_QUERY":
            subject = envelope.payload.get("subject")
            if isinstance(subject, str) and self.ledger.store.head(subject) is not None:
                await self.refresh(subject)
        opened = channel == ATTEST_CHANNEL and await self._open_attestation(envelope)
        if channel == ATTEST_CHANNEL and envelope.type == "MISUSE_ACCUSATION":
            self._judge_accusation(envelope)
        actions = self.engine.receive(channel, envelope, self._now())
        if opened:
            actions += self.engine.release_held(channel, envelope.session, self._now())
        await self._apply(actions)

    async def _tick_forever(self) -> None:
        """Fire the engine's timeouts when due; inputs wake it to look at a new deadline."""
        while True:
            self._wake.clear()
            delay = min(MAX_TICK_SLEEP_S, max(MIN_TICK_GAP_S, self.engine.next_deadline() - self._now()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            await self.on_timer(self._now())

    async def on_timer(self, now: float) -> None:
        """Fire every timeout due at ``now`` (the ticker calls this; tests may too, with their own time)."""
        await self._apply(self.engine.tick(now))

    async def _apply(self, actions: list[EngineAction]) -> None:
        """Carry out the engine's actions one by one: a failing one is logged and counted, the rest go on."""
        for action in actions:
            try:
                await self._apply_one(action)
            except Exception as exc:
                self._failed(action, exc)
        self._wake.set()
        async with self.changed:
            self.changed.notify_all()

    def _failed(self, action: EngineAction, exc: Exception) -> None:
        self.action_failures += 1
        self.log.warning("transaction action failed", session=action.session[:12],
                         peer=str(getattr(action, "peer", ""))[:12], action=type(action).__name__,
                         reason=str(exc) or type(exc).__name__)  # fmt: skip

    async def _apply_one(self, action: EngineAction) -> None:
        if isinstance(action, Send):
            await self.send(PeerId(action.peer), action.channel, action.data)
        elif isinstance(action, AppendBlock):
            if action.witnessing and self._requests_out:
                self._witness_blocks.append(action)
            else:
                self._append(action)
        elif isinstance(action, Step):
            self.outcomes[(action.channel, action.session, action.actor)] = None
            self.log.info("transaction step", session=action.session[:12], old=action.old, new=action.new,
                          cause=action.cause)  # fmt: skip
        elif isinstance(action, Outcome):
            self.outcomes[(action.channel, action.session, action.actor)] = action.name
            if action.channel == ATTEST_CHANNEL and action.name == "attested":
                self._write_session_end(action.session, action.actor)
            if action.channel == CHANNEL and action.actor == "Provider" and action.name == "confirmed":
                self._keep_served_request(action.session)
            if action.channel == CHANNEL and action.actor == "Consumer" and action.name in LOCK_DONE:
                self._request_decided(action.session)
        elif isinstance(action, Dropped):
            self.log.info("transaction message dropped", session=action.session[:12], type=action.type,
                          reason=action.reason)  # fmt: skip
        elif isinstance(action, Refused):
            self.log.info("lock request refused", session=action.session[:12], peer=action.consumer[:12],
                          reason=action.reason)  # fmt: skip

    def _request_decided(self, session: str) -> None:
        """This node's lock request ``session`` is decided: once none is out, write the witness blocks held back."""
        self._requests_out.discard(session)
        while not self._requests_out and self._witness_blocks:
            action = self._witness_blocks.pop(0)
            try:
                self._append(action)
            except Exception as exc:
                self._failed(action, exc)

    def _append(self, action: AppendBlock) -> None:
        try:
            block = append_block(self.ledger, action, self.now_ms())
        except LedgerError as exc:
            self.block_failures.append(f"{action.block}: {exc}")
            self.log.warning("transaction block refused", session=action.session[:12], block=action.block,
                             reason=str(exc))  # fmt: skip
            return
        self.written[(action.session, action.block)] = block.ref
        self.log.info("transaction block written", session=action.session[:12], block=block.ref, kind=str(action.kind))

    def _outcome(self, channel: str, session: str, actor: str) -> str | None:
        return self.outcomes.get((channel, session, actor))

    async def wait_outcome(
        self, channel: str, session: str, actor: str, outcomes: Collection[str], timeout: float
    ) -> bool:
        """Whether ``actor``'s instance of ``session`` reports one of ``outcomes`` (or comes to, within ``timeout``)."""

        def there() -> bool:
            return self._outcome(channel, session, actor) in outcomes

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async with self.changed:
                    await self.changed.wait_for(there)
        return there()

    async def follow(
        self,
        channel: str,
        session: str,
        actor: str,
        actions: list[EngineAction],
        outcomes: Collection[str],
        timeout: float,
    ) -> ActorInstance:
        """Carry out ``actions`` of ``actor``'s instance of ``session`` (a local request just opened or fired it),
        wait until it reports one of ``outcomes`` (or ``timeout`` passes) and return the instance."""
        instance = self.engine.instance(channel, session, actor)
        assert instance is not None
        await self._apply(actions)
        await self.wait_outcome(channel, session, actor, outcomes, timeout)
        return instance

    # -- spec 00 and 01: what the engine needs from the network first ------------------------

    async def refresh(self, peer: str, timeout: float = CATCH_UP_TIMEOUT_S) -> bool:
        """Fetch ``peer``'s newer blocks (bounded) and note the sync on the engine; whether it worked."""
        if self.catch_up is None or peer == self.ledger.me:
            return False
        try:
            async with asyncio.timeout(timeout):
                await self.catch_up(peer)
        except (TimeoutError, LedgerError) as exc:
            self.log.info("catching up with a peer failed", peer=peer[:12], reason=str(exc))
            return False
        self.engine.note_synced(peer, self._now())
        return True

    async def _open_attestation(self, envelope: Envelope) -> bool:
        """Open this node's spec 01 instance from the lock when the provider's announcement reaches it."""
        engine = self.engine
        session = envelope.session
        try:
            session_id = bytes.fromhex(session)
        except ValueError:
            return False
        if envelope.type == "VM_ALLOCATED" and engine.instance(ATTEST_CHANNEL, session, "Witness") is None:
            lock = await self._witnessed_lock(session_id)
            if lock is None or lock.provider != envelope.sender or self.ledger.me not in lock.witnesses:
                return False
            vm, connected = await asyncio.gather(
                self._probe(lock.provider, session, "vm"), self._probe(lock.consumer, session, "consumer")
            )
            self.observations[session] = {"vm": vm, "consumer": connected}
            if engine.instance(ATTEST_CHANNEL, session, "Witness") is not None:
                return False
            actor = "Witness"
            inputs: dict[str, Any] = {
                "provider": lock.provider,
                "consumer": lock.consumer,
                "witnesses": list(lock.witnesses),
                "lock_result_hash": digest(attestations.lock_summary(lock)),
            }
        elif envelope.type == "VM_READY" and engine.instance(ATTEST_CHANNEL, session, "Consumer") is None:
            found = self.ledger.state(self.ledger.me).locks.get(session_id)
            if found is None or found.provider != envelope.sender:
                return False
            actor, inputs = "Consumer", {"provider": found.provider, "witnesses": list(found.witnesses)}
        else:
            return False
        _, actions = engine.open(ATTEST_CHANNEL, actor, "setup_session", inputs, self._now(), session=session)
        await self._apply(actions)
        return True

    def _judge_accusation(self, envelope: Envelope) -> None:
        """A witness judges a misuse accusation's evidence (docs/ledger.md, misuse trial) before its spec votes."""
        witness = self.engine.instance(ATTEST_CHANNEL, envelope.session, "Witness")
        if witness is None:
            return
        allocated = witness.store.get("allocated_at")
        since_ms = round(float(allocated) * 1000) if isinstance(allocated, int | float) else 0
        verdict = misuse.judge(envelope.payload.get("evidence"), envelope.session, witness.store.get("consumer", ""),
                               since_ms, self.now_ms())  # fmt: skip
        self.observations.setdefault(envelope.session, {})["misuse"] = verdict.guilty
        self.log.info("misuse accusation judged", session=envelope.session[:12], peer=envelope.sender[:12],
                      guilty=verdict.guilty, reason=verdict.reason)  # fmt: skip

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
        nonce = self.rng.getrandbits(62)
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
        except LedgerError:
            self.engine.dropped += 1
            return
        if answer is not None:
            pending = self._probes.get(nonce)
            if pending is None or pending[0] != str(peer):
                self.engine.dropped += 1
            elif not pending[1].done():
                pending[1].set_result(answer)
            return
        role, outcomes = ("Provider", VM_UP) if subject == "vm" else ("Consumer", CONNECTED)
        instance = self.engine.instance(ATTEST_CHANNEL, session, role)
        if instance is not None and str(peer) not in instance.store.get("witnesses", []):
            self.engine.dropped += 1
            return
        found = await self.wait_outcome(ATTEST_CHANNEL, session, role, outcomes, PROBE_TIMEOUT_S / 2)
        vm_probe = self.vm_probes.get(session) if subject == "vm" else None
        if found and vm_probe is not None:
            found = vm_probe()
        instance = self.engine.instance(ATTEST_CHANNEL, session, role)
        asked_by_witness = instance is not None and str(peer) in instance.store.get("witnesses", [])
        await self.send(
            peer, PROBE_CHANNEL, attestations.encode_probe(session, subject, nonce, found and asked_by_witness)
        )

    def _write_session_end(self, session: str, actor: str) -> None:
        """A party holding the valid attestation records the session's end with the attested duration."""
        role = ATTESTED_ROLES.get(actor)
        instance = self.engine.instance(ATTEST_CHANNEL, session, actor)
        if role is None or instance is None or not instance.store.get("final_attestation"):
            return
        try:
            payload = attestations.session_end_payload(instance.store, session, role)
            block = self.ledger.append(BlockKind.VM_SESSION, payload, self.now_ms())
        except (LedgerError, KeyError, TypeError, ValueError) as exc:
            self.block_failures.append(f"vm_session: {exc}")
            self.log.warning("session end not recorded", session=session[:12], reason=str(exc))
            return
        self.written[(session, "VM_SESSION")] = block.ref

    # -- transaction 00 -------------------------------------------------------------------------

    async def lock(
        self,
        provider: str,
        amount: int,
        timeout: float,
        hourly_rate: int = 0,
        *,
        tries: int = 1,
        check_funds: bool = True,
    ) -> dict[str, Any]:
        """Run spec 00 as the consumer; return when it reports ``locked`` or ``failed`` (or after ``timeout``).

        ``hourly_rate`` is signed in the lock request: the rate a provider's claim of the session may name.
        A failed lock's ``reason`` is one line saying why. With ``tries`` above 1, a refused request is made
        again (a new session) while the refusal says asking again may lock, at most ``tries`` times in all.
        An ``amount`` above this node's available balance is refused here, before any witness is asked: no
        session, ``failure_reason`` :data:`INSUFFICIENT_FUNDS` (the witnesses would only say ``lock_rejected``);
        ``check_funds`` false skips that check, so the witnesses' own refusal can be exercised.
        """
        available = self.ledger.balance(self.ledger.me)
        if check_funds and amount > available:
            self.log.info("lock refused before asking witnesses", peer=provider[:12], amount=amount,
                          available=available)  # fmt: skip
            return {
                "session": "",
                "state": "FAILED",
                "failure_reason": INSUFFICIENT_FUNDS,
                "reason": f"this node holds {available} available, less than the {amount} asked",
                "witnesses": [],
                "amount": amount,
                "tries": 0,
            }
        attempt = 1
        outcome, again_after = await self._lock_once(provider, amount, timeout, hourly_rate)
        while outcome["state"] != "LOCKED" and again_after is not None and attempt < tries:
            self.log.info("lock refused; asking again", session=outcome["session"][:12], peer=provider[:12],
                          reason=outcome["reason"])  # fmt: skip
            await asyncio.sleep(again_after)
            attempt += 1
            outcome, again_after = await self._lock_once(provider, amount, timeout, hourly_rate)
        return {**outcome, "tries": attempt}

    async def _lock_once(
        self, provider: str, amount: int, timeout: float, hourly_rate: int
    ) -> tuple[dict[str, Any], float | None]:
        """One spec 00 session as the consumer: its outcome, and after how long asking again may lock (None: not)."""
        inputs = {"provider": provider, "amount": amount, "hourly_rate": hourly_rate}
        session, actions = self.engine.open(CHANNEL, "Consumer", "initiate_lock", inputs, self._now())
        self._requests_out.add(session)
        try:
            instance = await self.follow(CHANNEL, session, "Consumer", actions, LOCK_DONE, timeout)
        finally:
            self._request_decided(session)
        store = instance.store
        reason: str | None = None
        again_after: float | None = None
        if store.get("failure_reason") is not None and instance.state != "LOCKED":
            own = self.ledger.state(self.ledger.me)
            reason, again_after = consumer_refusal(store, own.head_seq, own.head_hash.hex())
        elif instance.state != "LOCKED":
            reason = f"the lock is still {instance.state} after {timeout:.0f} s"
        outcome = {
            "session": session,
            "state": instance.state,
            "failure_reason": store.get("failure_reason"),
            "reason": reason,
            "witnesses": store.get("witnesses") or [],
            "amount": amount,
        }
        return outcome, again_after

    async def confirmed_lock(self, session: str, timeout: float) -> dict[str, Any]:
        """As the provider of spec 00 session ``session``: wait until a witness confirmed the lock (service phase)."""
        await self.wait_outcome(CHANNEL, session, "Provider", LOCK_CONFIRM_DONE, timeout)
        instance = self.engine.instance(CHANNEL, session, "Provider")
        store = instance.store if instance is not None else {}
        return {
            "session": session,
            "state": instance.state if instance is not None else None,
            "confirmed": self._outcome(CHANNEL, session, "Provider") == "confirmed",
            "consumer": store.get("consumer"),
            "amount": store.get("amount") or 0,
            "hourly_rate": store.get("hourly_rate") or 0,
            "reason": store.get("reason"),
        }

    async def topup(self, session: str, amount: int, timeout: float) -> dict[str, Any]:
        """Add ``amount`` to this consumer's lock ``session`` through spec 00; return when the round ends."""
        instance = self.engine.instance(CHANNEL, session, "Consumer")
        if instance is None or self._outcome(CHANNEL, session, "Consumer") != "locked":
            raise LedgerError(f"no locked spec 00 session {session[:16]} here to top up")
        total = instance.store["total_escrowed"]
        await self._apply(self.engine.fire(CHANNEL, session, "Consumer", "initiate_topup", {"topup_amount": amount},
                                           self._now()))  # fmt: skip
        await self.wait_outcome(CHANNEL, session, "Consumer", {"locked"}, timeout)
        topped_up = instance.store["total_escrowed"] == total + amount
        return {
            "session": session,
            "state": instance.state,
            "total_escrowed": instance.store["total_escrowed"],
            "topped_up": topped_up,
            "failure_reason": None if topped_up else instance.store.get("failure_reason"),
            "block": self.written.get((session, "BALANCE_TOPUP")),
        }

    # -- transaction 01 -------------------------------------------------------------------------

    async def start_vm(self, session: str, vm_endpoint: str | None = None, timeout: float = ATTEST_WAIT_S
                       ) -> dict[str, Any]:  # fmt: skip
        """Run spec 01 as the provider of lock ``session``: announce the VM; return once the witnesses decided."""
        lock = attestations.find_lock(self.ledger.store, bytes.fromhex(session))
        if lock is None or lock.provider != self.ledger.me:
            raise LedgerError(f"no open escrow lock for session {session[:16]} with this node as provider (sync first)")
        if self.engine.instance(ATTEST_CHANNEL, session, "Provider") is not None:
            raise LedgerError(f"the VM of session {session[:16]} was started already")
        inputs = {
            "consumer": lock.consumer,
            "witnesses": list(lock.witnesses),
            "lock_result": attestations.lock_summary(lock),
        }
        _, actions = self.engine.open(ATTEST_CHANNEL, "Provider", "start_session", inputs, self._now(),
                                      session=session)  # fmt: skip
        instance = self.engine.instance(ATTEST_CHANNEL, session, "Provider")
        assert instance is not None
        await self._apply(actions)
        endpoint = vm_endpoint or f"{self.ledger.me}/{session}"
        await self._apply(self.engine.fire(ATTEST_CHANNEL, session, "Provider", "allocate_vm",
                                           {"vm_endpoint": endpoint}, self._now()))  # fmt: skip
        await self.wait_outcome(ATTEST_CHANNEL, session, "Provider", VM_START_DONE, timeout)
        return {
            "session": session,
            "state": instance.state,
            "vm_endpoint": endpoint,
            "witnesses": list(lock.witnesses),
            "votes": len(instance.store.get("connectivity_votes") or []),
        }

    async def end_vm(self, session: str, timeout: float = ATTEST_WAIT_S, unbilled_ms: int = 0) -> dict[str, Any]:
        """End the VM session as its consumer or provider and wait for the witnesses' attestation; a provider
        leaves its last ``unbilled_ms`` out of the attested duration (spec 01's ``cancel_session``)."""
        params: dict[str, Any] = {}
        if self._outcome(ATTEST_CHANNEL, session, "Consumer") == "connected":
            actor, trigger = "Consumer", "request_cancel"
        elif self._outcome(ATTEST_CHANNEL, session, "Provider") == "vm_verified":
            actor, trigger = "Provider", "cancel_session"
            params["unbilled"] = max(0, unbilled_ms) / 1000
        else:
            raise LedgerError(f"no running VM session {session[:16]} here to end")
        instance = self.engine.instance(ATTEST_CHANNEL, session, actor)
        assert instance is not None
        await self._apply(self.engine.fire(ATTEST_CHANNEL, session, actor, trigger, params, self._now()))
        await self.wait_outcome(ATTEST_CHANNEL, session, actor, ATTEST_DONE, timeout)
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

    async def accuse(self, session: str, evidence: dict[str, Any], timeout: float = ATTEST_WAIT_S) -> dict[str, Any]:
        """As the provider of running VM session ``session``, accuse its consumer of misuse (spec 01's trial).

        Returns once the witnesses decided: guilty (the session is cancelled for ``CONSUMER_MISUSE`` and
        attested, ready to settle through spec 02) or acquitted (the VM runs on; the accusation costs this
        node trust).
        """
        if self._outcome(ATTEST_CHANNEL, session, "Provider") != "vm_verified":
            raise LedgerError(f"no running VM session {session[:16]} with this node as provider to accuse in")
        fired = self.engine.fire(
            ATTEST_CHANNEL, session, "Provider", "accuse_misuse", {"evidence": evidence}, self._now()
        )
        instance = await self.follow(ATTEST_CHANNEL, session, "Provider", fired, VM_START_DONE, timeout)
        store = instance.store
        votes = store.get("trial_votes") or []
        final = store.get("final_attestation") or {}
        attestation = final.get("attestation") or {}
        guilty = store.get("termination_reason") == "CONSUMER_MISUSE"
        return {
            "session": session,
            "state": instance.state,
            "verdict": "guilty" if guilty else "acquitted",
            "evidence_hash": store.get("evidence_hash"),
            "votes": len({vote["witness"] for vote in votes}),
            "guilty_votes": len({vote["witness"] for vote in votes if vote["guilty"]}),
            "termination_reason": attestation.get("termination_reason"),
            "duration_ms": attestations.duration_ms(attestation.get("duration")) if attestation else None,
            "block": self.written.get((session, "VM_SESSION")),
        }

    # -- transaction 02 -------------------------------------------------------------------------

    async def settle(self, session: str, duration_ms: int | None, hourly_rate: int, timeout: float = SETTLE_WAIT_S
                     ) -> dict[str, Any]:  # fmt: skip
        """Run spec 02 as the consumer of the open lock ``session``; return when it reports settled or unsettled.

        ``duration_ms`` None settles the duration the witnesses attested (spec 01) as recorded on this chain.
        """
        if duration_ms is None:
            duration_ms = attestations.attested_duration_ms(self.ledger.store, self.ledger.me, bytes.fromhex(session))
            if duration_ms is None:
                raise LedgerError(f"no attested duration for session {session[:16]}; end the VM session or give one")
        state = self.ledger.state(self.ledger.me)
        lock = state.locks.get(bytes.fromhex(session))
        if lock is None and bytes.fromhex(session) in state.settled:  # settled already (e.g. a claim adopted on sync)
            _evidence, wire = state.settled[bytes.fromhex(session)]
            return settled_summary(session, wire, None)
        if lock is None:
            raise LedgerError(f"no open escrow lock for session {session[:16]} on this chain")
        adopted = await self._adopt_claim(lock, CLAIM_LOOKUP_TIMEOUT_S)
        if adopted is not None:
            return adopted
        self._clear_finished_settlement(session, "Consumer")
        inputs = {
            "provider": lock.provider,
            "witnesses": list(lock.witnesses),
            "lock_hash": lock.lock_hash.hex(),
            "escrow_total": lock.total,
            "duration_ms": duration_ms,
            "hourly_rate": hourly_rate,
        }
        _, actions = self.engine.open(SETTLE_CHANNEL, "Consumer", "settle", inputs, self._now(), session=session)
        instance = await self.follow(SETTLE_CHANNEL, session, "Consumer", actions, SETTLE_DONE, timeout)
        if self._outcome(SETTLE_CHANNEL, session, "Consumer") != "settled":
            # the witnesses would not settle it (claimed, or they signed a claim this node had not seen yet)
            adopted = await self._adopt_claim(lock, CATCH_UP_TIMEOUT_S)
            if adopted is not None:
                return adopted
        store = instance.store
        final = store.get("final_settlement") or {}
        settlement = final.get("settlement") or {}
        block = self.written.get((session, "BALANCE_UNLOCK"))
        if self._outcome(SETTLE_CHANNEL, session, "Consumer") == "settled" and block is None:
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

    def _clear_finished_settlement(self, session: str, actor: str) -> None:
        """Make way for a new spec 02 attempt by ``actor``: refuse while one runs; forget a finished one (a
        settlement or claim refused earlier is asked again, rather than waiting out its retention)."""
        table = self.tables[SETTLE_CHANNEL]
        previous = table.get(session, actor)
        if previous is not None and not previous.terminal:
            raise LedgerError(f"session {session[:16]} is being settled already")
        table.instances.pop((session, actor), None)

    async def _adopt_claim(self, lock: EscrowLock, timeout: float) -> dict[str, Any] | None:
        """As a consumer coming back to an open lock: if its provider recorded a claim of it (spec 02's provider
        path), record that same witness-signed settlement rather than asking for another; None when there is none.

        The provider's chain is fetched first, for at most ``timeout`` seconds.
        """
        session = lock.session_id.hex()
        await self.refresh(lock.provider, timeout)
        settled = self.ledger.state(self.ledger.me).settled.get(lock.session_id)
        if settled is not None:  # the sync itself adopted the claim (``accept_incoming``)
            self.log.info("provider's claim adopted", session=session[:12], peer=lock.provider[:12])
            return {**settled_summary(session, settled[1], None), "adopted_claim": True}
        closure = claimed_closures(self.ledger.store.states()).get(lock.session_id)
        if closure is None or closure.consumer != self.ledger.me:
            return None
        block = self.ledger.append(BlockKind.ESCROW_SETTLE, {"settlement": closure.settlement}, self.now_ms())
        self.written[(session, "BALANCE_UNLOCK")] = block.ref
        self.log.info("provider's claim adopted", session=session[:12], peer=lock.provider[:12], block=block.ref)
        return {**settled_summary(session, closure.settlement, block.ref), "adopted_claim": True}

    async def claim(self, session: str, timeout: float = SETTLE_WAIT_S) -> dict[str, Any]:
        """Run spec 02's claim as the provider of ``session``, whose consumer never settled; return when it ends.

        The claim names the duration the witnesses attested (this node's ``vm_session`` end block) and the
        hourly rate the consumer signed in its lock request (kept when the lock was confirmed here); the
        witnesses sign it only after their ``ABANDON_TIMEOUT``. A session already paid here ends at once
        (``state`` ``PAID``).
        """
        me = self.ledger.me
        session_id = bytes.fromhex(session)
        paid = self.ledger.state(me).payments.get(session_id)
        if paid is not None:
            return claim_summary(session, "PAID", None, paid[1], self.written.get((session, "PAYMENT_RECEIVED")))
        lock = attestations.find_lock(self.ledger.store, session_id)
        if lock is None or lock.provider != me:
            raise LedgerError(f"no open escrow lock for session {session[:16]} with this node as provider")
        duration_ms = attestations.attested_duration_ms(self.ledger.store, me, session_id)
        if duration_ms is None:
            raise LedgerError(f"no attested duration for session {session[:16]}; the witnesses must attest its end")
        signed = self.ledger.store.served_request(session_id)
        if signed is None:
            raise LedgerError(f"no signed lock request kept for session {session[:16]}: its rate cannot be claimed")
        self._clear_finished_settlement(session, "Provider")
        inputs = {
            "consumer": lock.consumer,
            "witnesses": list(lock.witnesses),
            "lock_hash": lock.lock_hash.hex(),
            "escrow_total": lock.total,
            "duration_ms": duration_ms,
            "hourly_rate": signed["request"]["hourly_rate"],
            "lock_request": signed["request"],
            "request_signature": signed["signature"],
        }
        _, actions = self.engine.open(SETTLE_CHANNEL, "Provider", "claim", inputs, self._now(), session=session)
        instance = await self.follow(SETTLE_CHANNEL, session, "Provider", actions, SETTLE_DONE, timeout)
        store = instance.store
        block = self.written.get((session, "PAYMENT_RECEIVED"))
        if self._outcome(SETTLE_CHANNEL, session, "Provider") == "settled" and block is None:
            raise LedgerError(f"claim of {session[:16]} was signed but not written: {self.block_failures[-1:]}")
        return claim_summary(session, instance.state, store.get("failure_reason"), store.get("final_settlement"), block)

    def _keep_served_request(self, session: str) -> None:
        """As provider, keep the consumer's signed lock request once the lock is confirmed here: a claim names
        its rate (the spec 00 instance is forgotten soon after)."""
        instance = self.engine.instance(CHANNEL, session, "Provider")
        if instance is None or not instance.store.get("lock_request"):
            return
        signed = {"request": instance.store["lock_request"], "signature": instance.store["request_signature"]}
        self.ledger.store.record_served_request(bytes.fromhex(session), signed)

    # -- transaction 03 -------------------------------------------------------------------------

    async def query(
        self, subject: str, what: str, witnesses: list[str], min_confidence: str = "LOW", timeout: float = QUERY_WAIT_S
    ) -> dict[str, Any]:
        """Run spec 03 as the requester; return the attested value (or the failure) and every signed answer.

        A HIGH-confidence answer about the chain that disagrees with the chain up to the head it names
        (held here after syncing the subject) is proven false: this node writes an accusation carrying
        the proof, and the result lists it.
        """
        if subject in witnesses or not witnesses:
            raise LedgerError("a state query needs witnesses other than its subject")
        session, actions = self.engine.ask(subject, what, witnesses, min_confidence, self._now())
        instance = await self.follow(QUERY_CHANNEL, session, "Requester", actions, QUERY_DONE, timeout)
        store = instance.store
        attested = instance.state == "ATTESTED"
        supporters = {a["witness"] for a in store.get("attestation") or []} if attested else set()
        answers = signed_answers(store.get("answers") or [])
        proofs = await self._prove_false(subject, [a for a in answers if a.witness not in supporters])
        return {
            "session": session,
            "state": instance.state,
            "subject": subject,
            "query": what,
            "value": store.get("value") if attested else None,
            "confidence": store.get("confidence") if attested else None,
            "failure_reason": store.get("failure_reason"),
            "witnesses": list(witnesses),
            "answers": [{**answer_summary(a), "agreed": a.witness in supporters} for a in answers],
            "block": self.written.get((session, "STATE_ATTESTATION")),
            "false_answers": proofs,
        }

    async def _prove_false(self, subject: str, dissenters: list[Answer]) -> list[dict[str, Any]]:
        """Prove the dissenting HIGH answers about the chain false where the chain held here says otherwise."""
        falsifiable = [
            a for a in dissenters if a.statement["query"] in CHAIN_QUERIES and a.confidence == Confidence.HIGH
        ]
        if not falsifiable:
            return []
        await self.refresh(subject)
        proven = []
        for answer in falsifiable:
            head_seq = answer.statement["head_seq"]
            blocks = tuple(self.ledger.store.blocks(subject, 0, head_seq))
            proof = FalseAnswerProof(answer, blocks)
            try:
                proof.verify(self.ledger.params)
                block = self.ledger.accuse(answer.witness, FalseAnswerProof.kind, self.now_ms(), proof)
            except LedgerError as exc:
                self.log.info("dissenting answer not proven false", peer=answer.witness[:12], reason=str(exc))
                continue
            proven.append(
                {"witness": answer.witness, "accusation": block.ref, "proof": canonical(proof.to_wire()).hex()}
            )
        return proven


def settled_summary(session: str, wire: Any, block: str | None) -> dict[str, Any]:
    """What ``settle`` returns for a session settled by evidence already in hand (a claim adopted, or on the chain)."""
    settlement = wire.get("settlement") if isinstance(wire, dict) else None
    return {
        "session": session,
        "state": "SETTLED",
        "failure_reason": None,
        "block": block,
        "signatures": len(wire.get("signatures") or []) if isinstance(wire, dict) else 0,
        "settlement": {k: v for k, v in (settlement or {}).items() if type(v) is int},
        "trust_reports_milli": [],
    }


def claim_summary(session: str, state: str, reason: str | None, final: Any, block: str | None) -> dict[str, Any]:
    """What ``claim`` returns: the state, why it failed, the settlement's integers and the payment block."""
    settlement = final.get("settlement") if isinstance(final, dict) else None
    return {
        "session": session,
        "state": state,
        "failure_reason": reason,
        "block": block,
        "signatures": len(final.get("signatures") or []) if isinstance(final, dict) else 0,
        "settlement": {k: v for k, v in (settlement or {}).items() if type(v) is int},
    }


def signed_answers(entries: list[Any]) -> list[Answer]:
    """The well-formed, validly signed answers among a spec 03 requester's collected ones."""
    out = []
    for entry in entries:
        try:
            answer = Answer.from_wire({"statement": entry.get("answer"), "signature": entry.get("signature")})
        except LedgerError:
            continue
        if answer.signed() and answer.witness == entry.get("witness"):
            out.append(answer)
    return out


def answer_summary(answer: Answer) -> dict[str, Any]:
    s = answer.statement
    return {"witness": answer.witness, "value": s["value"], "confidence": s["confidence"], "head_seq": s["head_seq"]}
