"""The ledger's transaction handling as a sans-IO engine: events in, actions out, each with its session.

:class:`TransactionEngine` keeps one :class:`SessionTable` of ``.omt`` actor instances per spec
and is fed three kinds of event, always with the time ``now`` (seconds) from its caller:

* a message from a peer on a spec's channel (:meth:`TransactionEngine.receive`),
* the passing of time (:meth:`TransactionEngine.tick`, due at :meth:`TransactionEngine.next_deadline`),
* a local request: open a session in a role with a trigger, or fire a trigger in an open one
  (:meth:`TransactionEngine.open`, :meth:`TransactionEngine.fire`).

It returns actions, each carrying its session id: :class:`Send` (bytes to a peer on a channel),
:class:`AppendBlock` (a block for this node's chain, already mapped from the spec's ``APPEND``),
:class:`Outcome` (what a spec reports to its host: ``locked``, ``failed``, ``settled``, ...) and
:class:`Step` (a state change, for the log). Which states report which outcome is declared once
per spec in :data:`SPECS` (a :class:`Spec`), so the host waits on outcomes and never on state
names; adding a spec is adding a :class:`Spec`. Node-level rules that are not in the specs
(a witness counting the locks it voted for against the consumer's funds, forgetting them when
the session ends without a lock) are applied here, to the chain store the engine is given.

Spec 03 (state query) also serves spec 00: a witness handed a lock request does not judge the
consumer's balance from its own copy of the chain alone. The engine holds the request, asks the
lock's witnesses (itself included: spec 03 counts a requester's own answer) for the consumer's
balance with HIGH confidence, and hands spec 00 the request once the query ended; spec 00
reads the attested balance (``attested_available``/``attested_balance``), so without a threshold
of fresh, agreeing answers the witness votes to reject. The attested figure is set only while that
request is handed over: a failed query leaves none behind, not even an earlier query's. A witness
that votes to reject says why (:class:`Refused`, one line). Blocks a witness writes because of another
node's lock (spec 00's witness records, the record of the balance query made for it) are marked
``witnessing``: a host whose own lock request is out holds them back (docs/ledger.md §7.3).

Randomness (session ids) comes from an injected :class:`~omerta_core.randomness.RandomSource`;
the chain view answers ``READ(p, "trust")`` at the time of the event being handled. No
sockets, no clocks, no asyncio: the asyncio runner (:mod:`.transactions`) and the virtual-time
harness drive it alike. Touches the chain store (reads; pending witnessed locks).
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omerta_core.randomness import RandomSource, system_random
from omerta_ledger_omt.ledger.blocks import Block, BlockKind
from omerta_ledger_omt.ledger.errors import EncodingError, LedgerError
from omerta_ledger_omt.ledger.local import LocalLedger
from omerta_ledger_omt.ledger.omt_host import (
    ATTEST_CHANNEL,
    AUDIT_CHANNEL,
    BLOCK_AUTHORS,
    CHANNEL,
    CHECK_CHANNEL,
    QUERY_CHANNEL,
    SETTLE_CHANNEL,
    ChainLedgerView,
    block_for,
    decode_envelope,
    encode_envelope,
)
from omerta_ledger_omt.ledger.proofs import verified_proof
from omerta_ledger_omt.ledger.query_view import StateAnswerView, SyncTimes
from omerta_ledger_omt.ledger.refusals import balance_query_note, witness_refusal
from omerta_ledger_omt.omt.errors import OmtError
from omerta_ledger_omt.omt.runtime import (
    Action,
    ActorInstance,
    AppendBlockAction,
    Envelope,
    FireTrigger,
    MessageDropped,
    NativeRegistry,
    Program,
    SendAction,
    SessionTable,
    StateChanged,
    Tick,
    verify_envelope,
)

#: Seconds an ended session instance is kept, so late duplicates find it instead of opening a new one.
TERMINAL_RETENTION_S = 120.0
#: Seconds a resting instance (a lock in force waiting for top-ups, a witness monitoring a running VM) is
#: kept without any step: as long as a rental may last (a week), not an hour, or a VM's witnesses would
#: forget it mid-session. The session table's size bounds the memory either way.
RESTING_RETENTION_S = 7 * 86400.0

#: Roles a message from a peer may open here (the others, Auditor and Initiator, open on a local request).
ROLES = frozenset({"Consumer", "Provider", "Witness", "Subject", "Counterparty", "Cabal"})


@dataclass(frozen=True)
class Spec:
    """One transaction spec as this node runs it: its file, its channel, and the outcomes it reports.

    ``outcomes`` maps an actor to the states whose entry reports an outcome to the host, and the
    outcome's name; the host waits for outcomes, never for state names.
    """

    name: str
    file: str
    channel: str
    outcomes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


SPEC_00 = Spec(
    "00",
    "00_escrow_lock.omt",
    CHANNEL,
    {
        "Consumer": {"LOCKED": "locked", "FAILED": "failed"},
        "Provider": {"SERVICE_PHASE": "confirmed", "REJECTED": "rejected", "ABANDONED": "abandoned"},
        "Witness": {"DONE": "done", "AWAITING_CONSUMER_SIGNATURE": "decided"},
    },
)
SPEC_01 = Spec(
    "01",
    "01_cabal_attestation.omt",
    ATTEST_CHANNEL,
    {
        "Provider": {
            "WAITING_FOR_VERIFICATION": "vm_up",
            "VM_RUNNING": "vm_verified",
            "SESSION_COMPLETE": "attested",
            "SESSION_ABORTED": "aborted",
        },
        "Consumer": {"CONNECTED": "connected", "ATTESTED": "attested", "UNATTESTED": "unattested", "NO_VM": "no_vm"},
    },
)
SPEC_02 = Spec(
    "02",
    "02_escrow_settle.omt",
    SETTLE_CHANNEL,
    {
        "Consumer": {"SETTLED": "settled", "UNSETTLED": "unsettled"},
        "Provider": {"SETTLED": "settled", "UNSETTLED": "unsettled"},
    },
)
# -- spec 03 (state query) --
SPEC_03 = Spec(
    "03",
    "03_state_query.omt",
    QUERY_CHANNEL,
    {"Requester": {"ATTESTED": "attested", "FAILED": "failed"}, "Witness": {"ANSWERED": "answered"}},
)
#: The confidence spec 00's witnesses ask of spec 03 about a consumer's balance.
ESCROW_BALANCE_CONFIDENCE = "HIGH"
#: Lock requests held at once waiting for their balance query (more are judged without one: rejected).
MAX_HELD_LOCK_REQUESTS = 256
#: Most witnesses a lock request may list for this node to query (spec 00 picks WITNESS_COUNT = 5): a
#: forged request cannot turn one message into queries to many peers.
MAX_LOCK_WITNESSES = 16

# -- specs 04 and 05 (state audit, health check; stream 17b) -- (stream 17b)
SPEC_04 = Spec(
    "04", "04_state_audit.omt", AUDIT_CHANNEL, {"Auditor": {"COMPLETE": "audited"}, "Subject": {"SERVED": "served"}}
)
SPEC_05 = Spec(
    "05",
    "05_health_check.omt",
    CHECK_CHANNEL,
    {
        "Initiator": {"CHECKED": "checked", "REFUSED": "refused"},
        "Cabal": {"RECORDED": "recorded", "REFUSED": "refused", "INCONCLUSIVE": "inconclusive"},
    },
)
#: Every spec this node runs, by channel. A new spec is one more entry (and its .omt file).
SPECS: dict[str, Spec] = {spec.channel: spec for spec in (SPEC_00, SPEC_01, SPEC_02, SPEC_03, SPEC_04, SPEC_05)}


def load_program(spec: Spec) -> Program:
    return _load_spec_file(spec.file)


@functools.cache
def _load_spec_file(name: str) -> Program:
    """Parse and check a packaged spec once per process (programs are immutable; instances share them)."""
    path = importlib.resources.files("omerta_ledger_omt") / "specs" / name
    with importlib.resources.as_file(path) as file:
        return Program.load(file)


# -- actions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send ``data`` to ``peer`` on ``channel`` (a message of ``session``)."""

    session: str
    peer: str
    channel: str
    data: bytes
    type: str


