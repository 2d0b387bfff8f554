"""Errors the `udp` transport raises to its callers; each message is one actionable line.

Touches nothing.
"""

from omerta_core.errors import OmertaError


class TransportError(OmertaError):
    """Base of every error the udp transport raises on purpose."""


class BadChannelError(TransportError, ValueError):
    """A channel name that is empty, too long, or collides with another on the wire."""


class BadPeerError(TransportError, ValueError):
    """A peer id this transport cannot open a session to (this node itself, or not a usable key)."""


class MessageTooLargeError(TransportError, ValueError):
    """A message above the size a delivery class allows."""


class SendQueueFullError(TransportError):
    """A peer's reliable send queue is full; the peer is not keeping up or not reachable."""


class IdentifyTimeoutError(TransportError, TimeoutError):
    """Nothing answered an identify request at an endpoint."""


class NotStartedError(TransportError):
    """The transport was used before start() or after stop()."""
