"""The kernel's ``transport.restart`` control method: restart the node's transport alone, keeping its sessions.

A laptop's network stack closes its sockets when it sleeps; this does the same to a running
node on purpose (and lets tests do it), without touching anything else the node runs. Works
with any transport that is a :class:`~omerta_core.interfaces.transport.RestartableTransport`.
Touches only the transport, through its interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omerta_core.errors import OmertaError
from omerta_core.interfaces.transport import RestartableTransport, Transport

if TYPE_CHECKING:  # the node serves this method, so it cannot be imported from here at run time
    from omerta_core.node import NodeContext

METHOD = "transport.restart"


class TransportNotRestartableError(OmertaError):
    """The node's transport cannot be restarted alone."""


async def restart(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    """Restart the transport (``name``, else the default one); ``new_port`` makes it listen on a new port."""
    name = params.get("name")
    transport = node.service(Transport, str(name) if name else None)
    if not isinstance(transport, RestartableTransport):
        raise TransportNotRestartableError(
            f"the transport {name or 'of this node'} cannot restart alone; restart the node instead"
        )
    result = await transport.restart(new_port=bool(params.get("new_port", False)))
    return {
        "before": [str(e) for e in result.before],
        "after": [str(e) for e in result.after],
        "moved": result.moved,
        "resumed": result.resumed,
    }
