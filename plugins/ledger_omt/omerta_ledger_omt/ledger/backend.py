"""The ``omt`` ledger backend: the node's running ledger, chain sync over the transport, periodic catch-up.

Built by the kernel from the ``omt`` ``ServiceRecord`` (provides ``Ledger``). It opens the chain store in
``node.plugin_state_dir("omt")``, writes this identity's block 0 on first start,
answers sync requests on the transport channel ``ledger.sync``, runs escrow
transactions and state queries (:mod:`.transactions`), and every ``ledger_sync_interval_s`` syncs
with the peers discovery knows, accepting transfers addressed to this node and
claiming settled payments. Touches the chain store and the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from typing import Any

from omerta_core.control.progress import report
from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.discovery import Discovery, Liveness
from omerta_core.interfaces.ledger import (
    AttestationResult,
    EscrowConfirmation,
    EscrowLockResult,
    EscrowTopUpResult,
    SettlementResult,
    VmProbe,
    VmSessionResult,
)
from omerta_core.interfaces.transport import Transport
from omerta_core.node import NodeContext
from omerta_ledger_omt.ledger.blocks import Block, BlockKind
from omerta_ledger_omt.ledger.chainstate import WITNESS_COUNT, WITNESS_THRESHOLD, Parameters
from omerta_ledger_omt.ledger.claims import claimed_closures
from omerta_ledger_omt.ledger.engine import SPEC_02, SPEC_05, load_program
from omerta_ledger_omt.ledger.errors import EncodingError, LedgerError
from omerta_ledger_omt.ledger.local import LocalLedger, supply_audit
from omerta_ledger_omt.ledger.omt_host import (
    ATTEST_CHANNEL,
    AUDIT_CHANNEL,
    CHECK_CHANNEL,
    PROBE_CHANNEL,
    QUERY_CHANNEL,
    SETTLE_CHANNEL,
)
from omerta_ledger_omt.ledger.omt_host import CHANNEL as OMT_CHANNEL
from omerta_ledger_omt.ledger.state_query import QUERIES, Confidence
from omerta_ledger_omt.ledger.store import ChainStore
from omerta_ledger_omt.ledger.suspicion import BASE_INTERVAL_MS
from omerta_ledger_omt.ledger.sync import CHANNEL, SyncClient, SyncResponder, is_request, parse
from omerta_ledger_omt.ledger.transactions import TransactionRunner
from omerta_ledger_omt.ledger.trust import TrustParameters

#: Default seconds between background syncs with every known peer.
SYNC_INTERVAL_S = 30.0

#: Default seconds one sync with one peer may take before it is abandoned.
SYNC_TIMEOUT_S = 20.0

#: Default seconds ``ledger.lock`` waits for transaction 00: longer than its preliminary and vote timeouts.
LOCK_TIMEOUT_S = 120.0

#: Most spec 00 sessions ``lock_escrow`` runs for one lock: the first, and a new request when a refusal
#: says asking again may lock (this node's chain moved on meanwhile, or too few witnesses confirmed it).
LOCK_TRIES = 3

#: Default number of witnesses a state query (transaction 03) asks; its threshold is 3.
QUERY_WITNESSES = 5

#: Seconds a provider about to claim a session spends fetching its consumer's chain, to find a settlement first.
CLAIM_SYNC_TIMEOUT_S = 5.0

#: Default seconds after its attestation of a session's end before a witness signs the provider's claim of it
#: (spec 02's ABANDON_TIMEOUT): an hour, ample for a consumer that crashed to come back and settle itself.
ABANDON_TIMEOUT_S = 3600.0

CONFIG_DEFAULTS: dict[str, Any] = {
    "ledger_mint_authorities": [],
    "ledger_witness_count": WITNESS_COUNT,
    "ledger_witness_threshold": WITNESS_THRESHOLD,
    "ledger_sync_interval_s": SYNC_INTERVAL_S,
    "ledger_sync_timeout_s": SYNC_TIMEOUT_S,
    "ledger_age_maturity_days": TrustParameters().age_maturity_days,
    "ledger_lock_timeout_s": LOCK_TIMEOUT_S,
    "ledger_query_witnesses": QUERY_WITNESSES,
    # test hook: this node answers state queries about chains falsely, with full confidence (never on by default)
    "ledger_test_lie_state_answers": False,
    # transaction 05: seconds between health checks of an unsuspected peer (shrinks with suspicion)
    "ledger_health_interval_s": BASE_INTERVAL_MS / 1000,
    # transaction 02: as a witness, sign a provider's claim of an abandoned session only this long after attesting
    # its end (the rental plugin's provider claims after its own abandon_timeout_s, which must not be shorter)
    "ledger_abandon_timeout_s": ABANDON_TIMEOUT_S,
}


def now_ms() -> int:
    return int(time.time() * 1000)


def parameters_from(config: dict[str, Any]) -> Parameters:
    merged = {**CONFIG_DEFAULTS, **config}
    authorities = merged["ledger_mint_authorities"]
    if isinstance(authorities, str):
        authorities = [a for a in authorities.split(",") if a.strip()]
    return Parameters(
        mint_authorities=frozenset(str(PeerId(a)) for a in authorities),
        witness_count=int(merged["ledger_witness_count"]),
        witness_threshold=int(merged["ledger_witness_threshold"]),
    )


class OmtLedger:
    """The running ledger of one node."""

    def __init__(self, node: NodeContext) -> None:
        self.node = node
        self.config = {**CONFIG_DEFAULTS, **node.plugin_config("omt")}
        self.params = parameters_from(self.config)
        self.log = node.log.bind(component="ledger")
        self.store: ChainStore | None = None
        self.local: LocalLedger | None = None
        self.responder: SyncResponder | None = None
        self._inbox: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        #: One sync per peer at a time: replies carry no request id, so a second sync would take the first's.
        self._syncing: dict[str, asyncio.Lock] = {}
        #: One escrow lock of this node's at a time through the typed API (see ``lock_escrow``).
        self._locking = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.runner: TransactionRunner | None = None
        self.malformed = 0
        self.syncs = 0

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.store = ChainStore(self.node.plugin_state_dir("omt"), self.params)
        trust_params = TrustParameters(age_maturity_days=float(self.config["ledger_age_maturity_days"]))
        self.local = LocalLedger(self.node.identity, self.store, trust_params)
        self.local.ensure_identity(now_ms())
        self.responder = SyncResponder(self.store)
        transport = self.node.find(Transport)
        if transport is not None:
            transport.on_message(CHANNEL, self._on_message)
            lie = bool(self.config["ledger_test_lie_state_answers"])
            if lie:
                self.log.warning("test hook on: this node answers state queries falsely")
            interval_s = float(self.config["ledger_health_interval_s"])
            if interval_s <= 0:
                raise LedgerError(f"ledger_health_interval_s must be above 0, got {interval_s}")
            check_program = load_program(SPEC_05).with_parameters({"BASE_INTERVAL": interval_s})
            abandon_s = float(self.config["ledger_abandon_timeout_s"])
            if abandon_s < 0:
                raise LedgerError(f"ledger_abandon_timeout_s must not be negative, got {abandon_s}")
            settle_program = load_program(SPEC_02).with_parameters({"ABANDON_TIMEOUT": abandon_s})
            self.runner = TransactionRunner(
                self.local, transport.send, self.log, now_ms, self._catch_up,
                programs={CHECK_CHANNEL: check_program, SETTLE_CHANNEL: settle_program},
                check_base_ms=int(interval_s * 1000), lie=lie,
            )  # fmt: skip
            transport.on_message(OMT_CHANNEL, self.runner.on_envelope)
            transport.on_message(SETTLE_CHANNEL, self.runner.on_settle_envelope)
            transport.on_message(ATTEST_CHANNEL, self.runner.on_attest_envelope)
            transport.on_message(PROBE_CHANNEL, self.runner.on_probe)
            transport.on_message(QUERY_CHANNEL, self.runner.on_query_envelope)
            transport.on_message(AUDIT_CHANNEL, self.runner.on_audit_envelope)
            transport.on_message(CHECK_CHANNEL, self.runner.on_check_envelope)
            self.runner.start()
        interval = float(self.config["ledger_sync_interval_s"])
        if interval > 0 and transport is not None:
            self._task = asyncio.create_task(self._sync_forever(interval))
        self.log.info("ledger started", blocks=self.store.block_count(), path=str(self.store.path))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.runner is not None:
            await self.runner.stop()
            self.runner = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def status(self) -> dict[str, Any]:
        if self.store is None or self.local is None:
            return {"running": False}
        own = self.store.state(self.local.me)
        return {
            "blocks": self.store.block_count(),
            "chains": len(self.store.owners()),
            "own_head": own.head_seq,
            "balance": own.balance,
            "locked": own.locked,
            "proofs": len(self.store.proofs()),
            "syncs": self.syncs,
            "sync_malformed": self.malformed,
            "sessions": 0 if self.runner is None else self.runner.engine.session_count(),
            "transaction_messages_dropped": 0 if self.runner is None else self.runner.dropped,
            "transaction_action_failures": 0 if self.runner is None else self.runner.action_failures,
        }

    @property
    def ledger(self) -> LocalLedger:
        if self.local is None:
            raise LedgerError("the ledger is not running")
        return self.local

    # -- the Ledger interface -------------------------------------------------------------

    def balance(self, peer: PeerId) -> int:
        return self.ledger.balance(str(peer))

    def trust(self, peer: PeerId) -> float:
        return self.ledger.trust(str(peer), now_ms())

    # -- typed escrow (the Ledger interface; the rental protocol uses these) ---------------

    async def lock_escrow(
        self, provider: PeerId, amount: int, *, hourly_rate: int = 0, timeout: float | None = None
    ) -> EscrowLockResult:
        """Lock ``amount`` for ``provider`` (spec 00), one lock at a time: each request then names the head that
        holds the previous lock, so the witnesses' attested balance (spec 03) matches it, and concurrent
        rentals never look like a double lock. The request signs ``hourly_rate``. A refused request is made
        again while the refusal says that may lock (this node's chain moved on meanwhile, or too few witnesses
        could confirm its balance), up to :data:`LOCK_TRIES` tries; the failure reason is one line saying why. An
        ``amount`` above this node's available balance asks no witness (``failure_code`` ``INSUFFICIENT_FUNDS``)."""
        async with self._locking:
            outcome = await self.lock(str(provider), amount, timeout, hourly_rate, tries=LOCK_TRIES)
        locked = outcome["state"] == "LOCKED"
        reason = None if locked else str(outcome.get("reason") or f"the lock ended in {outcome['state']}")
        witnesses = tuple(PeerId(w) for w in outcome["witnesses"])
        code = None if locked else str(outcome.get("failure_reason") or outcome["state"])
        return EscrowLockResult(outcome["session"], locked, amount, witnesses, reason, code)

    async def top_up_escrow(self, session: str, amount: int, *, timeout: float | None = None) -> EscrowTopUpResult:
        try:
            outcome = await self.topup(session, amount, timeout)
        except LedgerError as exc:
            return EscrowTopUpResult(session, False, 0, str(exc))
        done = bool(outcome["topped_up"])
        reason = None if done else str(outcome.get("failure_reason") or "the witnesses did not accept the top-up")
        return EscrowTopUpResult(session, done, int(outcome["total_escrowed"]), reason)

    async def confirm_escrow(self, session: str, *, timeout: float) -> EscrowConfirmation:
        outcome = await self._runner().confirmed_lock(session, timeout)
        if not outcome["confirmed"]:
            state = outcome["state"]
            reason = outcome["reason"] or (
                "no such lock towards this node" if state is None else f"the lock is {state}"
            )
            return EscrowConfirmation(session, False, failure_reason=str(reason))
        return EscrowConfirmation(session, True, PeerId(outcome["consumer"]), int(outcome["amount"]),
                                  hourly_rate=int(outcome["hourly_rate"]))  # fmt: skip

    async def start_vm_session(self, session: str, probe: VmProbe) -> VmSessionResult:
        runner = self._runner()
        runner.vm_probes[session] = probe
        outcome = await runner.start_vm(session)
        return VmSessionResult(session, outcome["state"] == "VM_RUNNING", str(outcome["state"]))

    async def attest_vm_session(self, session: str, *, unbilled_ms: int = 0) -> AttestationResult:
        runner = self._runner()
        try:
            outcome = await runner.end_vm(session, unbilled_ms=unbilled_ms)
        except LedgerError as exc:
            return AttestationResult(session, False, None, str(exc))
        finally:
            runner.vm_probes.pop(session, None)
        duration = outcome["duration_ms"]
        return AttestationResult(session, duration is not None, duration, outcome["termination_reason"])

    async def settle_escrow(self, session: str, duration_ms: int, hourly_rate: int) -> SettlementResult:
        try:
            outcome = await self.settle(session, duration_ms, hourly_rate)
        except LedgerError as exc:
            return SettlementResult(session, False, duration_ms, failure_reason=str(exc))
        split = outcome["settlement"]
        settled = outcome["state"] == "SETTLED"
        reason = None if settled else str(outcome.get("failure_reason") or f"settlement ended in {outcome['state']}")
        return SettlementResult(
            session,
            settled,
            duration_ms,
            split.get("provider_payment", 0),
            split.get("burn", 0),
            split.get("refund", 0),
            reason,
        )

    async def claim_escrow(self, session: str) -> SettlementResult:
        runner = self._runner()
        try:
            session_id = bytes.fromhex(session)
            if (
                session_id not in self.ledger.store.state(self.ledger.me).payments
            ):  # the consumer may have settled meanwhile: its chain then pays this node on sync
                consumer = _consumer_of(self.ledger.store, session_id)
                if consumer is not None:  # briefly: a consumer that abandoned its lock is usually gone
                    await self.sync_all([consumer], CLAIM_SYNC_TIMEOUT_S)
            outcome = await runner.claim(session)
        except (LedgerError, ValueError) as exc:
            return SettlementResult(session, False, 0, failure_reason=str(exc))
        split = outcome["settlement"]
        settled = outcome["state"] in ("SETTLED", "PAID")
        reason = None if settled else str(outcome.get("failure_reason") or f"the claim ended in {outcome['state']}")
        return SettlementResult(session, settled, split.get("duration_ms", 0), split.get("provider_payment", 0),
                                split.get("burn", 0), split.get("refund", 0), reason)  # fmt: skip

    async def escrow_total(self, session: str, consumer: PeerId) -> int | None:
        await self.sync_all([str(consumer)])
        try:
            lock = self.ledger.store.state(str(consumer)).locks.get(bytes.fromhex(session))
        except ValueError:
            return None
        return None if lock is None else lock.total

    async def sync(self, peers: list[PeerId]) -> None:
        await self.sync_all([str(p) for p in peers])

    # -- named transactions (the ledger.run control method) -------------------------------

    async def run_transaction(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run a transaction to its end: ``escrow_lock`` (spec 00), ``escrow_settle``, or a one-party one."""
        at = now_ms()
        ledger = self.ledger
        if name == "escrow_lock":
            # spec 00 as is: no refusal here before the witnesses judge, so theirs can be exercised
            provider, amount = str(params["provider"]), int(params["amount"])
            return await self.lock(provider, amount, params.get("timeout"), check_funds=False)
        if name == "escrow_settle":
            duration = params.get("duration_ms")
            return await self.settle(
                str(params["session"]), None if duration is None else int(duration), int(params["hourly_rate"])
            )
        if name == "transfer":
            block = ledger.transfer(str(PeerId(params["to"])), int(params["amount"]), at)
        elif name == "mint":
            block = ledger.mint(str(PeerId(params["to"])), int(params["amount"]), at)
        elif name == "burn":
            block = ledger.burn(int(params["amount"]), at)
        elif name == "checkpoint":
            block = ledger.checkpoint(at)
        else:
            raise LedgerError(
                f"no ledger transaction named {name!r} "
                "(known: escrow_lock, escrow_settle, transfer, mint, burn, checkpoint)"
            )
        return block_summary(block)

    # -- sync ----------------------------------------------------------------------------------

    async def _on_message(self, peer: PeerId, data: bytes) -> None:
        try:
            message = parse(data)
        except EncodingError:
            self.malformed += 1
            return
        if is_request(message):
            assert self.responder is not None
            reply = self.responder.answer(message)
            if reply is not None:
                await self.node.service(Transport).send(peer, CHANNEL, reply)
            return
        queue = self._inbox.get(str(peer))
        if queue is None:
            self.malformed += 1
            return
        queue.put_nowait(message)

    async def sync_with(self, peer: str, timeout: float | None = None) -> dict[str, Any]:
        """Fetch every block ``peer`` holds beyond ours; return what happened.

        Syncs with one peer run one after another (a witness judging a lock and answering a balance query
        about the same consumer starts two at once); the wait for an earlier one counts in the budget.
        """
        budget = float(timeout if timeout is not None else self.config["ledger_sync_timeout_s"])
        started = time.monotonic()
        turn = self._syncing.setdefault(peer, asyncio.Lock())
        try:
            async with asyncio.timeout(budget):
                await turn.acquire()
        except TimeoutError:
            return {"error": f"timed out after {budget:.0f} s waiting for an earlier sync with this peer"}
        try:
            return await self._sync_once(peer, budget, started)
        finally:
            turn.release()

    async def _sync_once(self, peer: str, budget: float, started: float) -> dict[str, Any]:
        store = self.ledger.store
        transport = self.node.service(Transport)
        client = SyncClient(store)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._inbox[peer] = queue
        try:
            await transport.send(PeerId(peer), CHANNEL, client.begin())
            while not client.done:
                remaining = budget - (time.monotonic() - started)
                if remaining <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(queue.get(), remaining)
                for request in client.receive(message):
                    await transport.send(PeerId(peer), CHANNEL, request)
        except TimeoutError:
            summary = client.summary()
            summary["error"] = f"timed out after {budget:.0f} s"
            return summary
        finally:
            self._inbox.pop(peer, None)
        self.syncs += 1
        if self.runner is not None:
            self.runner.engine.note_synced(peer, now_ms() / 1000.0)
        accepted = self.accept_incoming()
        summary = client.summary()
        summary["accepted"] = len(accepted)
        summary["seconds"] = round(time.monotonic() - started, 3)
        return summary

    def known_peers(self, *, live_only: bool = False) -> list[str]:
        """Peers discovery knows (``live_only``: leaving out those it has found dead)."""
        peers: set[str] = set()
        discovery = self.node.find(Discovery)
        if discovery is not None:
            peers |= {
                str(info.peer) for info in discovery.peers() if not live_only or info.liveness is not Liveness.DEAD
            }
        peers.discard(self.ledger.me)
        return sorted(peers)

    async def _catch_up(self, peer: str) -> None:
        """Fetch ``peer``'s newer blocks (a witness does this before judging a request or answering a query)."""
        result = (await self.sync_all([peer]))[peer]
        if "error" in result:
            raise LedgerError(f"sync with {peer[:12]} failed: {result['error']}")

    async def sync_all(self, peers: list[str] | None = None, timeout: float | None = None) -> dict[str, Any]:
        targets = peers or self.known_peers(live_only=True)
        if targets:
            budget = timeout if timeout is not None else self.config["ledger_sync_timeout_s"]
            report(f"syncing with {len(targets)} peer(s), up to {float(budget):.0f} s each")
        results = await asyncio.gather(*(self._sync_reporting(p, timeout) for p in targets), return_exceptions=True)
        return {
            peer: (result if isinstance(result, dict) else {"error": str(result)})
            for peer, result in zip(targets, results, strict=True)
        }

    async def _sync_reporting(self, peer: str, timeout: float | None) -> dict[str, Any]:
        summary = await self.sync_with(peer, timeout)
        outcome = summary.get("error") or f"{summary.get('blocks_added', 0)} block(s) added"
        report(f"{peer[:12]}: {outcome}")
        return summary

    async def _sync_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sync_all()
            except Exception:
                self.log.exception("background sync failed")

    def accept_incoming(self) -> list[Block]:
        """Write agreements for transfers and mints addressed to this node, claim settled payments, and close this
        node's locks its providers claimed with the same settlement (spec 02's claim)."""
        ledger = self.ledger
        mine = ledger.state(ledger.me)
        written = []
        for owner in ledger.store.owners():
            if owner == ledger.me:
                continue
            state = ledger.state(owner)
            for proposal_hash, (_kind, to, _amount) in list(state.proposals.items()):
                if to != ledger.me or proposal_hash in mine.accepted_proposals:
                    continue
                proposal = _find_block(ledger.store, owner, proposal_hash)
                if proposal is not None:
                    written += self._write(functools.partial(ledger.agree, proposal))
            for session, (provider, _amount) in list(state.payments_out.items()):
                if provider != ledger.me or session in mine.paid_sessions:
                    continue
                lock, settlement = state.settled[session]
                payload = {"lock": lock, "settlement": settlement}
                written += self._write(functools.partial(ledger.append, BlockKind.ESCROW_PAYMENT, payload))
        for closure in claimed_closures(ledger.store.states()).values():
            if closure.consumer == ledger.me:
                payload = {"settlement": closure.settlement}
                written += self._write(functools.partial(ledger.append, BlockKind.ESCROW_SETTLE, payload))
        return written

    def _write(self, append: Callable[[int], Block]) -> list[Block]:
        try:
            return [append(now_ms())]
        except LedgerError as exc:
            self.log.warning("incoming value not accepted", reason=str(exc))
            return []

    async def lock(
        self,
        provider: str,
        amount: int,
        timeout: float | None = None,
        hourly_rate: int = 0,
        *,
        tries: int = 1,
        check_funds: bool = True,
    ) -> dict[str, Any]:
        """Run transaction 00 as the consumer towards ``provider`` (the provider picks the witnesses); an amount
        beyond this node's available balance is refused before any witness is asked unless ``check_funds`` is
        false (``ledger.run escrow_lock``)."""
        if self.runner is None:
            raise LedgerError("escrow needs a transport; start the node with one (e.g. --plugins udp,omt)")
        wait = float(timeout if timeout is not None else self.config["ledger_lock_timeout_s"])
        return await self.runner.lock(str(PeerId(provider)), amount, wait, hourly_rate, tries=tries,
                                      check_funds=check_funds)  # fmt: skip

    async def topup(self, session: str, amount: int, timeout: float | None = None) -> dict[str, Any]:
        """Add ``amount`` to this consumer's open lock ``session`` through transaction 00's top-up round."""
        if self.runner is None:
            raise LedgerError("escrow needs a transport; start the node with one (e.g. --plugins udp,omt)")
        wait = float(timeout if timeout is not None else self.config["ledger_lock_timeout_s"])
        return await self.runner.topup(session, amount, wait)

    async def settle(self, session: str, duration_ms: int | None, hourly_rate: int) -> dict[str, Any]:
        """Settle lock ``session`` through transaction 02 (``duration_ms`` None: the duration spec 01 attested)."""
        return await self._runner().settle(session, duration_ms, hourly_rate)

    async def start_vm(self, session: str, vm_endpoint: str | None = None) -> dict[str, Any]:
        """As the provider of lock ``session``, announce its VM to the witnesses (transaction 01)."""
        return await self._runner().start_vm(session, vm_endpoint)

    async def attest(self, session: str) -> dict[str, Any]:
        """As consumer or provider, end VM session ``session`` and wait for the witnesses' attestation."""
        return await self._runner().end_vm(session)

    async def query(
        self,
        subject: str,
        what: str,
        witnesses: list[str] | None = None,
        min_confidence: str = "LOW",
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Ask witnesses ``what`` about ``subject`` through transaction 03 (default: the most trusted live peers)."""
        if what not in QUERIES:
            raise LedgerError(f"cannot ask for {what!r}; ask for one of {', '.join(QUERIES)}")
        if min_confidence not in Confidence.__members__:
            raise LedgerError(f"confidence must be one of {', '.join(Confidence.__members__)}, got {min_confidence!r}")
        if subject == self.ledger.me:
            raise LedgerError("ask about another node: this node's own state is `omerta ledger balance`")
        chosen = witnesses or self.query_witnesses(subject)
        if len(chosen) < 3:
            raise LedgerError(f"a state query needs at least 3 witnesses other than the subject; {len(chosen)} known")
        report(f"asking {len(chosen)} witness(es) for the {what} of {subject[:12]}")
        wait = {} if timeout is None else {"timeout": float(timeout)}
        return await self._runner().query(subject, what, chosen, min_confidence, **wait)

    def query_witnesses(self, subject: str) -> list[str]:
        """The ``ledger_query_witnesses`` peers this node trusts most, leaving out ``subject``: live peers
        discovery knows first, then the owners of other chains held here."""
        at = now_ms()
        scores = self.ledger.trust_all(at)
        live = set(self.known_peers(live_only=True))
        held = set(self.ledger.store.owners()) - {self.ledger.me}
        candidates = sorted((live | held) - {subject}, key=lambda p: (p not in live, -scores.get(p, 0.0), p))
        return candidates[: int(self.config["ledger_query_witnesses"])]

    async def accuse(self, session: str, evidence: dict[str, Any]) -> dict[str, Any]:
        """As the provider of VM session ``session``, accuse its consumer of misuse (spec 01's trial)."""
        return await self._runner().accuse(session, evidence)

    def _runner(self) -> TransactionRunner:
        if self.runner is None:
            raise LedgerError("escrow needs a transport; start the node with one (e.g. --plugins udp,omt)")
        return self.runner

    @property
    def check_base_ms(self) -> int:
        """Milliseconds between health checks of an unsuspected peer (``ledger_health_interval_s``)."""
        return int(float(self.config["ledger_health_interval_s"]) * 1000)

    async def audit_peer(self, subject: str, counterparties: list[str] | None = None) -> dict[str, Any]:
        """Audit ``subject`` between nodes (transaction 04) and publish the result on this chain."""
        report(f"auditing {subject[:12]}: fetching its chain, asking its counterparties")
        return await self._runner().audits.audit(subject, counterparties)

    async def health_check(self, subject: str, cabal: list[str] | None = None) -> dict[str, Any]:
        """Ask a cabal to health-check ``subject`` (transaction 05); refused unless it is due."""
        report(f"asking a cabal to check {subject[:12]} (each member audits it)")
        return await self._runner().audits.health_check(subject, cabal)

    def audit(self) -> dict[str, int]:
        return supply_audit(self.ledger.store.states())


def _consumer_of(store: ChainStore, session_id: bytes) -> str | None:
    """The consumer of lock ``session_id`` (open or settled) on a chain held here, or None."""
    for owner in store.owners():
        state = store.state(owner)
        if session_id in state.locks or session_id in state.settled:
            return owner
    return None


def _find_block(store: ChainStore, owner: str, block_hash: bytes) -> Block | None:
    for block in store.blocks(owner):
        if block.hash == block_hash:
            return block
    return None


def block_summary(block: Block) -> dict[str, Any]:
    """A JSON-ready view of a block (bytes as hex)."""
    return {
        "owner": block.owner,
        "seq": block.seq,
        "kind": str(block.kind),
        "time_ms": block.time_ms,
        "hash": block.hash.hex(),
        "prev": block.prev.hex(),
        "payload": jsonable(block.payload),
    }


def jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
