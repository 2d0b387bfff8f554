"""Spec 01's misuse trial between seven node processes on loopback over the udp transport.

The provider accuses the consumer of its running VM (``omerta ledger accuse SESSION --evidence FILE``); each
of the lock's five witnesses judges the evidence and votes; four guilty votes of five abort the session
(``CONSUMER_MISUSE``), which is attested and settles through spec 02. A false accusation is acquitted, the
VM runs on, and every witness records a failed verification of the accuser; a true one records a failed
verification of the consumer. After syncing, every node holds the same chains and trust shows the costs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .nodes import WITNESSES, LedgerNode, start_cluster, sync_everyone

pytestmark = pytest.mark.timeout(1200)

CLI = "from omerta_core.cli import run; run()"
HOURLY_RATE = 36_000
#: Operations wait for five witnesses on a shared machine.
OPERATION_TIMEOUT_S = 300.0


def evidence(session: str, consumer: str, counts: list[int]) -> dict[str, Any]:
    """``vpn_bypass`` samples one second apart, ending now (docs/ledger.md, misuse trial)."""
    now_ms = int(time.time() * 1000)
    samples = [{"time_ms": now_ms - 1000 * (len(counts) - i), "count": c} for i, c in enumerate(counts)]
    return {"version": 1, "session_id": session, "consumer": consumer, "rule": "vpn_bypass", "samples": samples}


def accuse_by_cli(node: LedgerNode, session: str, evidence_file: Path) -> dict[str, Any]:
    command = [sys.executable, "-c", CLI, "ledger", "accuse", session, "--evidence", str(evidence_file), "--json",
               "--state-dir", str(node.state_dir)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=OPERATION_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def own_blocks(node: LedgerNode, kind: str) -> list[dict[str, Any]]:
    return [b for b in node.call("ledger.show", {"limit": 1000})["blocks"] if b["kind"] == kind]


def running_session(nodes: dict[str, LedgerNode], ids: dict[str, str]) -> str:
    locked = nodes["consumer"].call("ledger.lock", {"provider": ids["provider"], "amount": 600}, OPERATION_TIMEOUT_S)
    assert locked["state"] == "LOCKED", locked
    sync_everyone(nodes, ids)  # the provider and the witnesses hold the lock
    started = nodes["provider"].call("ledger.vm_start", {"session": locked["session"]}, OPERATION_TIMEOUT_S)
    assert started["state"] == "VM_RUNNING" and started["votes"] == 5, started
    return str(locked["session"])


def settle(nodes: dict[str, LedgerNode], session: str) -> dict[str, Any]:
    settled = nodes["consumer"].call("ledger.settle", {"session": session, "hourly_rate": HOURLY_RATE},
                                     OPERATION_TIMEOUT_S)  # fmt: skip
    assert settled["state"] == "SETTLED", settled
    return dict(settled)


def heads(node: LedgerNode, ids: dict[str, str]) -> dict[str, Any]:
    return {name: node.call("ledger.show", {"peer": peer, "limit": 1})["head"] for name, peer in ids.items()}


def verdicts(node: LedgerNode) -> dict[str, str]:
    """The misuse verdicts a witness wrote: detail's first word by subject."""
    return {
        b["payload"]["subject"]: b["payload"]["detail"].split()[0]
        for b in own_blocks(node, "verification")
        if " evidence=" in b["payload"]["detail"]
    }


def test_a_true_accusation_aborts_and_costs_the_consumer_a_false_one_costs_the_accuser(
    cluster: dict[str, LedgerNode], tmp_path: Path
) -> None:
    nodes = cluster
    # ages do not hide the evidence's effect
    ids = start_cluster(nodes, {"authorities": [nodes["w1"].peer_id], "age_maturity_days": 1e-6})
    nodes["w1"].call("ledger.run", {"name": "mint", "params": {"to": ids["consumer"], "amount": 2000}})
    sync_everyone(nodes, ids)

    # a false accusation: 30 packets around the VPN is no misuse; the witnesses acquit, the VM runs on
    first = running_session(nodes, ids)
    false_file = tmp_path / "false.json"
    false_file.write_text(json.dumps(evidence(first, ids["consumer"], [10, 10, 10])))
    acquitted = accuse_by_cli(nodes["provider"], first, false_file)
    assert acquitted["verdict"] == "acquitted" and acquitted["state"] == "VM_RUNNING", acquitted
    assert acquitted["votes"] == 5 and acquitted["guilty_votes"] == 0, acquitted
    ended = nodes["consumer"].call("ledger.attest", {"session": first}, OPERATION_TIMEOUT_S)
    assert ended["state"] == "ATTESTED" and ended["termination_reason"] == "CONSUMER_REQUEST", ended
    settle(nodes, first)

    # a true accusation: 1,200 packets around the VPN within two seconds; four of five must find misuse
    second = running_session(nodes, ids)
    guilty = nodes["provider"].call(
        "ledger.accuse", {"session": second, "evidence": evidence(second, ids["consumer"], [600, 600])},
        OPERATION_TIMEOUT_S,
    )  # fmt: skip
    assert guilty["verdict"] == "guilty" and guilty["guilty_votes"] >= 4, guilty
    assert guilty["state"] == "SESSION_COMPLETE" and guilty["termination_reason"] == "CONSUMER_MISUSE", guilty
    deadline = time.monotonic() + 60  # the consumer learns of the abort and holds the attestation too
    while len(own_blocks(nodes["consumer"], "vm_session")) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    consumer_end = own_blocks(nodes["consumer"], "vm_session")[-1]["payload"]
    assert consumer_end["reason"] == "CONSUMER_MISUSE", consumer_end
    with pytest.raises(Exception, match="no running VM session"):
        nodes["provider"].call("ledger.accuse", {"session": second, "evidence": {}})
    settled = settle(nodes, second)
    assert settled["settlement"]["duration_ms"] == guilty["duration_ms"], settled

    # every witness recorded both verdicts; after syncing every node holds the same chains
    for name in WITNESSES:
        assert verdicts(nodes[name]) == {ids["provider"]: "FALSE_ACCUSATION", ids["consumer"]: "CONSUMER_MISUSE"}
    sync_everyone(nodes, ids, rounds=2)
    agreed = heads(nodes["consumer"], ids)
    assert all(head is not None for head in agreed.values()), agreed
    for name, node in nodes.items():
        assert heads(node, ids) == agreed, name
        assert not node.call("ledger.verify")["problems"], name

    # trust: every witness's verdict weighs against the party it found at fault, as its own word
    for name in WITNESSES:
        for loser in ("consumer", "provider"):
            info = nodes[name].call("ledger.trust", {"peer": ids[loser]})
            own = [e for e in info["evidence"] if e["author"] == ids[name] and e["score"] < 0]
            assert len(own) == 1 and own[0]["contribution"] < 0, (name, loser, info["evidence"])
            passes = sum(e["contribution"] for e in info["evidence"] if e["score"] > 0)
            assert info["evidence_sum"] < passes, (name, loser, info)
    consumer_view = nodes["w3"].call("ledger.trust", {"peer": ids["consumer"]})
    assert consumer_view["evidence_term"] < 0 and consumer_view["trust"] == 0.0, consumer_view
