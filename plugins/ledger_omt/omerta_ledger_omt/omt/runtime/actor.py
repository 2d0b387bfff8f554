"""One actor of one transaction session, as a sans-IO state machine.

``handle(event, now)`` takes a delivered message, a trigger or a clock tick and returns
the actions to carry out (send, append a block, store changes, state changes, drops).
Semantics (see docs/omt.md): at most one transition per event, then ``auto``
transitions until none is enabled, then buffered messages retried; guards are
evaluated before actions; ``signed`` messages are verified on receipt; the state timer
restarts only when the state changes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from omerta_core.identity import verify
from omerta_core.interfaces.common import PeerId
from omerta_ledger_omt.omt import ast
from omerta_ledger_omt.omt.errors import OmtRuntimeError
from omerta_ledger_omt.omt.runtime.evaluator import Env, Evaluator
from omerta_ledger_omt.omt.runtime.events import (
    Action,
    AppendBlockAction,
    Deliver,
    Envelope,
    Event,
    FireTrigger,
    MessageBuffered,
    MessageDropped,
    SendAction,
    StateChanged,
    StoreChanged,
    Tick,
)
from omerta_ledger_omt.omt.runtime.host import LedgerView, Signer
from omerta_ledger_omt.omt.runtime.natives import NativeContext, NativeRegistry, standard_natives
from omerta_ledger_omt.omt.runtime.program import Program
from omerta_ledger_omt.omt.runtime.values import canonical_bytes

# auto transitions fired in a row by one event; more means a spec loops without waiting.
MAX_AUTO_CHAIN = 64
# Messages kept for a later state; early arrivals in real runs are a handful per session.
MAX_BUFFERED_MESSAGES = 256
NETWORK = "Network"


def _default(t: ast.TypeRef) -> Any:
    name = t.name.lower()
    if name == "list":
        return []
    if name in ("map", "dict"):
        return {}
    return None


def verify_envelope(env: Envelope) -> bool:
    """Whether ``env`` carries its sender's valid signature of its signed part."""
    if env.signature is None:
        return False
    try:
        return verify(PeerId(env.sender), canonical_bytes(env.signed_part()), bytes.fromhex(env.signature))
    except (ValueError, TypeError):
        return False


