"""Actor instances keyed per transaction session.

A node may take part in many sessions at once, in any role. The table routes a
delivered envelope to the instance for ``(session, actor)`` and creates one when the
message opens a session for a role this node plays (its initial state handles it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from omerta_ledger_omt.omt.runtime.actor import ActorInstance
from omerta_ledger_omt.omt.runtime.events import Action, Deliver, Envelope, MessageDropped, Tick
from omerta_ledger_omt.omt.runtime.program import Program

# Sessions open at once on one node: bounds memory against a flood of opening messages.
MAX_SESSIONS = 1024

InstanceFactory = Callable[[str, str, float], ActorInstance]  # (session, actor, now) -> instance


class SessionTable:
    def __init__(self, program: Program, roles: set[str], factory: InstanceFactory) -> None:
        self.program = program
        self.roles = roles
        self.factory = factory
        self.instances: dict[tuple[str, str], ActorInstance] = {}

    def add(self, instance: ActorInstance) -> None:
        self.instances[(instance.session, instance.actor)] = instance

    def get(self, session: str, actor: str) -> ActorInstance | None:
        return self.instances.get((session, actor))

    def __iter__(self) -> Iterator[ActorInstance]:
        return iter(list(self.instances.values()))

    def deliver(self, envelope: Envelope, now: float) -> list[Action]:
        """Route one envelope; open an instance if the message starts a session for one of our roles."""
        decl = self.program.symbols.messages.get(envelope.type)
        if decl is None:
            return [MessageDropped(envelope, "unknown message type")]
        actions: list[Action] = []
        matched = False
        for role in decl.recipients:
            instance = self.instances.get((envelope.session, role))
            if instance is None and role in self.roles and self._opens(role, envelope.type):
                if len(self.instances) >= MAX_SESSIONS:
                    return [MessageDropped(envelope, "too many sessions")]
                instance = self.factory(envelope.session, role, now)
                self.add(instance)
            if instance is not None:
                matched = True
                actions.extend(instance.handle(Deliver(envelope), now))
        if not matched:
            actions.append(MessageDropped(envelope, "no session for this message"))
        return actions

    def _opens(self, role: str, message: str) -> bool:
        index = self.program.actor(role)
        return bool(index.transitions(index.initial, "message", message))

    def tick(self, now: float) -> list[Action]:
        """Tick every instance whose timeout is due."""
        actions: list[Action] = []
        for instance in self:
            deadline = instance.next_deadline()
            if deadline is not None and deadline <= now:
                actions.extend(instance.handle(Tick(), now))
        return actions

    def next_deadline(self) -> float | None:
        deadlines = [d for i in self if (d := i.next_deadline()) is not None]
        return min(deadlines) if deadlines else None

    def close(self, session: str) -> None:
        for key in [k for k in self.instances if k[0] == session]:
            del self.instances[key]
