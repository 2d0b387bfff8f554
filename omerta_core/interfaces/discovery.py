"""What a discovery mechanism provides: a network's live peers and their endpoints.

Touches nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from omerta_core.interfaces.common import Endpoint, PeerId, Service


class Liveness(enum.Enum):
    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"


@dataclass(frozen=True)
class PeerInfo:
    """What discovery knows of one peer in one network."""

    peer: PeerId
    network: str
    endpoints: tuple[Endpoint, ...]
    liveness: Liveness = Liveness.ALIVE
    relays: tuple[PeerId, ...] = ()
    capabilities: dict[str, Any] = field(default_factory=dict)
    version: int = 0


#: Called whenever a peer's record or liveness changes.
PeerListener = Callable[[PeerInfo], None]


@runtime_checkable
class Discovery(Service, Protocol):
    """Finds peers, tracks who is alive, and feeds endpoints to the transport."""

    def networks(self) -> list[str]:
        """Ids of the networks this node belongs to."""

    def peers(self, network: str | None = None) -> list[PeerInfo]:
        """Known peers, in one network or in all."""

    def subscribe(self, listener: PeerListener) -> None:
        """Call ``listener`` on every change of a peer's record or liveness."""

    def advertise(self, *, capabilities: dict[str, Any] | None = None, relays: Sequence[PeerId] | None = None) -> None:
        """Change what this node tells its networks: its capabilities (offered resources, relaying) and
        the relays it uses. ``None`` leaves a field as it is."""

    def publish(self, key: str, value: Any) -> None:
        """Set one entry of this node's advertised capabilities (``None`` removes it), keeping the others.

        What is published travels in the node's signed peer record, so anyone reading it from
        :meth:`peers` (``PeerInfo.capabilities[key]``) knows this node said it.
        """
