"""Chains reach every node through discovery: udp + gossip + omt processes, background sync only."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .nodes import LedgerNode

pytestmark = pytest.mark.timeout(900)

#: Generous: gossip convergence plus a few background sync intervals on a shared machine.
PATIENCE_S = 240.0


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.5)


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[list[LedgerNode]]:
    nodes = [LedgerNode(tmp_path / name) for name in ("a", "b", "c")]
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def test_background_sync_finds_peers_through_gossip(trio: list[LedgerNode]) -> None:
    a, b, c = trio
    authority = a.peer_id
    config = {
        "plugins": "udp,gossip,omt",
        "authorities": [authority],
        "sync_interval_s": 1.0,
        "sets": ["plugins.gossip.probe_interval_s=0.5", "plugins.gossip.probe_timeout_s=0.2"],
    }
    a.start_with(config)
    endpoint = f"127.0.0.1:{a.port}"
    b.start_with({**config, "bootstrap": [endpoint]})
    c.start_with({**config, "bootstrap": [endpoint]})
    c_id = c.peer_id
    a.call("ledger.run", {"name": "mint", "params": {"to": c_id, "amount": 250}})

    def everyone_sees_c_funded() -> bool:
        views = [node.call("ledger.balance", {"peer": c_id})["balances"][c_id] for node in trio]
        return all(v["balance"] == 250 for v in views)

    wait_until(everyone_sees_c_funded)
    supply = b.call("ledger.balance", {})["supply"]
    assert supply["minted"] == 250 and supply["unaccounted"] == 0