class ActorInstance:
    """One role's state machine for one session.

    ``roster`` (peer id -> actor name), when given, lets the instance drop messages whose
    sender does not play the role the message is declared ``from``.
    """

    def __init__(
        self,
        program: Program,
        actor: str,
        *,
        signer: Signer,
        ledger: LedgerView,
        session: str,
        now: float = 0.0,
        natives: NativeRegistry | None = None,
        store: Mapping[str, Any] | None = None,
        roster: Mapping[str, str] | None = None,
    ) -> None:
        self.program = program
        self.index = program.actor(actor)
        self.actor = actor
        self.signer = signer
        self.peer_id = str(signer.peer_id)
        self.ledger = ledger
        self.session = session
        self.natives = natives or standard_natives()
        self.roster = dict(roster) if roster is not None else None
        self.state = self.index.initial
        self.entered_at = now
        self.store: dict[str, Any] = {f.name: _default(f.type) for f in self.index.decl.store}
        self.store.update(store or {})
        self.buffer: deque[Envelope] = deque()
        self._counter = 0
        self._now = now
        self._evaluator = Evaluator(program, self.natives, self._context)
        missing = [f.name for f in program.symbols.functions.values() if f.native and f.name not in self.natives]
        if missing:
            raise OmtRuntimeError(f"no native registered for: {', '.join(sorted(missing))}")

    # -- public API -----------------------------------------------------------------
    @property
    def terminal(self) -> bool:
        return self.state in self.index.terminal

    def next_deadline(self) -> float | None:
        """When the earliest timeout of the current state falls due, or None."""
        deadlines = [
            self.entered_at + float(self.program.parameter(t.event.name)) for t in self.index.timeouts(self.state)
        ]
        return min(deadlines) if deadlines else None

    def handle(self, event: Event, now: float) -> list[Action]:
        """Process one event at time ``now``; return the actions for the host to carry out.

        Raises OmtRuntimeError (refused trigger, failing native or guard, runaway auto chain);
        the instance is then exactly as it was before the event.
        """
        self._now = now
        out: list[Action] = []
        saved = (self.state, self.entered_at, dict(self.store), deque(self.buffer), self._counter)
        try:
            if isinstance(event, Deliver):
                self._deliver(event.envelope, out)
            elif isinstance(event, FireTrigger):
                self._trigger(event, out)
            elif isinstance(event, Tick):
                self._tick(out)
        except Exception:
            # An event that fails changes nothing: the host sees the error and the instance as it was.
            self.state, self.entered_at, self.store, self.buffer, self._counter = saved
            raise
        return out

    # -- events ---------------------------------------------------------------------
    def _deliver(self, env: Envelope, out: list[Action]) -> None:
        reason = self._reject_reason(env)
        if reason is not None:
            out.append(MessageDropped(env, reason))
            return
        if self._try_message(env, out):
            self._settle(out)
            return
        if self.terminal and not any(t.source == self.state for t in self.index.decl.transitions):
            out.append(MessageDropped(env, "session finished"))
            return
        if len(self.buffer) >= MAX_BUFFERED_MESSAGES:
            out.append(MessageDropped(self.buffer.popleft(), "buffer full"))
        self.buffer.append(env)
        out.append(MessageBuffered(env))

    def _reject_reason(self, env: Envelope) -> str | None:
        decl = self.program.symbols.messages.get(env.type)
        if decl is None:
            return "unknown message type"
        if env.session != self.session:
            return "wrong session"
        if env.recipient != self.peer_id:
            return "not addressed to this peer"
        if self.actor not in decl.recipients and NETWORK not in decl.recipients:
            return f"{self.actor} is not a recipient of {env.type}"
        if decl.signed and not verify_envelope(env):
            return "invalid signature"
        if self.roster is not None and self.roster.get(env.sender) != decl.sender:
            return f"sender does not play {decl.sender}"
        return None

    def _trigger(self, event: FireTrigger, out: list[Action]) -> None:
        decl = next((t for t in self.index.decl.triggers if t.name == event.name), None)
        if decl is None:
            raise OmtRuntimeError(f"actor {self.actor} has no trigger '{event.name}'")
        if self.state not in decl.allowed_in:
            raise OmtRuntimeError(f"trigger {event.name} is not allowed in state {self.state}")
        params = {p.name for p in decl.params}
        if set(event.args) != params:
            raise OmtRuntimeError(f"trigger {event.name} takes {sorted(params)}, got {sorted(event.args)}")
        env = self._env(local=dict(event.args))
        candidates = self.index.transitions(self.state, "trigger", event.name)
        if not self._fire_first(candidates, env, dict(event.args), out):
            raise OmtRuntimeError(f"trigger {event.name}: no transition enabled in state {self.state}")
        self._settle(out)

    def _tick(self, out: list[Action]) -> None:
        due = [
            t for t in self.index.timeouts(self.state)
            if self._now - self.entered_at >= float(self.program.parameter(t.event.name))
        ]  # fmt: skip
        if due and self._fire_first(tuple(due), self._env(), None, out):
            self._settle(out)

    # -- firing ---------------------------------------------------------------------
    def _try_message(self, env: Envelope, out: list[Action]) -> bool:
        candidates = self.index.transitions(self.state, "message", env.type)
        return bool(candidates) and self._fire_first(candidates, self._env(message=env), env.payload, out)

    def _settle(self, out: list[Action]) -> None:
        """Fire auto transitions and buffered messages until nothing more is enabled."""
        for _ in range(MAX_AUTO_CHAIN):
            autos = self.index.transitions(self.state, "auto")
            if autos and self._fire_first(autos, self._env(), None, out):
                continue
            if not self._retry_buffer(out):
                return
        raise OmtRuntimeError(f"actor {self.actor}: more than {MAX_AUTO_CHAIN} transitions without waiting")

    def _retry_buffer(self, out: list[Action]) -> bool:
        for env in list(self.buffer):
            if self._try_message(env, out):
                self.buffer.remove(env)
                return True
        return False

    def _fire_first(
        self, candidates: tuple[ast.Transition, ...], env: Env, sources: Mapping[str, Any] | None, out: list[Action]
    ) -> bool:
        for tr in candidates:
            if tr.guard is None or self._guard(tr.guard, env):
                self._run(tr, tr.target, tr.actions, env, sources, out)
                return True
            if tr.else_target is not None:
                self._run(tr, tr.else_target, tr.else_actions, env, sources, out)
                return True
        return False

    def _guard(self, guard: ast.Expr, env: Env) -> bool:
        value = self._evaluator.eval(guard, env)
        if not isinstance(value, bool):
            raise OmtRuntimeError(f"line {guard.line}: guard gave {value!r}, not a bool")
        return value

    def _run(
        self,
        tr: ast.Transition,
        target: str,
        actions: tuple[ast.Action, ...],
        env: Env,
        sources: Mapping[str, Any] | None,
        out: list[Action],
    ) -> None:
        for action in actions:
            self._action(action, env, sources, out)
        ev = tr.event
        cause = {"auto": "auto", "timeout": f"timeout({ev.name})"}.get(ev.kind, f"on {ev.name}")
        out.append(StateChanged(self.state, target, cause, self.session, self.actor))
        if target != self.state:
            self.entered_at = self._now
        self.state = target

    def _set(self, name: str, value: Any, out: list[Action]) -> None:
        self.store[name] = value
        out.append(StoreChanged(name, value))

    def _action(self, action: ast.Action, env: Env, sources: Mapping[str, Any] | None, out: list[Action]) -> None:
        ev = self._evaluator
        if isinstance(action, ast.StoreFields):
            for name in action.names:
                self._set(name, (sources or {}).get(name), out)
        elif isinstance(action, ast.StoreValue | ast.Compute):
            value = ev.eval(action.value, env)
            self._set(action.name, value.envelope.payload if hasattr(value, "envelope") else value, out)
        elif isinstance(action, ast.AppendList):
            value = ev.eval(action.value, env)
            value = value.envelope.payload if hasattr(value, "envelope") else value
            self._set(action.target, [*(self.store.get(action.target) or []), value], out)
        elif isinstance(action, ast.Send):
            target = ev.eval(action.target, env)
            if not isinstance(target, str):
                raise OmtRuntimeError(f"line {action.line}: SEND target is {target!r}, not a peer id")
            out.append(SendAction(self._envelope(action.message, target)))
        elif isinstance(action, ast.Broadcast):
            targets = self.store.get(action.targets) or []
            if not isinstance(targets, list):
                raise OmtRuntimeError(f"line {action.line}: BROADCAST over {action.targets}, which is not a list")
            for peer in targets:
                if peer != self.peer_id:
                    out.append(SendAction(self._envelope(action.message, str(peer))))
        elif isinstance(action, ast.AppendBlock):
            block = self.program.symbols.blocks[action.block]
            out.append(AppendBlockAction(block.name, self._payload(block.fields), self.session, self.actor))

    def _payload(self, fields: tuple[ast.FieldDecl, ...]) -> dict[str, Any]:
        payload = {}
        for f in fields:
            value = self.store.get(f.name)
            if f.name == "timestamp" and value is None:
                value = self._now
            elif f.name == "session_id" and value is None:
                value = self.session
            payload[f.name] = value
        return payload

    def _envelope(self, message: str, recipient: str) -> Envelope:
        decl = self.program.symbols.messages[message]
        env = Envelope(message, self.session, self.peer_id, recipient, self._payload(decl.fields))
        if decl.signed:
            signature = self.signer.sign(canonical_bytes(env.signed_part())).hex()
            env = Envelope(env.type, env.session, env.sender, env.recipient, env.payload, signature)
        return env

    # -- evaluation context -----------------------------------------------------------
    def _env(self, local: dict[str, Any] | None = None, message: Envelope | None = None) -> Env:
        runtime = {"peer_id": self.peer_id, "session_id": self.session, "chain": self.ledger.chain_head()}
        return Env(dict(local or {}), self.store, self.index.known_store, message, runtime)

    def _next_counter(self) -> int:
        self._counter += 1
        return self._counter

    def _context(self, env: Env) -> NativeContext:
        return NativeContext(
            peer_id=self.peer_id,
            session=self.session,
            now=self._now,
            signer=self.signer,
            ledger=self.ledger,
            store=self.store,
            apply=self._evaluator.apply,
            next_counter=self._next_counter,
        )
