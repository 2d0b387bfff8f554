"""The errors the gossip plugin raises on purpose; each message is one line a user can act on.

Touches nothing.
"""

from omerta_core.errors import OmertaError


class GossipError(OmertaError):
    """Base of every error the gossip plugin raises."""


class RecordError(GossipError):
    """A peer record that is malformed, unsigned, forged or for another network."""


class WireError(GossipError):
    """A gossip message that cannot be decoded."""


class InviteError(GossipError):
    """An invite link that is garbage, wrongly signed or expired."""


class NetworkError(GossipError):
    """A network that is unknown, already joined, or stored badly."""
