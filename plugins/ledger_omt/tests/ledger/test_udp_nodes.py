"""Chain sync between real node processes over the udp transport on loopback."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .nodes import LedgerNode

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[Callable[[str], LedgerNode]]:
    started: list[LedgerNode] = []

    def make(name: str) -> LedgerNode:
        node = LedgerNode(tmp_path / name)
        started.append(node)
        return node

    try:
        yield make
    finally:
        for node in started:
            node.stop()


def test_two_nodes_sync_value_and_survive_kill_9(make_node: Callable[[str], LedgerNode]) -> None:
    bank, user = make_node("bank"), make_node("user")
    bank_id, user_id = bank.peer_id, user.peer_id
    bank.start_with({"authorities": [bank_id]})
    user.start_with({"authorities": [bank_id], "peers": [bank.address()]})
    bank.call("ledger.run", {"name": "mint", "params": {"to": user_id, "amount": 700}})

    result = user.call("ledger.sync", {"peers": [bank_id]})
    assert "error" not in result[bank_id], result
    assert result[bank_id]["blocks_added"] == 2 and result[bank_id]["accepted"] == 1
    user.call("ledger.run", {"name": "transfer", "params": {"to": bank_id, "amount": 200}})
    bank.call("udp.add_peer", {"peer": user_id, "endpoints": [f"127.0.0.1:{user.port}"]})
    result = bank.call("ledger.sync", {"peers": [user_id]})
    assert "error" not in result[user_id], result
    assert result[user_id]["accepted"] == 1, "the bank accepts the transfer addressed to it"
    user.call("ledger.sync", {"peers": [bank_id]})

    views = [node.call("ledger.balance", {}) for node in (bank, user)]
    assert views[0]["balances"] == views[1]["balances"]
    assert views[0]["balances"][user_id]["balance"] == 500
    assert views[0]["balances"][bank_id]["balance"] == 200
    assert views[0]["supply"]["unaccounted"] == 0 and views[0]["supply"]["minted"] == 700

    # kill -9 the user mid-life: its chain survives intact and it catches up on restart
    user.kill9()
    db = sqlite3.connect(user.state_dir / "plugins" / "omt" / "chains.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    bank.call("ledger.run", {"name": "mint", "params": {"to": user_id, "amount": 50}})
    user.start_with({"authorities": [bank_id], "peers": [bank.address()]})
    assert user.call("ledger.verify", {})["problems"] == {}
    result = user.call("ledger.sync", {"peers": [bank_id]})
    assert "error" not in result[bank_id], result
    assert user.call("ledger.balance", {"peer": user_id})["balances"][user_id]["balance"] == 550
