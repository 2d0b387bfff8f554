"""Fixtures for ledger tests: a small network of identities, each with its own SQLite chain store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from omerta_ledger_omt.ledger.blocks import Block
from omerta_ledger_omt.ledger.chainstate import Parameters
from omerta_ledger_omt.ledger.local import LocalLedger
from omerta_ledger_omt.ledger.store import ChainStore

from omerta_core.identity import Identity

from .nodes import WITNESSES, LedgerNode

DAY_MS = 86_400_000
#: A fixed "now" so that ages are reproducible: identities are created 200 days before it.
START_MS = 1_700_000_000_000
NOW_MS = START_MS + 200 * DAY_MS


def identity(name: str) -> Identity:
    return Identity.from_seed(hashlib.sha256(name.encode()).digest())


@dataclass
class Network:
    root: Path
    names: list[str]
    params: Parameters = field(init=False)
    ledgers: dict[str, LocalLedger] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.params = Parameters(mint_authorities=frozenset({str(identity("authority").peer_id)}))
        for name in ["authority", *self.names]:
            store = ChainStore(self.root / name, self.params)
            ledger = LocalLedger(identity(name), store)
            ledger.ensure_identity(START_MS)
            self.ledgers[name] = ledger

    def __getitem__(self, name: str) -> LocalLedger:
        return self.ledgers[name]

    def peer(self, name: str) -> str:
        return self.ledgers[name].me

    def sync(self, to: list[str] | None = None) -> None:
        """Give every ledger (or those in ``to``) every block any ledger holds, through the wire encoding."""
        blobs = {raw for ledger in self.ledgers.values() for raw in ledger.store.iter_all()}
        blocks = [Block.decode(raw) for raw in blobs]
        for name in to or list(self.ledgers):
            self.ledgers[name].store.add_many(blocks)

    def fund(self, name: str, amount: int, now_ms: int = START_MS + DAY_MS) -> None:
        proposal = self["authority"].mint(self.peer(name), amount, now_ms)
        self[name].agree(proposal, now_ms)

    def close(self) -> None:
        for ledger in self.ledgers.values():
            ledger.store.close()


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    net = Network(tmp_path, ["consumer", "provider", "w1", "w2", "w3", "w4", "w5", "w6", "w7"])
    try:
        yield net
    finally:
        net.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, LedgerNode]]:
    """A consumer, a provider and five witnesses as node processes (not started); all stopped after."""
    nodes = {name: LedgerNode(tmp_path / name) for name in ["consumer", "provider", *WITNESSES]}
    try:
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()


@pytest.fixture
def judge(tmp_path: Path) -> Iterator[LedgerNode]:
    """A node that holds no chain but its own: it checks proofs with the parameters alone."""
    node = LedgerNode(tmp_path / "judge")
    try:
        yield node
    finally:
        node.stop()
