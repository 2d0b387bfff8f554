"""What a transport provides: authenticated, encrypted messages between peer ids.

A message is sent to a peer id on a named channel, either as a datagram
(unordered, may be lost; for tunnelled frames) or reliably (acknowledged,
ordered per channel; for control protocols). Touches nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from omerta_core.interfaces.common import Endpoint, PeerId, Service

#: Called for each received message with the sender's authenticated peer id.
MessageHandler = Callable[[PeerId, bytes], Awaitable[None] | None]
#: Called with the sender and a run of its messages on one channel that arrived together, in order.
DatagramBatchHandler = Callable[[PeerId, list[bytes]], None]


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

    def send_datagram(self, peer: PeerId, channel: str, data: bytes) -> None:
        """Send one datagram now, without awaiting (the hot path of tunnelled frames).

        Like ``send(..., delivery=DATAGRAM)``: queued while a session is set up,
        dropped (and counted) when a queue is full. ``data`` must not exceed
        :meth:`max_datagram_size`.
        """

    def send_datagrams(self, peer: PeerId, channel: str, datas: Sequence[bytes]) -> None:
        """:meth:`send_datagram` of each of ``datas``, in order, in one call (a batch of tunnelled frames).

        The caller hands a whole burst, so with a session up the datagrams are on their way when the call
        returns, not after another turn of the event loop (a tunnelled frame's latency).
        """

    def max_datagram_size(self) -> int:
        """The largest ``data`` a datagram may carry in one packet."""

    def reconnect(self, peer: PeerId) -> None:
        """Start a fresh handshake with ``peer`` now, trying every path (direct, relays) at once.

        For a caller that knows the path went silent sooner than the transport can (its
        own traffic stopped arriving): the current session serves until the new one is
        up, so nothing is lost when the old path was fine after all.
        """

    def on_message(self, channel: str, handler: MessageHandler) -> None:
        """Register the handler for messages arriving on ``channel``."""

    def on_datagrams(self, channel: str, handler: DatagramBatchHandler) -> None:
        """Register ``handler`` for ``channel`` (instead of :meth:`on_message`): called once per run of
        messages from one peer that arrived together (a batch of tunnelled frames), in order."""

    def path_state(self, peer: PeerId) -> PathState:
        """The current path state towards ``peer``."""

    def endpoint_of(self, peer: PeerId) -> Endpoint | None:
        """Where ``peer``'s last authenticated packet came from (for reflection), if known."""

    async def identify(self, endpoint: Endpoint) -> PeerId:
        """Ask whoever listens at ``endpoint`` for its peer id (bootstrap by address).

        The answer is unauthenticated; the session handshake that follows proves it.
        """


# -- extension points for relays and NAT traversal ------------------------------

#: Called with a datagram the transport did not recognise as one of its own
#: packets, and the endpoint it came from (NAT traversal probes, for example).
RawDatagramHandler = Callable[[bytes, Endpoint], None]


@runtime_checkable
class PacketPath(Protocol):
    """An indirect way to carry a transport's opaque session packets to a peer.

    A relay plugin implements this and registers it with a transport that is a
    :class:`PacketPathHost`. The transport hands it already-encrypted session
    packets; the path moves them unchanged and never needs to read them. When
    the path receives a packet for this node it gives it back with
    :meth:`PacketPathHost.deliver_packet`. Because the session authenticates
    every packet, switching between a path and a direct endpoint (relay to
    direct after a hole punch, say) is invisible to the application.
    """

    @property
    def name(self) -> str:
        """A short unique name for this path, such as ``"relay"``."""

    def can_reach(self, peer: PeerId, now: float) -> bool:
        """True when this path can carry packets to ``peer`` at ``now`` (the transport's monotonic seconds).

        The transport's core passes its own time, so a core under virtual time asks about virtual time.
        """

    def send_packet(self, peer: PeerId, packet: bytes) -> None:
        """Carry one session packet to ``peer``; must not block (queue or drop)."""


@runtime_checkable
class PacketPathHost(Protocol):
    """What a transport offers to relays and NAT traversal (optional; check with ``isinstance``)."""

    def register_path(self, path: PacketPath) -> None:
        """Use ``path`` for peers with no working direct endpoint."""

    def unregister_path(self, path: PacketPath) -> None:
        """Stop using ``path``."""

    def deliver_packet(self, packet: bytes, path: PacketPath, sender: PeerId | None = None) -> None:
        """Process a session packet that arrived through ``path``.

        ``sender`` is what the path claims about the origin; it is only a hint,
        since the session itself authenticates the packet.
        """

    def send_raw(self, endpoint: Endpoint, data: bytes) -> None:
        """Send ``data`` as one datagram from the transport's own socket (a punch probe).

        ``data`` must not look like a session packet (see ``docs/wire.md``:
        first bytes ``0x10``-``0x1f`` are reserved by the transport).
        """

    def on_raw_datagram(self, handler: RawDatagramHandler) -> None:
        """Receive datagrams arriving on the transport's socket that are not session packets."""

    def probe(self, peer: PeerId, endpoint: Endpoint) -> None:
        """Send an authenticated packet to ``peer`` at ``endpoint`` (a handshake if no session).

        If ``peer`` answers from there, the transport moves the peer to that
        direct endpoint: the way a hole punch turns into a direct path.
        """


@runtime_checkable
class PathHostTransport(Transport, PacketPathHost, Protocol):
    """A transport that is also a :class:`PacketPathHost` (what a relay needs)."""


# -- restarting the transport alone ----------------------------------------------


@dataclass(frozen=True)
class TransportRestart:
    """What a transport restart did: where it listened before and after, and how many sessions it resumes."""

    before: tuple[Endpoint, ...]
    after: tuple[Endpoint, ...]
    #: Peers whose session the transport is resuming over the new socket (a fresh handshake on every path).
    resumed: int

    @property
    def moved(self) -> bool:
        """True when the transport listens somewhere else now (a new port: the old one was gone or asked away)."""
        return self.before != self.after


#: Called after a restart, once the new socket is open (a relay re-registers, discovery re-announces).
RestartListener = Callable[[TransportRestart], None]


@runtime_checkable
class RestartableTransport(Protocol):
    """A transport that can close and reopen its sockets in a running node, keeping its sessions
    (optional; check with ``isinstance``): what a laptop's network stack does to it after sleep."""

    async def restart(self, *, new_port: bool = False) -> TransportRestart:
        """Close the sockets and open them again: on the same port, or on a new one when that port is
        gone (or ``new_port``); then resume every session from there and tell the listeners."""

    def on_restart(self, listener: RestartListener) -> None:
        """Call ``listener`` after each restart."""
