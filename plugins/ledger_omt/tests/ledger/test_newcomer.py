"""What a newcomer meets in ``omerta ledger``: operations as commands, id prefixes, sync that tells the truth.

``ledger sync`` shows progress, exits 1 when a peer could not be synced, and
does not wait on peers gossip already found dead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from omerta_core.identity import Identity

from .nodes import LedgerNode
from .test_discovery_sync import wait_until

pytestmark = pytest.mark.timeout(900)

FAST_GOSSIP = ["plugins.gossip.probe_interval_s=0.5", "plugins.gossip.probe_timeout_s=0.2"]


def omerta(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMERTA_")}
    argv = [sys.executable, "-m", "omerta_core", *args, "--state-dir", str(state_dir)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, env=env)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[LedgerNode, LedgerNode]]:
    nodes = (LedgerNode(tmp_path / "a"), LedgerNode(tmp_path / "b"))
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def test_sync_transfer_and_balance_from_the_command_line_with_prefixes(pair: tuple[LedgerNode, LedgerNode]) -> None:
    a, b = pair
    a_id, b_id = a.peer_id, b.peer_id
    a.start_with({"authorities": [a_id]})
    b.start_with({"authorities": [a_id], "peers": [a.address()]})
    a.call("ledger.run", {"name": "mint", "params": {"to": b_id, "amount": 100}})

    unknown = omerta(b.state_dir, "ledger", "sync", a_id[:8])  # b holds no chain of a and has no discovery yet
    assert unknown.stderr == f"Error: no peer starts with '{a_id[:8]}'\n"
    synced = omerta(b.state_dir, "ledger", "sync", a_id)
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.startswith(a_id[:12]) and "error" not in synced.stdout
    assert "syncing chains: syncing with 1 peer(s), up to 20 s each" in synced.stderr
    assert f"syncing chains: {a_id[:12]}: " in synced.stderr

    balance = json.loads(omerta(b.state_dir, "ledger", "balance", b_id[:8], "--json").stdout)
    assert balance["balances"][b_id]["balance"] == 100
    assert omerta(b.state_dir, "ledger", "sync", a_id[:8]).returncode == 0  # now b holds a's chain

    sent = omerta(b.state_dir, "ledger", "transfer", a_id[:8], "30", "--json")
    assert sent.returncode == 0, sent.stderr
    block = json.loads(sent.stdout)
    assert block["kind"] == "transfer"
    after = json.loads(omerta(b.state_dir, "ledger", "balance", b_id, "--json").stdout)
    assert after["balances"][b_id]["balance"] == 70

    to_self = omerta(b.state_dir, "ledger", "transfer", b_id[:8], "1")
    assert to_self.returncode == 1 and to_self.stderr.strip() == "Error: a transfer to yourself changes nothing"


def test_sync_with_an_unreachable_peer_fails_with_a_non_zero_exit(pair: tuple[LedgerNode, LedgerNode]) -> None:
    a, _ = pair
    a.start_with({})
    nobody = Identity.generate().peer_id
    result = omerta(a.state_dir, "ledger", "sync", str(nobody), "--timeout", "1")
    assert result.returncode == 1
    assert "error: timed out after 1 s" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == "Error: sync failed with 1 of 1 peer(s)"


def test_escrow_operations_are_commands_with_one_line_errors(pair: tuple[LedgerNode, LedgerNode]) -> None:
    a, _ = pair
    a.start_with({})
    nobody = str(Identity.generate().peer_id)
    for args in (
        ("lock", nobody, "5"),
        ("topup", "no-such-session", "5"),
        ("renew", "no-such-session", "5"),
        ("settle", "no-such-session", "--rate", "10"),
    ):
        result = omerta(a.state_dir, "ledger", *args, "--json")
        assert result.returncode == 1, (args, result.stdout)
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert result.stderr.startswith("Error: "), (args, result.stderr)
    refused = omerta(a.state_dir, "ledger", "lock", nobody, "5", "--json")
    assert json.loads(refused.stdout)["state"] == "FAILED"
    # an unfunded newcomer is refused before any witness (or the provider) is asked
    assert json.loads(refused.stdout)["failure_reason"] == "insufficient_funds"
    assert refused.stderr == "Error: lock failed: this node holds 0 available, less than the 5 asked\n"


def test_sync_skips_peers_gossip_found_dead(pair: tuple[LedgerNode, LedgerNode]) -> None:
    a, b = pair
    config = {"plugins": "udp,gossip,omt", "sets": FAST_GOSSIP}
    a.start_with(config)
    b.start_with({**config, "bootstrap": [f"127.0.0.1:{a.port}"]})
    b_id = b.peer_id

    def liveness_of_b() -> str | None:
        rows = a.call("gossip.peers", {})
        return next((r["liveness"] for r in rows if r["peer"] == b_id), None)

    wait_until(lambda: liveness_of_b() == "alive")
    b.stop()
    wait_until(lambda: liveness_of_b() == "dead")
    result = omerta(a.state_dir, "ledger", "sync", "--json")
    assert result.returncode == 0, result.stderr
    assert b_id not in json.loads(result.stdout)
