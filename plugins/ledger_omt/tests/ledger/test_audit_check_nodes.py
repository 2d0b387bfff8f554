"""Transactions 04 (state audit) and 05 (health check) between node processes on loopback over udp.

04: an audit of an honest node finds nothing; of a node whose chain was edited in its SQLite file (without
its key: the block no longer verifies) and of one that forked (a different block, signed, at a sequence
others hold) it finds the discrepancy, and a fresh node holding no chain but its own verifies the proof.
05: a due health check has each cabal member audit the subject and record the result; a trigger that is
not due (the cabal checked the subject moments ago) is refused by the cabal; every honest observer that
syncs counts the result, so a subject caught with an edited chain becomes suspicious everywhere and its
interval shrinks; once the (configured, short) interval has passed, it is due again.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from omerta_ledger_omt.ledger.blocks import Block, BlockKind

from omerta_core import identity as identity_mod

from .nodes import WITNESSES, LedgerNode, sync_everyone
from .test_acceptance_seven_nodes import introduce, wait_until

pytestmark = pytest.mark.timeout(900)

#: Seconds between health checks of an unsuspected peer in these tests (the default is 30 days).
HEALTH_INTERVAL_S = 45
#: A control call that runs an audit or a health check: the cabal's waits are 150 s and 180 s at most.
OPERATION_S = 300.0
CABAL = ["w1", "w2", "w3"]


def start(nodes: dict[str, LedgerNode], ids: dict[str, str]) -> dict[str, Any]:
    config = {"authorities": [ids["w1"]], "health_interval_s": HEALTH_INTERVAL_S}
    nodes["w1"].start_with(config)
    for name in ["consumer", "provider", *WITNESSES[1:]]:
        nodes[name].start_with({**config, "peers": [nodes["w1"].address()]})
    introduce(nodes, ids)
    return config


def edit_chain(node: LedgerNode, config: dict[str, Any], ids: dict[str, str], nodes: dict[str, LedgerNode],
               *, resign: bool) -> None:  # fmt: skip
    """Stop ``node``, change its last block in its SQLite file, restart it.

    ``resign``: a later time, signed with the node's key (a fork); else a burn's amount, unsigned (corrupt).
    """
    node.stop()
    path = node.state_dir / "plugins" / "omt" / "chains.sqlite3"
    db = sqlite3.connect(path)
    try:
        me = node.peer_id
        (wire,) = db.execute("SELECT wire FROM blocks WHERE owner = ? ORDER BY seq DESC LIMIT 1", (me,)).fetchone()
        last = Block.decode(wire)
        if resign:
            key = identity_mod.load_or_create(node.state_dir)
            edited = Block.create(key, last.seq, last.prev, last.kind, last.time_ms + 1, last.payload)
        else:
            payload = {**last.payload, "amount": last.payload["amount"] + 5}
            edited = Block(last.owner, last.seq, last.prev, last.kind, last.time_ms, payload, last.signature)
        db.execute("UPDATE blocks SET wire = ?, hash = ? WHERE owner = ? AND seq = ?",
                   (edited.encode(), edited.hash, me, last.seq))  # fmt: skip
        db.commit()
    finally:
        db.close()
    node.start_with({**config, "peers": [nodes["w1"].address()]})
    introduce(nodes, ids)


def test_audits_between_nodes_find_edited_and_forked_chains_and_a_fresh_node_verifies_the_proofs(
    cluster: dict[str, LedgerNode], judge: LedgerNode
) -> None:
    nodes = cluster
    ids = {name: node.peer_id for name, node in nodes.items()}
    config = start(nodes, ids)
    nodes["w1"].call("ledger.run", {"name": "mint", "params": {"to": ids["consumer"], "amount": 1000}})
    sync_everyone(nodes, ids)
    nodes["consumer"].call("ledger.transfer", {"to": ids["provider"], "amount": 100})
    nodes["consumer"].call("ledger.run", {"name": "burn", "params": {"amount": 10}})
    nodes["w2"].call("ledger.run", {"name": "checkpoint", "params": {}})
    sync_everyone(nodes, ids, rounds=2)  # the provider agrees to the transfer; everyone holds every chain

    honest = nodes["w1"].call("ledger.audit_peer", {"peer": ids["consumer"]}, timeout=OPERATION_S)
    assert honest["state"] == "COMPLETE" and honest["counterparties"] == [ids["provider"]], honest
    assert honest["confirmations"] == 1 and honest["result"]["discrepancies"] == [], honest
    assert honest["result"]["balance"] == 890 and honest["result"]["blocks_checked"] >= 4, honest

    edit_chain(nodes["consumer"], config, ids, nodes, resign=False)
    edit_chain(nodes["w2"], config, ids, nodes, resign=True)
    edited = nodes["w1"].call("ledger.audit_peer", {"peer": ids["consumer"]}, timeout=OPERATION_S)
    [corrupt] = edited["result"]["discrepancies"]
    assert corrupt["kind"] == "signature_invalid" and corrupt["proof"]["kind"] == "served_corrupt", corrupt
    forked = nodes["w4"].call("ledger.audit_peer", {"peer": ids["w2"]}, timeout=OPERATION_S)
    fork = {f["kind"]: f for f in forked["result"]["discrepancies"]}["chain_fork"]
    assert fork["proof"]["kind"] == "fork" and fork["against"] == ids["w2"], forked

    judge.start_with({"authorities": [ids["w1"]]})
    assert list(judge.call("ledger.balance", {})["balances"]) == [judge.peer_id]  # no chain but its own
    cases = ((edited, "w1", "consumer", "served_corrupt"), (forked, "w4", "w2", "fork"))
    for outcome, auditor, subject, kind in cases:
        checked = judge.call("ledger.verify_audit", {"audit": outcome["block"]})
        proofs = [row for row in checked["discrepancies"] if row["proof"] == kind]
        assert proofs and all(row["verified"] and row["against"] == ids[subject] for row in proofs), checked
        assert checked["auditor"] == ids[auditor] and checked["invalid"] == 0, checked
    tampered = dict(edited["result"])
    tampered["discrepancies"] = [{**corrupt, "proof_cbor": corrupt["proof_cbor"][:-8]}]
    assert judge.call("ledger.verify_audit", {"audit": tampered})["invalid"] == 1


def test_health_checks_between_nodes_refuse_what_is_not_due_and_raise_suspicion_everywhere(
    cluster: dict[str, LedgerNode],
) -> None:
    nodes = cluster
    ids = {name: node.peer_id for name, node in nodes.items()}
    config = start(nodes, ids)
    cabal = [ids[name] for name in CABAL]
    nodes["w1"].call("ledger.run", {"name": "mint", "params": {"to": ids["consumer"], "amount": 1000}})
    sync_everyone(nodes, ids)  # the consumer agrees to the mint
    nodes["consumer"].call("ledger.run", {"name": "burn", "params": {"amount": 10}})  # the block it will edit

    # an honest provider, never checked: due; every member audits it and records a clean result
    checked = nodes["w4"].call("ledger.health_check", {"peer": ids["provider"], "cabal": cabal}, timeout=OPERATION_S)
    assert checked["state"] == "CHECKED" and all(r["clean"] for r in checked["results"]), checked
    for name in CABAL:
        [result] = [
            b for b in nodes[name].call("ledger.show", {})["blocks"] if b["kind"] == str(BlockKind.CHECK_RESULT)
        ]
        assert result["payload"]["subject"] == ids["provider"] and result["payload"]["clean"]
    # w5 has not synced the cabal: it thinks the provider due, but the cabal checked it moments ago and refuses
    refused = nodes["w5"].call("ledger.health_check", {"peer": ids["provider"], "cabal": cabal}, timeout=OPERATION_S)
    # (one refusal settles it: three of three must agree for a check)
    assert refused["state"] == "REFUSED" and refused["failure_reason"] == "not_due", refused
    assert refused["refusals"] and set(refused["refusals"]) <= set(cabal), refused

    # the consumer edits its chain in SQLite; a check finds it and every observer grows suspicious of it
    edit_chain(nodes["consumer"], config, ids, nodes, resign=False)
    caught = nodes["provider"].call("ledger.health_check", {"peer": ids["consumer"], "cabal": cabal},
                                    timeout=OPERATION_S)  # fmt: skip
    assert caught["state"] == "CHECKED" and not any(r["clean"] for r in caught["results"]), caught
    sync_everyone({n: nodes[n] for n in nodes if n != "consumer"}, ids)
    observers = ["provider", "w4", "w5", *CABAL]
    views = {name: nodes[name].call("ledger.suspicion", {"peer": ids["consumer"]}) for name in observers}
    for name, view in views.items():
        assert view["suspicion"] > 0.5 and view["proofs"] >= 1, (name, view, caught)
        assert view["interval_s"] < HEALTH_INTERVAL_S / 1.5, (name, view)
    assert len({round(v["suspicion"], 2) for v in views.values()}) == 1, views
    clean = nodes["w5"].call("ledger.suspicion", {"peer": ids["provider"]})
    assert clean["suspicion"] == 0 and clean["last_check_at"] is not None, clean

    # once the interval has passed the provider is due again, and a check goes through
    wait_until(lambda: nodes["w5"].call("ledger.suspicion", {"peer": ids["provider"]})["due"], HEALTH_INTERVAL_S * 3)
    again = nodes["w5"].call("ledger.health_check", {"peer": ids["provider"], "cabal": cabal}, timeout=OPERATION_S)
    assert again["state"] == "CHECKED", again
