"""What spec 03's witnesses answer from: this node's chains, read the way a state answer means them.

Spec 03's witness asks ``READ(subject, query)`` for the question asked and ``READ(subject, "synced_at")``
for its confidence. :class:`StateAnswerView` answers those over the node's :class:`ChainLedgerView`:

* ``balance``: the subject's available balance at the head held here (what its chain says, so a false
  HIGH answer is provable by replay; locks this node voted for but not yet on the chain are not
  deducted, unlike spec 00's ``balance``), ``chain_head`` (hash), ``chain_length`` (blocks);
* ``age`` (whole days since others first witnessed the subject; ``unknown`` if nobody has) and
  ``trust`` (local trust in thousandths), both local to this observer and never falsifiable;
* ``synced_at``: seconds (the specs' clock) when this node last synced the subject's chain, from
  :class:`SyncTimes` (None: not since it started).

``lie`` is a test hook (the ``ledger_test_lie_state_answers`` setting, never on by default): the
witness then answers chain questions falsely with full confidence, so tests show that the honest
threshold wins and the lie is provable. Touches the chain store (reads).
"""

from __future__ import annotations

from typing import Any

from omerta_ledger_omt.ledger.omt_host import ChainLedgerView
from omerta_ledger_omt.ledger.state_query import UNKNOWN

MS_PER_DAY = 86_400_000

#: How far a lying witness (test hook) shifts the balance and length it reports.
LIE_OFFSET = 1_000_000


class SyncTimes:
    """When this node last synced each peer's chain (milliseconds, the specs' clock), in memory."""

    def __init__(self) -> None:
        self._at: dict[str, int] = {}

    def note(self, peer: str, at_ms: int) -> None:
        self._at[peer] = max(at_ms, self._at.get(peer, 0))

    def get(self, peer: str) -> int | None:
        return self._at.get(peer)


class StateAnswerView:
    """The runtime's ledger view for spec 03: the chain view, with the state questions answered."""

    def __init__(self, chains: ChainLedgerView, synced: SyncTimes, *, lie: bool = False) -> None:
        self.chains = chains
        self.synced = synced
        self.lie = lie

    def read(self, peer: str, key: str) -> Any:
        ledger = self.chains.ledger
        store = ledger.store
        if key == "synced_at":
            at = self.synced.get(peer)
            return None if at is None else at / 1000.0
        if key not in ("balance", "chain_head", "chain_length", "age", "trust"):
            return self.chains.read(peer, key)
        head = store.head(peer)
        if head is None:
            return UNKNOWN
        if key == "balance":
            value = store.state(peer).available()
            return value + LIE_OFFSET if self.lie else value
        if key == "chain_head":
            return ("f" * 64) if self.lie else head.hash.hex()
        if key == "chain_length":
            return head.seq + 1 + (LIE_OFFSET if self.lie else 0)
        now_ms = self.chains.now_ms
        if key == "trust":
            return self.chains.read(peer, "trust_milli")
        age_days = ledger.explain_trust(peer, now_ms).get("age_days")
        return UNKNOWN if age_days is None else int(age_days)

    def chain_head(self) -> str:
        return self.chains.chain_head()

    def chain_segment(self, from_hash: str) -> list[dict[str, Any]]:
        return self.chains.chain_segment(from_hash)

    def verify_segment(self, peer: str, segment: list[dict[str, Any]]) -> bool:
        return self.chains.verify_segment(peer, segment)
