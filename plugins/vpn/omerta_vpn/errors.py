"""The one error family of the ``vpn`` plugin; every message is one line a user can act on.

Touches nothing.
"""

from omerta_core.errors import OmertaError


class VpnError(OmertaError):
    """Base of every error the ``vpn`` plugin raises on purpose."""


class GatewayError(VpnError):
    """A consumer gateway that could not be built or is not running."""


class TunnelError(VpnError):
    """A tunnel that cannot be started: no such VM, no frame port, a clash of tunnel ids."""


class ControlMessageError(VpnError, ValueError):
    """A tunnel control message that does not parse."""