@dataclass(frozen=True)
class AppendBlock:
    """Append a block of ``kind`` to this node's chain for ``session`` (the spec's ``block``)."""

    session: str
    channel: str
    block: str
    kind: BlockKind
    payload: dict[str, Any]
    #: Written because of another node's lock (a spec 00 witness's record, the state attestation of the
    #: balance query made for a lock request), not for a request of this node's own.
    witnessing: bool = False


@dataclass(frozen=True)
class Outcome:
    """The spec reported ``name`` for this node's ``actor`` in ``session``."""

    session: str
    channel: str
    actor: str
    name: str


@dataclass(frozen=True)
class Step:
    """An instance changed state (for the log) or dropped a message."""

    session: str
    channel: str
    actor: str
    old: str
    new: str
    cause: str


@dataclass(frozen=True)
class Dropped:
    session: str
    channel: str
    type: str
    reason: str


@dataclass(frozen=True)
class Refused:
    """This node, a witness of lock ``session``, voted to reject ``consumer``'s request; ``reason`` is one line."""

    session: str
    channel: str
    consumer: str
    reason: str


EngineAction = Send | AppendBlock | Outcome | Step | Dropped | Refused


class TransactionEngine:
    """All open transaction sessions of one node, as pure state."""

    def __init__(
        self,
        ledger: LocalLedger,
        *,
        rng: RandomSource | None = None,
        specs: Mapping[str, Spec] = SPECS,
        natives: Mapping[str, NativeRegistry] | None = None,
        programs: Mapping[str, Program] | None = None,
        lie: bool = False,
    ) -> None:
        self.ledger = ledger
        self.rng = rng or system_random()
        self.specs = dict(specs)
        self.programs = {ch: (programs or {}).get(ch) or load_program(spec) for ch, spec in self.specs.items()}
        self.natives = dict(natives or {})
        self.view = ChainLedgerView(ledger)
        #: When this node last synced each chain (the host notes syncs); spec 03's confidence comes from it.
        self.synced = SyncTimes()
        self.query_view = StateAnswerView(self.view, self.synced, lie=lie)
        self._held_requests: dict[str, Envelope] = {}  # balance query session -> the lock request it serves
        self._asked_for: dict[str, str] = {}  # lock session -> its balance query session
        self._unattested: dict[str, str] = {}  # consumer -> why its request being handed over has no attestation
        self.tables = {
            channel: SessionTable(program, set(ROLES), functools.partial(self._new_instance, channel))
            for channel, program in self.programs.items()
        }
        self.dropped = 0
        self.failures = 0
        self.on_forget: Callable[[str, ActorInstance], None] | None = None

    # -- views ---------------------------------------------------------------------------

    def instance(self, channel: str, session: str, actor: str) -> ActorInstance | None:
        return self.tables[channel].get(session, actor)

    def session_count(self) -> int:
        return sum(len(table.instances) for table in self.tables.values())

    def new_session_id(self) -> str:
        return self.rng.randbytes(32).hex()

    def next_deadline(self) -> float:
        """When :meth:`tick` next has work: a timeout to fire or a finished session to forget (``inf``: none)."""
        best = float("inf")
        for table in self.tables.values():
            for instance in table:
                deadline = instance.next_deadline()
                if deadline is None:
                    retention = TERMINAL_RETENTION_S if instance.terminal else RESTING_RETENTION_S
                    deadline = instance.entered_at + retention
                best = min(best, deadline)
        return best

    # -- events ----------------------------------------------------------------------------

    def decode(self, channel: str, peer: str, data: bytes) -> Envelope | None:
        """The envelope in ``data`` if it is well formed, from ``peer`` and for this node; else count a drop."""
        try:
            envelope = decode_envelope(data)
        except EncodingError:
            self.dropped += 1
            return None
        if channel not in self.tables or envelope.sender != peer or envelope.recipient != self.ledger.me:
            self.dropped += 1
            return None
        return envelope

    def receive(self, channel: str, envelope: Envelope, now: float) -> list[EngineAction]:
        """A decoded message of ``channel``'s spec (see :meth:`decode`)."""
        self._at(now)
        if channel == CHANNEL and envelope.type == "WITNESS_REQUEST" and QUERY_CHANNEL in self.tables:
            asked = self._ask_balance(envelope, now)
            if asked is not None:
                return asked
        return self._deliver(channel, envelope, now)

    def _deliver(self, channel: str, envelope: Envelope, now: float) -> list[EngineAction]:
        try:
            actions = self.tables[channel].deliver(envelope, now)
        except OmtError as exc:
            self.dropped += 1
            return [Dropped(envelope.session, channel, envelope.type, str(exc))]
        return self._map(channel, envelope.session, actions, now)

    def release_held(self, channel: str, session: str, now: float) -> list[EngineAction]:
        """Deliver messages held for ``session`` (after the host opened an instance for it)."""
        self._at(now)
        table = self.tables[channel]
        out: list[EngineAction] = []
        for held in table.held.pop(session, []):
            try:
                out += self._map(channel, session, table.deliver(held, now), now)
            except OmtError as exc:
                self.dropped += 1
                out.append(Dropped(session, channel, held.type, str(exc)))
        return out

    def open(
        self,
        channel: str,
        actor: str,
        trigger: str,
        inputs: dict[str, Any],
        now: float,
        *,
        session: str | None = None,
        store: dict[str, Any] | None = None,
    ) -> tuple[str, list[EngineAction]]:
        """A local request: open ``actor``'s instance of a (new, unless given) session and fire ``trigger``."""
        session = session or self.new_session_id()
        instance = self._new_instance(channel, session, actor, now, store)
        self.tables[channel].add(instance)
        return session, self.fire(channel, session, actor, trigger, inputs, now)

    def ask(
        self,
        subject: str,
        query: str,
        witnesses: Sequence[str],
        min_confidence: str,
        now: float,
        *,
        session: str | None = None,
        early: bool = False,
    ) -> tuple[str, list[EngineAction]]:
        """Open spec 03 as the requester: ask ``witnesses`` ``query`` about ``subject``.

        ``early`` ends the query as soon as a threshold agrees (escrow) instead of waiting for every answer.
        """
        inputs = {
            "subject": subject,
            "query": query,
            "min_confidence": min_confidence,
            "witnesses": list(witnesses),
            "early": early,
        }
        return self.open(QUERY_CHANNEL, "Requester", "ask", inputs, now, session=session)

    def note_synced(self, peer: str, now: float) -> None:
        """The host synced ``peer``'s chain at ``now``: spec 03 answers about it with that recency."""
        self.synced.note(peer, int(now * 1000))

    def fire(
        self, channel: str, session: str, actor: str, trigger: str, inputs: dict[str, Any], now: float
    ) -> list[EngineAction]:
        """A local request: fire ``trigger`` in this node's open ``actor`` instance of ``session``."""
        instance = self.tables[channel].get(session, actor)
        if instance is None:
            raise LedgerError(f"no {actor} instance of session {session[:16]} here")
        self._at(now)
        return self._map(channel, session, instance.handle(FireTrigger(trigger, inputs), now), now)

    def tick(self, now: float) -> list[EngineAction]:
        """Fire due timeouts and forget finished sessions; one failing instance is closed, the rest go on."""
        self._at(now)
        out: list[EngineAction] = []
        for channel, table in self.tables.items():
            self._forget_finished(channel, table, now)
            for instance in table:
                deadline = instance.next_deadline()
                if deadline is None or deadline > now:
                    continue
                try:
                    actions = instance.handle(Tick(), now)
                except OmtError as exc:
                    self.failures += 1
                    table.close(instance.session)
                    out.append(Dropped(instance.session, channel, "timeout", f"instance failed: {exc}"))
                    continue
                out += self._map(channel, instance.session, actions, now)
        return out

    # -- plumbing ----------------------------------------------------------------------------

    def _at(self, now: float) -> None:
        self.view.now_ms = int(now * 1000)

    def _new_instance(
        self, channel: str, session: str, actor: str, now: float, store: dict[str, Any] | None = None
    ) -> ActorInstance:
        store = dict(store or {})
        if actor == "Provider" and channel == CHANNEL:
            store["known_peers"] = sorted(self.ledger.store.owners())
        view = self.query_view if channel == QUERY_CHANNEL else self.view
        return ActorInstance(
            self.programs[channel], actor, signer=self.ledger.identity, ledger=view, session=session, now=now,
            store=store, natives=self.natives.get(channel),
        )  # fmt: skip

    def _map(self, channel: str, session: str, actions: Sequence[Action], now: float) -> list[EngineAction]:
        spec = self.specs[channel]
        out: list[EngineAction] = []
        for action in actions:
            if isinstance(action, SendAction):
                envelope = action.envelope
                if channel == CHANNEL:
                    self._note_vote(session, envelope, now)
                out.append(Send(session, envelope.recipient, channel, encode_envelope(envelope), envelope.type))
            elif isinstance(action, AppendBlockAction):
                mapped = self._block(channel, session, action)
                if mapped is not None:
                    out.append(mapped)
            elif isinstance(action, StateChanged):
                actor = action.actor
                out.append(Step(session, channel, actor, action.old, action.new, action.cause))
                if channel == CHANNEL and actor == "Witness" and action.old == "CHECKING_REQUEST":
                    out += self._refused(session)
                name = spec.outcomes.get(actor, {}).get(action.new)
                if name is not None:
                    out.append(Outcome(session, channel, actor, name))
                    if channel == CHANNEL and actor == "Witness":
                        self._witness_outcome(session, name)
                    if channel == QUERY_CHANNEL and actor == "Requester":
                        out += self._query_ended(session, name, now)
            elif isinstance(action, MessageDropped):
                self.dropped += 1
                out.append(Dropped(session, channel, action.envelope.type, action.reason))
        return out

    def _block(self, channel: str, session: str, action: AppendBlockAction) -> AppendBlock | Dropped:
        instance = self.tables[channel].get(session, action.actor or BLOCK_AUTHORS.get(action.block, ""))
        if instance is None:
            return Dropped(session, channel, action.block, "no instance appends this block here")
        try:
            mapped = block_for(action.block, instance.store, session, self.ledger.store)
        except (LedgerError, KeyError, TypeError, ValueError) as exc:
            self.failures += 1
            return Dropped(session, channel, action.block, f"block refused: {exc}")
        if mapped is None:
            return Dropped(session, channel, action.block, "block not kept on chains")
        kind, payload = mapped
        witnessing = (channel == CHANNEL and instance.actor == "Witness") or (
            channel == QUERY_CHANNEL and session in self._held_requests
        )
        return AppendBlock(session, channel, action.block, kind, payload, witnessing)

    # -- spec 03 for spec 00: the consumer's balance, attested -------------------------------

    def _ask_balance(self, envelope: Envelope, now: float) -> list[EngineAction] | None:
        """Hold a lock request and ask its witnesses for the consumer's balance (None: deliver it now)."""
        session, consumer = envelope.session, envelope.sender
        witnesses = envelope.payload.get("witnesses")
        if session in self._asked_for:  # a copy of a request that waits for its query: the first one is judged
            self.dropped += 1
            return [Dropped(session, CHANNEL, envelope.type, "its balance query is still running")]
        if (
            self.tables[CHANNEL].get(session, "Witness") is not None
            or len(self._held_requests) >= MAX_HELD_LOCK_REQUESTS
            or not isinstance(witnesses, list)
            or len(witnesses) > MAX_LOCK_WITNESSES
            or not all(isinstance(w, str) for w in witnesses)
            or self.ledger.me not in witnesses
            or consumer in witnesses
            or envelope.payload.get("consumer") != consumer
            or not verify_envelope(envelope)
        ):
            return None
        query = self.new_session_id()
        self._held_requests[query] = envelope
        self._asked_for[session] = query
        _, actions = self.ask(consumer, "balance", sorted(set(witnesses)), ESCROW_BALANCE_CONFIDENCE, now,
                              session=query, early=True)  # fmt: skip
        return actions

    def _query_ended(self, query: str, name: str, now: float) -> list[EngineAction]:
        """Hand spec 00 the lock request that waited for this balance query, with the balance it attested (HIGH)
        and no other: the figure is gone once the request is judged, so no later request meets it."""
        held = self._held_requests.pop(query, None)
        if held is None:
            return []
        self._asked_for.pop(held.session, None)
        requester = self.tables[QUERY_CHANNEL].get(query, "Requester")
        store = requester.store if requester is not None else {}
        consumer = held.sender
        attested = name == "attested" and store.get("confidence") == "HIGH" and type(store.get("value")) is int
        if attested:
            self.view.attested[consumer] = store["value"]
        else:
            self._unattested[consumer] = balance_query_note(store, name)
        try:
            return self._deliver(CHANNEL, held, now)
        finally:
            self.view.attested.pop(consumer, None)
            self._unattested.pop(consumer, None)

    def _refused(self, session: str) -> list[EngineAction]:
        """A witness that just judged a lock request: why it votes to reject (nothing when it accepts)."""
        witness = self.tables[CHANNEL].get(session, "Witness")
        if witness is None or witness.store.get("verdict") != "REJECT":
            return []
        consumer = str(witness.store.get("consumer"))
        reason = witness_refusal(witness.store, self.view, self._unattested.get(consumer))
        return [Refused(session, CHANNEL, consumer, reason)]

    def _witness_outcome(self, session: str, name: str) -> None:
        """A witness whose session ended without a lock, or whose peers rejected it, stops counting it."""
        witness = self.tables[CHANNEL].get(session, "Witness")
        rejected = name == "decided" and witness is not None and witness.store.get("consensus") == "REJECTED"
        if name == "done" or rejected:
            self.ledger.store.forget_witnessed_lock(bytes.fromhex(session))

    def _note_vote(self, session: str, envelope: Envelope, now: float) -> None:
        """A witness that votes to accept a lock or a top-up counts it against the consumer's funds from now on."""
        witness = self.tables[CHANNEL].get(session, "Witness")
        if witness is None:
            return
        store = witness.store
        chains = self.ledger.store
        if envelope.type == "TOPUP_VOTE" and envelope.payload.get("topup_verdict") == "ACCEPT":
            new_total = store["total_escrowed"] + store["topup_amount"]
            chains.record_witnessed_topup(bytes.fromhex(session), store["consumer"], store["topup_amount"], new_total)
        if envelope.type == "WITNESS_PRELIMINARY" and envelope.payload.get("verdict") == "ACCEPT":
            session_id = bytes.fromhex(session)
            chains.record_witnessed_lock(session_id, store["consumer"], store["amount"], b"", int(now * 1000))
            signed_request = {"request": store["lock_request"], "signature": store["request_signature"]}
            chains.record_witnessed_request(session_id, store["consumer"], signed_request)

    def _forget_finished(self, channel: str, table: SessionTable, now: float) -> None:
        """Drop instances that ended (after a grace period for late messages) or rested too long."""
        for instance in list(table):
            idle = now - instance.entered_at
            resting = instance.next_deadline() is None
            if (instance.terminal and idle >= TERMINAL_RETENTION_S) or (resting and idle >= RESTING_RETENTION_S):
                table.instances.pop((instance.session, instance.actor), None)
                if self.on_forget is not None:
                    self.on_forget(channel, instance)


def append_block(ledger: LocalLedger, action: AppendBlock, now_ms: int) -> Block:
    """Write the block an :class:`AppendBlock` stands for to ``ledger`` (raises :class:`LedgerError`)."""
    if action.kind == BlockKind.ACCUSATION:
        proof = verified_proof(action.payload["proof"], ledger.params)
        return ledger.accuse(action.payload["subject"], action.payload["reason"], now_ms, proof)
    return ledger.append(action.kind, action.payload, now_ms)
