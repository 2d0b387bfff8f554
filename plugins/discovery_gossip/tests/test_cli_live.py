"""The commands against running nodes: create, invite and join while nodes run; `omerta peers` table and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from omerta_discovery_gossip.cluster import LocalCluster

pytestmark = pytest.mark.slow


def omerta(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from omerta_core.cli import run; run()", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def wait_until(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.5)


def test_invite_and_join_between_running_nodes(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path)
    try:
        cluster.spawn("a")
        cluster.spawn("b")
        cluster.wait_ready()
        a, b = cluster.nodes["a"], cluster.nodes["b"]
        created = omerta("network", "create", "lab", "--state-dir", str(a.state_dir), "--json")
        assert created.returncode == 0, created.stderr
        lab = json.loads(created.stdout)["id"]
        wait_until(lambda: a.endpoint in "".join(cluster.call("a", "gossip.endpoints")))
        link = omerta("network", "invite", "lab", "--state-dir", str(a.state_dir))
        assert link.returncode == 0 and link.stdout.startswith("omerta://join/"), link.stderr
        joined = omerta("network", "join", link.stdout.strip(), "--state-dir", str(b.state_dir))
        assert joined.returncode == 0, joined.stderr

        def b_sees_a_in_lab() -> bool:
            rows = json.loads(omerta("peers", "--network", lab, "--json", "--state-dir", str(b.state_dir)).stdout)
            return any(r["peer"] == a.peer_id and r["liveness"] == "alive" for r in rows)

        wait_until(b_sees_a_in_lab)
        table = omerta("peers", "--state-dir", str(a.state_dir))
        assert table.returncode == 0
        assert table.stdout.splitlines()[0].split() == ["PEER", "NETWORK", "LIVENESS", "ENDPOINTS", "VERSION"]
        assert b.peer_id[:12] in table.stdout and "lab" in table.stdout
        listed = json.loads(omerta("network", "list", "--json", "--state-dir", str(b.state_dir)).stdout)
        assert [(n["name"], n["alive"]) for n in listed] == [("lab", 1)]
        bad = omerta("network", "join", link.stdout.strip()[:-6], "--state-dir", str(b.state_dir))
        assert bad.returncode != 0 and bad.stderr.startswith("Error: invite") and bad.stderr.count("\n") == 1
    finally:
        cluster.close()
