"""What a ledger engine provides: chains, balances, trust and transactions.

Touches nothing.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from omerta_core.interfaces.common import PeerId, Service


@runtime_checkable
class Ledger(Service, Protocol):
    """Keeps this identity's chain, verifies others' chains and computes trust locally."""

    def balance(self, peer: PeerId) -> int:
        """The balance of ``peer`` as derived from the chains this node has verified."""

    def trust(self, peer: PeerId) -> float:
        """This node's local trust in ``peer``."""

    async def run_transaction(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run a transaction protocol (an ``.omt`` spec) to its end; return its outcome."""
