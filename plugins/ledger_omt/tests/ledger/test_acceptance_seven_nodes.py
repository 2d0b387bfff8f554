"""Acceptance: seven node processes on loopback lock escrow with five witnesses (spec 00 on the .omt runtime
over the udp transport), refuse a double lock, survive kill -9 of a witness mid-transaction, settle, and
after sync agree on every balance with no value created or lost except by mint and burn."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .nodes import LedgerNode

pytestmark = pytest.mark.timeout(900)

WITNESSES = ["w1", "w2", "w3", "w4", "w5"]
#: Identities count as mature after ~9 s, so the freshly started network has non-zero trust.
MATURITY_DAYS = 0.0001


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, LedgerNode]]:
    nodes = {name: LedgerNode(tmp_path / name) for name in ["consumer", "provider", *WITNESSES]}
    try:
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()


def introduce(nodes: dict[str, LedgerNode], ids: dict[str, str]) -> None:
    ports = {name: node.port for name, node in nodes.items() if node.process and node.process.poll() is None}
    for name in ports:
        for other, port in ports.items():
            if other != name:
                nodes[name].call("udp.add_peer", {"peer": ids[other], "endpoints": [f"127.0.0.1:{port}"]})


def sync_everyone(nodes: dict[str, LedgerNode], ids: dict[str, str], rounds: int = 2) -> None:
    for _ in range(rounds):
        for name, node in nodes.items():
            others = [ids[o] for o in nodes if o != name]
            results = node.call("ledger.sync", {"peers": others, "timeout": 30})
            failed = {peer[:12]: r["error"] for peer, r in results.items() if "error" in r}
            assert not failed, f"{name} could not sync: {failed}"


def balances(node: LedgerNode) -> dict[str, Any]:
    return node.call("ledger.balance", {})


def test_seven_nodes_escrow_double_lock_kill_9_and_settle(cluster: dict[str, LedgerNode]) -> None:
    nodes = cluster
    ids = {name: node.peer_id for name, node in nodes.items()}
    config = {"authorities": [ids["w1"]], "age_maturity_days": MATURITY_DAYS}
    nodes["w1"].start(config)
    for name in ["consumer", "provider", *WITNESSES[1:]]:
        nodes[name].start({**config, "peers": [nodes["w1"].address()]})
    introduce(nodes, ids)

    # value: w1 (the mint authority) funds the consumer and the provider; the provider pays each witness once,
    # which gives every witness a verified edge to the provider
    nodes["w1"].call("ledger.run", {"name": "mint", "params": {"to": ids["consumer"], "amount": 1000}})
    nodes["w1"].call("ledger.run", {"name": "mint", "params": {"to": ids["provider"], "amount": 1000}})
    sync_everyone(nodes, ids, rounds=1)
    for name in WITNESSES:
        nodes["provider"].call("ledger.run", {"name": "transfer", "params": {"to": ids[name], "amount": 100}})
    sync_everyone(nodes, ids)
    time.sleep(MATURITY_DAYS * 86400)

    # lock 600 with five witnesses; witness w5 is frozen (SIGSTOP) so that the requests reach it but are never
    # handled, then killed with SIGKILL while the others wait for it: the lock completes with the remaining four
    outcome: dict[str, Any] = {}

    def run_lock() -> None:
        outcome.update(nodes["consumer"].call("ledger.lock", {"provider": ids["provider"], "amount": 600}))

    w5 = nodes["w5"]
    assert w5.process is not None
    w5.process.send_signal(signal.SIGSTOP)
    locker = threading.Thread(target=run_lock)
    locker.start()
    time.sleep(2.0)
    assert locker.is_alive(), "the lock waits for the silent witness"
    w5.kill9()
    locker.join(timeout=300)
    assert outcome["state"] == "LOCKED", outcome
    assert sorted(outcome["witnesses"]) == sorted(ids[w] for w in WITNESSES)
    session = outcome["session"]

    # the killed witness restarts with an intact chain and catches up
    db = sqlite3.connect(nodes["w5"].state_dir / "plugins" / "omt" / "chains.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    nodes["w5"].start({**config, "peers": [nodes["w1"].address()]})
    introduce(nodes, ids)
    assert nodes["w5"].call("ledger.verify", {})["problems"] == {}

    # a double lock: the same funds (600 of 1000 are locked) promised at once to a second provider (w2, whose
    # witnesses are the provider and w1, w3, w4, w5) is refused by the witnesses
    run = {"name": "escrow_lock", "params": {"provider": ids["w2"], "amount": 600}}
    second = nodes["consumer"].call("ledger.run", run)  # Ledger.run_transaction
    assert second["state"] == "FAILED" and second["failure_reason"] == "lock_rejected", second
    assert ids["provider"] in second["witnesses"] and ids["w2"] not in second["witnesses"]

    sync_everyone(nodes, ids)
    consumer_head = nodes["consumer"].call("ledger.show", {})["head"]
    assert nodes["w5"].call("ledger.show", {"peer": ids["consumer"]})["head"] == consumer_head
    for node in nodes.values():
        view = balances(node)["balances"][ids["consumer"]]
        assert (view["balance"], view["locked"]) == (400, 600)

    # settle two hours at 100 per hour; the provider claims its share when it syncs
    settled = nodes["consumer"].call(
        "ledger.settle", {"session": session, "duration_ms": 7_200_000, "hourly_rate": 100}
    )
    assert settled["signatures"] >= 3, settled
    split = settled["settlement"]
    assert split["refund"] == 400 and split["provider_payment"] + split["burn"] == 200
    assert split["provider_payment"] > 0, "witnesses trust the provider they were paid by"
    sync_everyone(nodes, ids, rounds=3)

    views = {name: balances(node) for name, node in nodes.items()}
    reference = views["consumer"]["balances"]
    for name, view in views.items():
        assert view["balances"] == reference, f"{name} sees other balances"
        supply = view["supply"]
        assert supply["unaccounted"] == 0 and supply["minted"] == 2000, (name, supply)
        assert supply["burned"] == split["burn"] and supply["locked"] == 0
    assert reference[ids["consumer"]]["balance"] == 800
    assert reference[ids["provider"]]["balance"] == 1000 - 500 + split["provider_payment"]
