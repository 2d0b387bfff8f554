"""Transaction 04 between node processes on loopback over udp: an audit of a consumer that double-locked.

The consumer promises 600 and 600 of its 1000 at one chain head to two providers at once (two locks with
different witness sets that share four witnesses). Each shared witness accepts whichever request reaches it
first and refuses the other with a double-lock proof in an accusation on its own chain. An auditor that is
not one of them picks the proof up by syncing their chains, then ``omerta ledger audit CONSUMER --network``
fetches the consumer's chain from the consumer and reports ``double_spend`` with the double-lock proof. A fresh
node holding no chain but its own verifies that proof with the network's parameters alone, and rejects a
tampered copy.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import Any

import pytest
from omerta_ledger_omt.ledger.blocks import BlockKind

from .nodes import LedgerNode, start_cluster, sync_everyone

pytestmark = pytest.mark.timeout(600)

#: The two providers the consumer promises the same funds to, and the witnesses both locks share.
PROVIDERS = ("w2", "w3")
SHARED = ("provider", "w1", "w4", "w5")
#: Seconds for one lock or one audit (the nodes' own waits are shorter; CI shares two cores).
OPERATION_S = 300.0


def double_lock(nodes: dict[str, LedgerNode], ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The consumer asks both providers for a lock of 600 at once; the outcomes by provider."""
    outcomes: dict[str, dict[str, Any]] = {}

    def promise(provider: str) -> None:
        params = {"provider": ids[provider], "amount": 600}
        outcomes[provider] = nodes["consumer"].call("ledger.lock", params, timeout=OPERATION_S)

    threads = [threading.Thread(target=promise, args=(p,)) for p in PROVIDERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=OPERATION_S)
    assert set(outcomes) == set(PROVIDERS), outcomes
    return outcomes


def audit_over_network(auditor: LedgerNode, subject: str) -> tuple[int, dict[str, Any]]:
    """``omerta ledger audit SUBJECT --network --json`` against ``auditor``: exit code and published result."""
    command = [sys.executable, "-m", "omerta_core", "ledger", "audit", subject, "--network", "--json"]
    done = subprocess.run(
        [*command, "--state-dir", str(auditor.state_dir)],
        check=False,  # exit 1 means a discrepancy was found
        capture_output=True,
        text=True,
        timeout=OPERATION_S,
    )
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_an_audit_between_nodes_finds_a_double_lock_and_a_fresh_node_verifies_the_proof(
    cluster: dict[str, LedgerNode], judge: LedgerNode
) -> None:
    nodes = cluster
    authority = nodes["w1"].peer_id
    ids = start_cluster(nodes, {"authorities": [authority]})
    nodes["w1"].call("ledger.run", {"name": "mint", "params": {"to": ids["consumer"], "amount": 1000}})
    sync_everyone(nodes, ids)  # the consumer agrees to the mint; everyone holds every chain

    outcomes = double_lock(nodes, ids)
    shared = set(outcomes["w2"]["witnesses"]) & set(outcomes["w3"]["witnesses"])
    assert shared == {ids[name] for name in SHARED}, outcomes

    # w2 was a witness of the lock to w3 only: it holds no proof until it syncs the accusers' chains
    auditor = nodes["w2"]
    results = auditor.call("ledger.sync", {"peers": [ids[name] for name in SHARED], "timeout": 30})
    assert not any("error" in r for r in results.values()), results
    assert auditor.call("ledger.trust", {"peer": ids["consumer"]})["proofs"] >= 1

    code, result = audit_over_network(auditor, ids["consumer"])
    assert code == 1, result  # a discrepancy was found
    spends = [f for f in result["discrepancies"] if f["kind"] == "double_spend"]
    assert spends and all(f["proof"]["kind"] == "double_lock" for f in spends), result
    assert all(f["against"] == ids["consumer"] for f in spends), result
    assert result["subject"] == ids["consumer"] and result["answered"], result
    assert result["balance"] + result["locked"] == 1000, result  # the consumer's own rules kept one lock at most
    # the auditor recorded what the command printed
    recorded = [
        b["payload"]["result"]
        for b in auditor.call("ledger.show", {})["blocks"]
        if b["kind"] == str(BlockKind.AUDIT_RESULT)
    ]
    assert [r["audit_hash"] for r in recorded] == [result["audit_hash"]], recorded

    judge.start_with({"authorities": [authority]})
    assert list(judge.call("ledger.balance", {})["balances"]) == [judge.peer_id]  # no chain but its own
    checked = judge.call("ledger.verify_audit", {"audit": result})
    proofs = [row for row in checked["discrepancies"] if row["proof"] == "double_lock"]
    assert proofs and all(row["verified"] and row["against"] == ids["consumer"] for row in proofs), checked
    assert checked["invalid"] == 0 and checked["subject"] == ids["consumer"], checked

    # a proof cut short, or with one bit of the second request's signature (its last bytes) flipped, is rejected
    spend = spends[0]
    cbor = spend["proof_cbor"]
    for forged in (cbor[:-8], cbor[:-1] + format(int(cbor[-1], 16) ^ 1, "x")):
        tampered = {**result, "discrepancies": [{**spend, "proof_cbor": forged}]}
        assert judge.call("ledger.verify_audit", {"audit": tampered})["invalid"] == 1, forged
