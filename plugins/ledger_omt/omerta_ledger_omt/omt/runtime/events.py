"""Events an actor instance consumes and actions it returns (plain data).

Every action names its session (a send through its envelope), and a state change or block also its actor,
so a host driving many instances can tell whose action it applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Envelope:
    """One ``.omt`` message on the wire: type, session, sender, recipient, payload, signature."""

    type: str
    session: str
    sender: str
    recipient: str
    payload: dict[str, Any]
    signature: str | None = None  # hex Ed25519 signature for ``signed`` messages

    def signed_part(self) -> dict[str, Any]:
        """What the signature covers (everything but the recipient and the signature)."""
        return {"type": self.type, "session": self.session, "sender": self.sender, "payload": self.payload}


# -- events ----------------------------------------------------------------------


@dataclass(frozen=True)
class Deliver:
    envelope: Envelope


@dataclass(frozen=True)
class FireTrigger:
    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tick:
    """The clock moved: fire a due timeout, if any."""


Event = Deliver | FireTrigger | Tick


# -- actions ---------------------------------------------------------------------


@dataclass(frozen=True)
class SendAction:
    envelope: Envelope


@dataclass(frozen=True)
class AppendBlockAction:
    block: str
    payload: dict[str, Any]
    session: str = ""
    actor: str = ""


@dataclass(frozen=True)
class StoreChanged:
    name: str
    value: Any


@dataclass(frozen=True)
class StateChanged:
    old: str
    new: str
    cause: str  # "auto", "timeout(P)", "on M", "on trigger"
    session: str = ""
    actor: str = ""


@dataclass(frozen=True)
class MessageDropped:
    envelope: Envelope
    reason: str


@dataclass(frozen=True)
class MessageBuffered:
    """No transition of the current state takes the message; kept for a later state."""

    envelope: Envelope


Action = SendAction | AppendBlockAction | StoreChanged | StateChanged | MessageDropped | MessageBuffered
