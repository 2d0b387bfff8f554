"""The ledger in a real ``omerta node`` process: control methods, the CLI online and offline, a tampered store."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from omerta_core.testing import NodeProcess

CLI = "from omerta_core.cli import run; run()"


def omerta(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, *args], check=False, capture_output=True, text=True, timeout=120)


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NodeProcess]:
    config = tmp_path / "config.toml"
    config.write_text("")
    monkeypatch.setenv("OMERTA_CONFIG", str(config))
    running = NodeProcess(tmp_path / "node", "omt")
    try:
        yield running.start()
    finally:
        running.stop()


def test_cli_against_a_running_node(node: NodeProcess) -> None:
    state = str(node.state_dir)
    peer = omerta("id", "--state-dir", state).stdout.strip()
    shown = json.loads(omerta("ledger", "show", "--json", "--state-dir", state).stdout)
    assert shown["owner"] == peer and shown["blocks"][0]["kind"] == "identity"
    balance = json.loads(omerta("ledger", "balance", "--json", "--state-dir", state).stdout)
    assert balance["balances"][peer]["balance"] == 0 and balance["supply"]["unaccounted"] == 0
    verify = omerta("ledger", "verify", "--state-dir", state)
    assert verify.returncode == 0 and "sqlite integrity: ok" in verify.stdout
    sync = omerta("ledger", "sync", "--state-dir", state)
    assert sync.returncode == 0 and "no peers" in sync.stdout
    trust = omerta("ledger", "trust", peer, "--state-dir", state)
    assert "trusts itself" in trust.stdout
    bad = omerta("ledger", "trust", "not-a-peer", "--state-dir", state)
    assert bad.returncode != 0 and "no peer starts with 'not-a-peer'" in bad.stderr
    status = json.loads(omerta("status", "--json", "--state-dir", state).stdout)
    assert status["services"]["ledger"]["omt"]["own_head"] == 0


def test_offline_cli_finds_a_tampered_block(node: NodeProcess) -> None:
    state = str(node.state_dir)
    peer = omerta("id", "--state-dir", state).stdout.strip()
    node.stop()
    offline = json.loads(omerta("ledger", "show", "--json", "--state-dir", state).stdout)
    assert offline["owner"] == peer
    db = sqlite3.connect(node.state_dir / "plugins" / "omt" / "chains.sqlite3")
    wire = db.execute("SELECT wire FROM blocks").fetchone()[0]
    db.execute("UPDATE blocks SET wire = ?", (wire.replace(b"identity", b"identitz"),))
    db.commit()
    db.close()
    verify = omerta("ledger", "verify", "--state-dir", state)
    assert verify.returncode == 1
    assert "unknown block kind 'identitz'" in verify.stdout
