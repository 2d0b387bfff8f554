"""With the kernel and every built-in plugin installed, the node sees all six."""

from __future__ import annotations

import json
import subprocess
import sys

BUILT_IN = {
    "udp": "omerta-transport-udp",
    "relay": "omerta-transport-relay",
    "kvm": "omerta-vm-kvm",
    "macos": "omerta-vm-macos",
    "omt": "omerta-ledger-omt",
    "gossip": "omerta-discovery-gossip",
}


def omerta(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omerta_core", *args], capture_output=True, text=True, check=False, timeout=120
    )


def test_plugins_json_lists_all_six_built_in_plugins() -> None:
    result = omerta("plugins", "--json")
    assert result.returncode == 0, result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert {name: listed[name]["distribution"] for name in BUILT_IN} == BUILT_IN
    for name in BUILT_IN:
        assert set(listed[name]) >= {"name", "distribution", "version", "hooks"}
    assert listed["macos"]["usable"] is False
    assert "darwin" in listed["macos"]["reason"]
