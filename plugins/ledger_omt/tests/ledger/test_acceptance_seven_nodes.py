"""Acceptance: seven node processes on loopback lock escrow with five witnesses (spec 00 on the .omt runtime
over the udp transport), refuse a lock beyond the balance, survive kill -9 of a witness mid-transaction, settle,
and after sync agree on every balance with no value created or lost except by mint and burn. Then the consumer
promises the same funds to two providers at once: the witnesses refuse, prove it with the two signed requests,
and the consumer's trust falls on every honest node."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from .nodes import WITNESSES, LedgerNode, sync_everyone

pytestmark = pytest.mark.timeout(900)

#: Identities count as mature after ~9 s, so the freshly started network has non-zero trust.
MATURITY_DAYS = 0.0001


def introduce(nodes: dict[str, LedgerNode], ids: dict[str, str]) -> None:
    ports = {name: node.port for name, node in nodes.items() if node.process and node.process.poll() is None}
    for name in ports:
        for other, port in ports.items():
            if other != name:
                nodes[name].call("udp.add_peer", {"peer": ids[other], "endpoints": [f"127.0.0.1:{port}"]})


def wait_until(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def mature(node: LedgerNode, peer: str) -> bool:
    return node.peer_id == peer or node.call("ledger.trust", {"peer": peer})["age_derate"] >= 1.0


def sessions(node: LedgerNode) -> int:
    return int(node.status()["services"]["ledger"]["omt"]["sessions"])


def balances(node: LedgerNode) -> dict[str, Any]:
    return node.call("ledger.balance", {})


def test_seven_nodes_escrow_double_lock_kill_9_and_settle(cluster: dict[str, LedgerNode]) -> None:
    nodes = cluster
    ids = {name: node.peer_id for name, node in nodes.items()}
    config = {"authorities": [ids["w1"]], "age_maturity_days": MATURITY_DAYS}
    nodes["w1"].start_with(config)
    for name in ["consumer", "provider", *WITNESSES[1:]]:
        nodes[name].start_with({**config, "peers": [nodes["w1"].address()]})
    introduce(nodes, ids)

    # value: w1 (the mint authority) funds the consumer and the provider; the provider pays each witness once,
    # which gives every witness a verified edge to the provider
    nodes["w1"].call("ledger.run", {"name": "mint", "params": {"to": ids["consumer"], "amount": 1000}})
    nodes["w1"].call("ledger.run", {"name": "mint", "params": {"to": ids["provider"], "amount": 1000}})
    sync_everyone(nodes, ids, rounds=1)
    for name in WITNESSES:
        nodes["provider"].call("ledger.run", {"name": "transfer", "params": {"to": ids[name], "amount": 100}})
    sync_everyone(nodes, ids, rounds=2)
    # every identity the lock will use has come of age (as the consumer and the provider see it)
    wait_until(lambda: all(mature(nodes[judge], ids[peer]) for judge in ("consumer", "provider") for peer in ids))

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
    # the four live witnesses hold the session and have voted; only the frozen one is missing
    wait_until(lambda: all(sessions(nodes[w]) > 0 for w in WITNESSES[:4]))
    assert locker.is_alive(), "the lock waits for the silent witness"
    w5.kill9()
    locker.join(timeout=300)
    locked_at = time.monotonic()
    assert outcome["state"] == "LOCKED", outcome
    assert sorted(outcome["witnesses"]) == sorted(ids[w] for w in WITNESSES)
    session = outcome["session"]

    # the killed witness restarts with an intact chain and catches up
    db = sqlite3.connect(nodes["w5"].state_dir / "plugins" / "omt" / "chains.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    nodes["w5"].start_with({**config, "peers": [nodes["w1"].address()]})
    introduce(nodes, ids)
    assert nodes["w5"].call("ledger.verify", {})["problems"] == {}

    # a lock beyond the balance (600 of 1000 are locked) asked of a second provider (w2, whose witnesses are the
    # provider and w1, w3, w4, w5) is refused by the witnesses
    run = {"name": "escrow_lock", "params": {"provider": ids["w2"], "amount": 600}}
    second = nodes["consumer"].call("ledger.run", run)  # Ledger.run_transaction
    assert second["state"] == "FAILED" and second["failure_reason"] == "lock_rejected", second
    assert ids["provider"] in second["witnesses"] and ids["w2"] not in second["witnesses"]

    sync_everyone(nodes, ids, rounds=2)
    consumer_head = nodes["consumer"].call("ledger.show", {})["head"]
    assert nodes["w5"].call("ledger.show", {"peer": ids["consumer"]})["head"] == consumer_head
    for node in nodes.values():
        view = balances(node)["balances"][ids["consumer"]]
        assert (view["balance"], view["locked"]) == (400, 600)

    # settle two seconds at 360 000 per hour (200) through spec 02: the witnesses report their trust in the provider,
    # sign the integer split from the lower median and send it to both parties, who write their blocks from it.
    # They attested no VM session, so they sign at most the time since they witnessed the lock: 2 s must have passed
    time.sleep(max(0.0, locked_at + 2.5 - time.monotonic()))
    settled = nodes["consumer"].call(
        "ledger.settle", {"session": session, "duration_ms": 2_000, "hourly_rate": 360_000}
    )
    assert settled["state"] == "SETTLED" and settled["signatures"] >= 3, settled
    reports = settled["trust_reports_milli"]
    assert len(reports) >= 3 and settled["settlement"]["provider_trust_milli"] == reports[(len(reports) - 1) // 2]
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

    # a double lock: 500 and 500 of the consumer's 800 promised at once, at one chain head, to w2 and to w3.
    # The witnesses of both (the provider, w1, w4, w5) accept whichever request reaches them first and refuse the
    # other with a double-lock proof; after sync every honest node holds the proof and trusts the consumer less.
    honest = [name for name in nodes if name != "consumer"]
    before = {name: nodes[name].call("ledger.trust", {"peer": ids["consumer"]}) for name in honest}
    assert all(b["trust"] > 0 and b["proofs"] == 0 for b in before.values()), before
    double: dict[str, dict[str, Any]] = {}

    def promise(provider: str) -> None:
        double[provider] = nodes["consumer"].call("ledger.lock", {"provider": ids[provider], "amount": 500})

    promises = [threading.Thread(target=promise, args=(p,)) for p in ("w2", "w3")]
    for thread in promises:
        thread.start()
    for thread in promises:
        thread.join(timeout=300)
    assert set(double) == {"w2", "w3"}, double
    shared = set(double["w2"]["witnesses"]) & set(double["w3"]["witnesses"])
    assert shared == {ids[n] for n in ("provider", "w1", "w4", "w5")}, double

    sync_everyone(nodes, ids, rounds=2)
    for name in honest:
        after = nodes[name].call("ledger.trust", {"peer": ids["consumer"]})
        assert after["proofs"] >= 1, (name, after)
        assert after["trust"] < before[name]["trust"], (name, before[name]["trust"], after["trust"])
    accusations = [
        block
        for name in ("provider", "w1", "w4", "w5")
        for block in nodes[name].call("ledger.show", {})["blocks"]
        if block["kind"] == "accusation"
    ]
    assert accusations, "a shared witness wrote its accusation with the proof"
    # the consumer's own chain rules keep the second promise off its chain; the books still balance
    views = {name: balances(node) for name, node in nodes.items()}
    for name, view in views.items():
        assert view["balances"] == views["consumer"]["balances"], f"{name} sees other balances"
        assert view["supply"]["unaccounted"] == 0
    consumer = views["consumer"]["balances"][ids["consumer"]]
    assert consumer["balance"] + consumer["locked"] == 800 and consumer["locked"] in (0, 500), consumer
