"""Actor instances keyed per transaction session.

A node may take part in many sessions at once, in any role. The table routes a
delivered envelope to the instance for ``(session, actor)`` and creates one when the
message opens a session for a role this node plays (its initial state handles it).
A message for one of those roles whose session is not open here yet is held (the
network reorders: a witness may hear another witness before the consumer) and
delivered right after the message that opens its session; holding is bounded per
session and in the number of sessions, the oldest session's messages going first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator

from omerta_ledger_omt.omt.runtime.actor import ActorInstance
from omerta_ledger_omt.omt.runtime.events import Action, Deliver, Envelope, MessageBuffered, MessageDropped, Tick
from omerta_ledger_omt.omt.runtime.program import Program

# Sessions open at once on one node: bounds memory against a flood of opening messages.
MAX_SESSIONS = 1024

# Messages held per session before its opening message; a real run sends a few per peer and session.
MAX_HELD_PER_SESSION = 16

# Sessions with held messages; junk session ids cannot hold more than this many at once.
MAX_HELD_SESSIONS = 256

NO_SESSION = "no session for this message"

InstanceFactory = Callable[[str, str, float], ActorInstance]  # (session, actor, now) -> instance


class SessionTable:
    def __init__(self, program: Program, roles: set[str], factory: InstanceFactory) -> None:
        self.program = program
        self.roles = roles
        self.factory = factory
        self.instances: dict[tuple[str, str], ActorInstance] = {}
        self.held: OrderedDict[str, list[Envelope]] = OrderedDict()

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
        matched = opened = False
        for role in decl.recipients:
            instance = self.instances.get((envelope.session, role))
            if instance is None and role in self.roles and self._opens(role, envelope.type):
                if len(self.instances) >= MAX_SESSIONS:
                    return [MessageDropped(envelope, "too many sessions")]
                instance = self.factory(envelope.session, role, now)
                self.add(instance)
                opened = True
            if instance is not None:
                matched = True
                actions.extend(instance.handle(Deliver(envelope), now))
        if not matched:
            actions.append(self._hold(envelope, decl.recipients))
        if opened:
            for held in self.held.pop(envelope.session, []):
                actions.extend(self.deliver(held, now))
        return actions

    def _hold(self, envelope: Envelope, recipients: tuple[str, ...]) -> Action:
        """Keep a message for a role of ours whose session is not open yet; drop anything else."""
        if not self.roles.intersection(recipients):
            return MessageDropped(envelope, NO_SESSION)
        held = self.held.setdefault(envelope.session, [])
        if len(held) >= MAX_HELD_PER_SESSION:
            return MessageDropped(envelope, "too many messages held for a session not open here")
        held.append(envelope)
        while len(self.held) > MAX_HELD_SESSIONS:
            self.held.popitem(last=False)
        return MessageBuffered(envelope)

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
        self.held.pop(session, None)
