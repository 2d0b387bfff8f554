"""Play one transaction with all its actors in one process (``omerta omt run``).

A :class:`Scenario` names the peers and their roles, what each peer's ledger knows,
which triggers fire when, and which faults to inject (silent peers, forged signatures).
The player drives real :class:`ActorInstance` objects with a simulated clock and a fixed
message latency, applies their actions to in-memory ledgers and records a trace.
Touches nothing outside memory.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omerta_core.identity import Identity
from omerta_ledger_omt.omt.errors import OmtError
from omerta_ledger_omt.omt.runtime import (
    ActorInstance,
    AppendBlockAction,
    Deliver,
    Event,
    FireTrigger,
    MemoryLedger,
    MessageDropped,
    NativeRegistry,
    Program,
    SendAction,
    StateChanged,
    Tick,
    standard_natives,
)

# Simulated seconds a run may last: longer than any timeout chain in the shipped specs.
DEFAULT_UNTIL = 3600.0
# Events one run may process; stops a spec that talks forever.
MAX_EVENTS = 100_000


@dataclass(frozen=True)
class ScheduledTrigger:
    at: float
    peer: str
    trigger: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scenario:
    """Peers by name; ``"@name"`` in values stands for that peer's id, ``"@name.head"`` for its chain head."""

    name: str
    description: str
    peers: dict[str, str]  # peer name -> actor
    triggers: list[ScheduledTrigger]
    knowledge: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # peer -> about -> key -> value
    stores: dict[str, dict[str, Any]] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)
    forgers: set[str] = field(default_factory=set)
    expect: dict[str, str] = field(default_factory=dict)  # peer -> final state
    native_results: dict[str, Any] = field(default_factory=dict)  # native function -> the value it returns
    latency: float = 0.1
    until: float = DEFAULT_UNTIL

    @classmethod
    def from_json(cls, path: Path) -> Scenario:
        raw = json.loads(path.read_text(encoding="utf-8"))
        try:
            return cls(
                name=raw.get("name", path.stem),
                description=raw.get("description", ""),
                peers=raw["peers"],
                triggers=[
                    ScheduledTrigger(t["at"], t["peer"], t["trigger"], t.get("args", {})) for t in raw["triggers"]
                ],
                knowledge=raw.get("knowledge", {}),
                stores=raw.get("stores", {}),
                silent=set(raw.get("silent", [])),
                forgers=set(raw.get("forgers", [])),
                expect=raw.get("expect", {}),
                native_results=raw.get("native_results", {}),
                latency=float(raw.get("latency", 0.1)),
                until=float(raw.get("until", DEFAULT_UNTIL)),
            )
        except (KeyError, TypeError) as exc:
            raise OmtError(f"{path}: not a scenario ({exc})") from None


@dataclass(frozen=True)
class ForgedSigner:
    """Claims a peer's id but signs with another key: its signatures never verify."""

    peer_id: str
    key: Identity

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)


@dataclass
class PlayResult:
    trace: list[str]
    states: dict[str, str]
    stores: dict[str, dict[str, Any]]
    ledgers: dict[str, MemoryLedger]
    dropped: list[tuple[str, str, str]]  # (receiver, message type, reason)
    peer_ids: dict[str, str]
    events: int  # events handled by instances (interpreter steps)
    #: The trace as records for machines: ``{"at", "kind", "peer", ...}`` with kind
    #: ``state`` (``from``, ``to``, ``cause``), ``send`` (``to``, ``message``),
    #: ``append`` (``block``) or ``drop`` (``message``, ``sender``, ``reason``).
    records: list[dict[str, Any]] = field(default_factory=list)

    def unmet_expectations(self, expect: dict[str, str]) -> list[str]:
        return [
            f"{p}: expected {s}, ended in {self.states.get(p)}" for p, s in expect.items() if self.states.get(p) != s
        ]


def identity_for(name: str) -> Identity:
    """A fixed identity per peer name, so runs are reproducible."""
    return Identity.from_seed(hashlib.sha256(f"omt-player:{name}".encode()).digest())


