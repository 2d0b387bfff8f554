"""Real ``omerta node`` processes with the udp transport and the omt ledger, for the multi-node tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from omerta_transport_udp.testing import UdpNode

#: The witnesses of the seven-node tests (with a consumer and a provider).
WITNESSES = ["w1", "w2", "w3", "w4", "w5"]


class LedgerNode(UdpNode):
    """One ``omerta node --plugins udp,omt`` process on loopback, configured by a TOML file of its own."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir, "udp,omt")
        self._id: str | None = None

    @property
    def peer_id(self) -> str:
        """The node's id, also before its first start (``omerta id`` creates the identity; asked once)."""
        if self._id is None:
            result = subprocess.run(
                [sys.executable, "-m", "omerta_core", "id", "--state-dir", str(self.state_dir)],
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
            )
            self._id = result.stdout.strip()
        return self._id

    def start_with(self, config: dict[str, Any]) -> LedgerNode:
        """Start the node with ``config`` and wait until it answers."""
        return self.spawn_with(config).wait_ready()

    def spawn_with(self, config: dict[str, Any]) -> LedgerNode:
        """Start the node with ``config`` and return at once (``wait_ready`` before calling it)."""
        lines = ["[plugins.udp]", 'host = "127.0.0.1"', "port = 0"]
        lines += [f"peers = {json.dumps(config.get('peers', []))}", "[plugins.omt]"]
        lines += [f"ledger_mint_authorities = {json.dumps(config.get('authorities', []))}"]
        lines += [f"ledger_sync_interval_s = {config.get('sync_interval_s', 0)}"]
        lines += [f"ledger_age_maturity_days = {config.get('age_maturity_days', 90.0)}"]
        if "health_interval_s" in config:
            lines += [f"ledger_health_interval_s = {config['health_interval_s']}"]
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("\n".join(lines) + "\n")
        self.plugins = config.get("plugins", "udp,omt")
        args: list[str] = []
        for endpoint in config.get("bootstrap", []):
            args += ["--bootstrap", endpoint]
        return self.spawn(*config.get("sets", []), args=args)

    def address(self) -> str:
        return f"{self.peer_id}@127.0.0.1:{self.port}"


def start_cluster(nodes: dict[str, LedgerNode], config: dict[str, Any]) -> dict[str, str]:
    """Start ``w1`` with ``config``, the others bootstrapping from it, and give every node every endpoint.

    Returns the peer ids by name.
    """
    ids = {name: node.peer_id for name, node in nodes.items()}
    nodes["w1"].start_with(config)
    others = [n for n in nodes if n != "w1"]
    for name in others:  # the others start side by side: a node takes seconds to start on a busy machine
        nodes[name].spawn_with({**config, "peers": [nodes["w1"].address()]})
    for name in others:
        nodes[name].wait_ready()
    for name, node in nodes.items():
        for other, other_node in nodes.items():
            if other != name:
                node.call("udp.add_peer", {"peer": ids[other], "endpoints": [f"127.0.0.1:{other_node.port}"]})
    return ids


def sync_everyone(nodes: dict[str, LedgerNode], ids: dict[str, str], rounds: int = 1) -> None:
    """Every node syncs every other node's chain, ``rounds`` times; any failure fails the test."""
    for _ in range(rounds):
        for name, node in nodes.items():
            others = [ids[o] for o in nodes if o != name]
            results = node.call("ledger.sync", {"peers": others, "timeout": 30})
            failed = {peer[:12]: r["error"] for peer, r in results.items() if "error" in r}
            assert not failed, f"{name} could not sync: {failed}"
