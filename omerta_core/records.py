"""Typed records that plugins return from registration hooks.

Each record names one backend a plugin offers: the kernel picks backends by
``name`` and builds them by calling ``factory(node)``. Pure data; touches nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omerta_core.node import NodeContext

#: Every platform name the kernel compares against ``sys.platform``.
ANY_PLATFORM: tuple[str, ...] = ("linux", "darwin", "win32")


@dataclass(frozen=True)
class BackendRecord:
    """One backend a plugin offers.

    ``factory`` receives the running :class:`~omerta_core.node.NodeContext` and
    returns the service object (see :mod:`omerta_core.interfaces`).
    ``platforms`` lists the ``sys.platform`` values the backend works on;
    ``unusable_reason`` lets a backend refuse for a cause other than platform
    (a missing system library, say) with a sentence a user can act on.
    """

    name: str
    factory: Callable[[NodeContext], Any]
    description: str
    platforms: tuple[str, ...] = ANY_PLATFORM
    unusable_reason: Callable[[], str | None] | None = field(default=None, compare=False)

    def why_unusable(self, platform: str = sys.platform) -> str | None:
        """Return why this backend cannot run here, or ``None`` when it can."""
        if platform not in self.platforms:
            wanted = ", ".join(self.platforms)
            return f"{self.name} runs on {wanted}, not on {platform}"
        if self.unusable_reason is not None:
            return self.unusable_reason()
        return None


@dataclass(frozen=True)
class TransportRecord(BackendRecord):
    """A transport: carries end-to-end encrypted session packets between peers."""


@dataclass(frozen=True)
class NatTraversalRecord(BackendRecord):
    """A NAT traversal method: endpoint discovery, classification, hole punching."""


@dataclass(frozen=True)
class HypervisorRecord(BackendRecord):
    """A hypervisor backend: creates and deletes ephemeral VMs."""


@dataclass(frozen=True)
class DiscoveryRecord(BackendRecord):
    """A discovery mechanism: finds a network's peers and tracks their liveness."""


@dataclass(frozen=True)
class LedgerRecord(BackendRecord):
    """A ledger engine: keeps chains and runs transaction protocols."""


#: The registration hook for each record kind, in the order the node starts them.
RECORD_KINDS: dict[str, type[BackendRecord]] = {
    "transport": TransportRecord,
    "nat_traversal": NatTraversalRecord,
    "discovery": DiscoveryRecord,
    "ledger": LedgerRecord,
    "hypervisor": HypervisorRecord,
}