def play(program: Program, scenario: Scenario, natives: NativeRegistry | None = None) -> PlayResult:
    ids = {name: str(identity_for(name).peer_id) for name in scenario.peers}
    names = {pid: name for name, pid in ids.items()}
    ledgers = {name: MemoryLedger(ids[name]) for name in scenario.peers}

    session = hashlib.sha256(f"omt-session:{scenario.name}".encode()).hexdigest()

    def subst(value: Any) -> Any:
        if value == "@session":
            return session
        if isinstance(value, str) and value.startswith("@"):
            ref = value[1:]
            if ref.endswith(".head") and ref[:-5] in ledgers:
                return ledgers[ref[:-5]].chain_head()
            if ref not in ids:
                raise OmtError(f"scenario {scenario.name}: unknown peer '{ref}'")
            return ids[ref]
        if isinstance(value, list):
            return [subst(v) for v in value]
        if isinstance(value, dict):
            return {subst(k): subst(v) for k, v in value.items()}
        return value

    for name, about in scenario.knowledge.items():
        ledgers[name].knowledge = subst(about)
    registry = natives or standard_natives()
    for fn, value in scenario.native_results.items():
        registry = registry.with_natives({fn: lambda ctx, *args, _v=value: _v})
    roster = {ids[n]: role for n, role in scenario.peers.items()}
    instances: dict[str, ActorInstance] = {}
    for name, role in scenario.peers.items():
        ident = identity_for(name)
        signer: Any = (
            ForgedSigner(str(ident.peer_id), identity_for(f"forger:{name}")) if name in scenario.forgers else ident
        )
        instances[name] = ActorInstance(
            program, role, signer=signer, ledger=ledgers[name], session=session,
            natives=registry, store=subst(scenario.stores.get(name, {})), roster=roster,
        )  # fmt: skip

    trace: list[str] = []
    records: list[dict[str, Any]] = []
    dropped: list[tuple[str, str, str]] = []
    queue: list[tuple[float, int, str, Event]] = []
    seq = 0
    scheduled_ticks: dict[str, float] = {}

    def push(at: float, peer: str, event: Event) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(queue, (at, seq, peer, event))

    def schedule_tick(peer: str) -> None:
        deadline = instances[peer].next_deadline()
        if deadline is not None and scheduled_ticks.get(peer) != deadline:
            scheduled_ticks[peer] = deadline
            push(deadline, peer, Tick())

    for t in scenario.triggers:
        push(t.at, t.peer, FireTrigger(t.trigger, subst(t.args)))
    for name in scenario.peers:
        schedule_tick(name)

    def label(name: str) -> str:
        return f"{name}({scenario.peers[name]})"

    processed = 0
    while queue and processed < MAX_EVENTS:
        now, _, peer, event = heapq.heappop(queue)
        if now > scenario.until:
            break
        if peer in scenario.silent:
            continue
        instance = instances[peer]
        if isinstance(event, Tick) and (instance.next_deadline() is None or instance.next_deadline() > now):
            continue
        processed += 1
        effects: list[str] = []  # a transition's sends and appends, printed under its state change
        effect_records: list[dict[str, Any]] = []
        at = round(now, 6)
        for action in instance.handle(event, now):
            if isinstance(action, StateChanged):
                trace.append(f"{now:9.2f}  {label(peer)}: {action.old} -> {action.new}  [{action.cause}]")
                records.append(
                    {"at": at, "kind": "state", "peer": peer, "role": scenario.peers[peer],
                     "from": action.old, "to": action.new, "cause": action.cause}
                )  # fmt: skip
                trace.extend(effects)
                records.extend(effect_records)
                effects, effect_records = [], []
            elif isinstance(action, SendAction):
                env = action.envelope
                to = names.get(env.recipient, env.recipient[:12])
                effects.append(f"{now:9.2f}    {peer} -> {to}: {env.type}")
                effect_records.append({"at": at, "kind": "send", "peer": peer, "to": to, "message": env.type})
                if to in instances:
                    push(now + scenario.latency, to, Deliver(env))
            elif isinstance(action, AppendBlockAction):
                ledgers[peer].append(action.block, action.payload, now)
                effects.append(f"{now:9.2f}    {peer} appends {action.block} to its chain")
                effect_records.append({"at": at, "kind": "append", "peer": peer, "block": action.block})
            elif isinstance(action, MessageDropped):
                sender = names.get(action.envelope.sender, action.envelope.sender[:12])
                dropped.append((peer, action.envelope.type, action.reason))
                trace.append(f"{now:9.2f}  {peer} drops {action.envelope.type} from {sender}: {action.reason}")
                records.append(
                    {"at": at, "kind": "drop", "peer": peer, "message": action.envelope.type,
                     "sender": sender, "reason": action.reason}
                )  # fmt: skip
        trace.extend(effects)
        records.extend(effect_records)
        schedule_tick(peer)
    states = {name: inst.state for name, inst in instances.items()}
    stores = {n: dict(i.store) for n, i in instances.items()}
    return PlayResult(trace, states, stores, ledgers, dropped, ids, processed, records)
