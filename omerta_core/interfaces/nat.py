"""What a NAT traversal method provides: public endpoints, NAT class, direct paths.

Touches nothing.
"""

from __future__ import annotations

import enum
from typing import Protocol, runtime_checkable

from omerta_core.interfaces.common import Endpoint, PeerId, Service


class NatMapping(enum.Enum):
    """RFC 4787 mapping behaviour."""

    NONE = "none"  # public address, no NAT
    ENDPOINT_INDEPENDENT = "endpoint-independent"
    ADDRESS_DEPENDENT = "address-dependent"
    ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"
    UNKNOWN = "unknown"


class NatFiltering(enum.Enum):
    """RFC 4787 filtering behaviour."""

    NONE = "none"
    ENDPOINT_INDEPENDENT = "endpoint-independent"
    ADDRESS_DEPENDENT = "address-dependent"
    ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"
    UNKNOWN = "unknown"


@runtime_checkable
class NatTraversal(Service, Protocol):
    """Learns how this node is seen from outside and opens direct paths."""

    def observed_endpoints(self) -> list[Endpoint]:
        """Endpoints other nodes have reported seeing this node at."""

    def behaviour(self) -> tuple[NatMapping, NatFiltering]:
        """The local NAT's classified mapping and filtering behaviour."""

    async def punch(self, peer: PeerId, rendezvous: PeerId) -> Endpoint | None:
        """Try a coordinated hole punch to ``peer``; return the direct endpoint or ``None``."""
