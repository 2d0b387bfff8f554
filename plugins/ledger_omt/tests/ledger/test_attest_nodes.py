"""Spec 01 between seven node processes on loopback over the udp transport: after a lock (spec 00) the provider
announces the VM (``ledger.vm_start``), the five witnesses probe the provider and the consumer on the transport and
vote, the consumer ends the session (``ledger.attest``), the witnesses sign its duration and write verification
blocks, and ``ledger.settle`` without a duration charges the attested one through spec 02."""

from __future__ import annotations

import time

import pytest

from .nodes import WITNESSES, LedgerNode, start_cluster, sync_everyone

pytestmark = pytest.mark.timeout(900)

#: Seconds the VM session runs between the witnesses' verification and its end.
SESSION_S = 2.0
#: Ten units per second, so that a session of seconds costs something.
HOURLY_RATE = 36_000


def own_blocks(node: LedgerNode, kind: str) -> list[dict[str, object]]:
    return [b for b in node.call("ledger.show", {})["blocks"] if b["kind"] == kind]


def test_witnesses_attest_a_vm_session_between_nodes_and_settlement_charges_it(
    cluster: dict[str, LedgerNode],
) -> None:
    nodes = cluster
    ids = start_cluster(nodes, {"authorities": [nodes["w1"].peer_id]})
    nodes["w1"].call("ledger.run", {"name": "mint", "params": {"to": ids["consumer"], "amount": 1000}})
    sync_everyone(nodes, ids)

    locked = nodes["consumer"].call("ledger.lock", {"provider": ids["provider"], "amount": 600})
    assert locked["state"] == "LOCKED", locked
    # Each witness syncs the consumer twice at once (to judge the request, and to answer the others'
    # balance queries about it); both must work rather than one taking the other's replies and timing out.
    for name in WITNESSES:
        assert "catching up with a peer failed" not in nodes[name].log_path.read_text(errors="replace"), name
    session = locked["session"]
    with pytest.raises(Exception, match="no attested duration"):
        nodes["consumer"].call("ledger.settle", {"session": session, "hourly_rate": HOURLY_RATE})
    sync_everyone(nodes, ids)  # the provider (and the witnesses) hold the lock

    started = nodes["provider"].call("ledger.vm_start", {"session": session})
    assert started["state"] == "VM_RUNNING" and started["votes"] == 5, started
    time.sleep(SESSION_S)
    ended = nodes["consumer"].call("ledger.attest", {"session": session})
    assert ended["state"] == "ATTESTED" and ended["signatures"] >= 3, ended
    assert ended["termination_reason"] == "CONSUMER_REQUEST" and ended["duration_ms"] >= SESSION_S * 1000, ended

    [end] = own_blocks(nodes["consumer"], "vm_session")
    assert end["payload"]["duration_ms"] == ended["duration_ms"] and end["payload"]["role"] == "consumer"
    deadline = time.monotonic() + 30
    while not own_blocks(nodes["provider"], "vm_session") and time.monotonic() < deadline:
        time.sleep(0.2)
    [provider_end] = own_blocks(nodes["provider"], "vm_session")
    assert provider_end["payload"]["duration_ms"] == ended["duration_ms"]
    for name in WITNESSES:
        [verification] = own_blocks(nodes[name], "verification")
        assert verification["payload"]["subject"] == ids["provider"] and verification["payload"]["passed"]

    settled = nodes["consumer"].call("ledger.settle", {"session": session, "hourly_rate": HOURLY_RATE})
    assert settled["state"] == "SETTLED", settled
    split = settled["settlement"]
    charged = ended["duration_ms"] * HOURLY_RATE // 3_600_000
    assert split["duration_ms"] == ended["duration_ms"] and split["refund"] == 600 - charged, split
    # the explicit duration is still an option: a second lock settled for one second at 36 000 per hour (10). No
    # witness attested it, so each signs at most the time since it witnessed the lock: let a second pass
    second = nodes["consumer"].call("ledger.lock", {"provider": ids["provider"], "amount": 100})
    assert second["state"] == "LOCKED", second
    time.sleep(1.5)
    explicit = nodes["consumer"].call(
        "ledger.settle", {"session": second["session"], "duration_ms": 1_000, "hourly_rate": 36_000}
    )
    assert explicit["state"] == "SETTLED" and explicit["settlement"]["refund"] == 90, explicit
