"""A cluster of real ``omerta node --plugins udp,gossip`` processes on loopback.

Used by the acceptance tests and ``benchmarks/gossip.py``: starts nodes (each
with its own state directory, UDP on 127.0.0.1 and an ephemeral port), asks
them for their view over the control socket, kills and restarts them, and
stops every process it started. Touches processes it starts and the
directory it is given.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omerta_core.control import client
from omerta_core.errors import ControlError

#: How long a node may take to answer on its control socket after being started (the machine may be busy).
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0


@dataclass
class ClusterNode:
    name: str
    state_dir: Path
    process: subprocess.Popen[bytes] | None = None
    peer_id: str = ""
    endpoint: str = ""
    log_path: Path = field(default_factory=Path)


class LocalCluster:
    """Real node processes, all stopped by :meth:`close`."""

    def __init__(self, root: Path, *, probe_interval_s: float = 1.0, sets: tuple[str, ...] = ()) -> None:
        self.root = root
        self.sets = (f"plugins.gossip.probe_interval_s={probe_interval_s}", *sets)
        self.probe_interval_s = probe_interval_s
        self.nodes: dict[str, ClusterNode] = {}

    def spawn(self, name: str, *, bootstrap: tuple[str, ...] = ()) -> ClusterNode:
        """Start a node (returns at once; see :meth:`wait_ready`)."""
        node = self.nodes.get(name) or ClusterNode(name, self.root / name, log_path=self.root / f"{name}.log")
        node.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        command = [
            sys.executable,
            "-c",
            "from omerta_core.cli import run; run()",
            "node",
            "--plugins",
            "udp,gossip",
            "--state-dir",
            str(node.state_dir),
            "--set",
            "plugins.udp.host=127.0.0.1",
            "--set",
            "plugins.udp.port=0",
            "--log-level",
            "warning",
        ]
        for item in self.sets:
            command += ["--set", item]
        for entry in bootstrap:
            command += ["--bootstrap", entry]
        with node.log_path.open("ab") as log:
            node.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.nodes[name] = node
        return node

    def wait_ready(self, names: list[str] | None = None) -> None:
        """Wait until each node answers on its control socket; learn its peer id and endpoint."""
        deadline = time.monotonic() + START_TIMEOUT_S
        for name in names or list(self.nodes):
            node = self.nodes[name]
            while True:
                if node.process is not None and node.process.poll() is not None:
                    raise RuntimeError(f"node {name} exited: {node.log_path.read_text()[-2000:]}")
                try:
                    status = client.call(node.state_dir, "status", timeout=10)
                    break
                except ControlError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            node.peer_id = status["peer_id"]
            node.endpoint = status["services"]["transport"]["udp"]["endpoints"][0]

    def call(self, name: str, method: str, params: dict[str, Any] | None = None) -> Any:
        return client.call(self.nodes[name].state_dir, method, params, timeout=30)

    def gossip_status(self, name: str) -> dict[str, Any]:
        return dict(self.call(name, "status")["services"]["discovery"]["gossip"])

    def kill(self, name: str) -> None:
        """SIGKILL: the node has no chance to say goodbye or save its cache."""
        self._signal(name, signal.SIGKILL)

    def stop(self, name: str) -> None:
        """SIGTERM: a clean stop (the peer cache is saved)."""
        self._signal(name, signal.SIGTERM)

    def close(self) -> None:
        for name in list(self.nodes):
            self.kill(name)

    def _signal(self, name: str, sig: signal.Signals) -> None:
        process = self.nodes[name].process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.nodes[name].process = None
