"""What a transport provides: authenticated, encrypted messages between peer ids.

A message is sent to a peer id on a named channel, either as a datagram
(unordered, may be lost; for tunnelled frames) or reliably (acknowledged,
ordered per channel; for control protocols). Touches nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from omerta_core.interfaces.common import Endpoint, PeerId, Service

#: Called for each received message with the sender's authenticated peer id.
MessageHandler = Callable[[PeerId, bytes], Awaitable[None] | None]


class Delivery(enum.Enum):
    DATAGRAM = "datagram"
    RELIABLE = "reliable"


class PathState(enum.Enum):
    """How a peer can be reached right now."""

    UNKNOWN = "unknown"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DEGRADED = "degraded"
    RECONNECTING = "reconnecting"


@runtime_checkable
class Transport(Service, Protocol):
    """Sends to peer ids on named channels; delivers received messages to handlers."""

    def local_endpoints(self) -> list[Endpoint]:
        """The endpoints this node listens on (as bound, not as reflected)."""

    def add_peer(self, peer: PeerId, endpoints: Sequence[Endpoint]) -> None:
        """Tell the transport where a peer may be reached (from discovery or an invite)."""

    async def send(self, peer: PeerId, channel: str, data: bytes, *, delivery: Delivery = Delivery.RELIABLE) -> None:
        """Send ``data`` to ``peer`` on ``channel``; queues while a session is set up."""

    def on_message(self, channel: str, handler: MessageHandler) -> None:
        """Register the handler for messages arriving on ``channel``."""

    def path_state(self, peer: PeerId) -> PathState:
        """The current path state towards ``peer``."""

    def endpoint_of(self, peer: PeerId) -> Endpoint | None:
        """Where ``peer``'s last authenticated packet came from (for reflection), if known."""

    async def identify(self, endpoint: Endpoint) -> PeerId:
        """Ask whoever listens at ``endpoint`` for its peer id (bootstrap by address).

        The answer is unauthenticated; the session handshake that follows proves it.
        """
