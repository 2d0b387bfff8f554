"""A cluster of real ``omerta node --plugins udp,gossip`` processes on loopback.

Used by the acceptance tests and ``benchmarks/gossip.py``: starts nodes (each
with its own state directory, UDP on 127.0.0.1 and an ephemeral port), asks
them for their view over the control socket, kills and restarts them, and
stops every process it started. Touches processes it starts and the
directory it is given.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from omerta_core.testing import NodeProcess


class ClusterNode(NodeProcess):
    """One node of the cluster; ``endpoint`` is its UDP endpoint once it has answered."""

    def __init__(self, name: str, state_dir: Path, log_path: Path) -> None:
        super().__init__(state_dir, "udp,gossip", log_path=log_path, log_level="warning")
        self.name = name
        self.endpoint = ""


class LocalCluster:
    """Real node processes, all stopped by :meth:`close`."""

    def __init__(self, root: Path, *, probe_interval_s: float = 1.0, sets: tuple[str, ...] = ()) -> None:
        self.root = root
        self.sets = (
            "plugins.udp.host=127.0.0.1",
            "plugins.udp.port=0",
            f"plugins.gossip.probe_interval_s={probe_interval_s}",
            *sets,
        )
        self.probe_interval_s = probe_interval_s
        self.nodes: dict[str, ClusterNode] = {}

    def spawn(self, name: str, *, bootstrap: tuple[str, ...] = ()) -> ClusterNode:
        """Start a node (returns at once; see :meth:`wait_ready`)."""
        node = self.nodes.get(name) or ClusterNode(name, self.root / name, self.root / f"{name}.log")
        args: list[str] = []
        for entry in bootstrap:
            args += ["--bootstrap", entry]
        self.nodes[name] = node.spawn(*self.sets, args=args)
        return node

    def wait_ready(self, names: list[str] | None = None) -> None:
        """Wait until each node answers on its control socket; learn its peer id and endpoint."""
        for name in names or list(self.nodes):
            node = self.nodes[name].wait_ready()
            node.endpoint = node.status()["services"]["transport"]["udp"]["endpoints"][0]

    def call(self, name: str, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.nodes[name].call(method, params, timeout=30)

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
        node = self.nodes[name]
        if sig == signal.SIGKILL:
            node.kill9()
        else:
            node.stop()
        node.process = None
