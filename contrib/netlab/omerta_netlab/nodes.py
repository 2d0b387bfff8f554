"""Real ``omerta node`` processes inside lab hosts, driven through their control sockets.

Each node runs ``python -m omerta_core.cli``-style inside a host's namespace
with its own state directory (and so its own identity and control socket,
which works across namespaces because it is a filesystem socket). Touches the
state directories it is given, the processes it starts (through
:meth:`omerta_netlab.lab.Lab.popen`) and their control sockets.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from omerta_core.control import client
from omerta_core.errors import ControlError
from omerta_netlab.lab import Host, Lab

#: A node on a loaded machine may take a while to import and bind.
START_TIMEOUT_S = 60.0
#: How often mailbox and status polls run.
POLL_INTERVAL_S = 0.05


class NodeStartError(RuntimeError):
    """A node process exited or never answered on its control socket."""


class NodeProcess:
    """One ``omerta node`` process on one lab host."""

    def __init__(self, lab: Lab, host: Host, state_dir: Path, plugins: str = "udp,relay") -> None:
        self.lab = lab
        self.host = host
        self.state_dir = state_dir
        self.plugins = plugins
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = state_dir.with_suffix(".log")
        self._peer_id: str | None = None

    def start(self, *sets: str) -> NodeProcess:
        """Start the node with ``--set`` overrides and wait until its control socket answers."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-c", "from omerta_core.cli import run; run()", "node", "--plugins", self.plugins]
        argv += ["--state-dir", str(self.state_dir)]
        for item in sets:
            argv += ["--set", item]
        config_file = self.state_dir.with_suffix(".toml")
        config_file.touch()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMERTA_")}
        env["OMERTA_CONFIG"] = str(config_file)
        with self.log_path.open("ab") as log:
            self.process = self.lab.popen(self.host, argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise NodeStartError(f"node on {self.host.name} exited: {self.log_path.read_text()[-2000:]}")
            try:
                self._peer_id = str(self.call("status")["peer_id"])
                return self
            except ControlError as exc:
                if time.monotonic() > deadline:
                    raise NodeStartError(f"node on {self.host.name} never answered: {exc}") from exc
                time.sleep(POLL_INTERVAL_S)

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60.0) -> Any:
        return client.call(self.state_dir, method, params, timeout=timeout)

    @property
    def peer_id(self) -> str:
        if self._peer_id is None:
            self._peer_id = str(self.call("status")["peer_id"])
        return self._peer_id

    @property
    def port(self) -> int:
        endpoint = self.call("status")["services"]["transport"]["udp"]["endpoints"][0]
        return int(endpoint.rsplit(":", 1)[1])

    def received(self, channel: str) -> list[bytes]:
        """Take every message kept in ``channel``'s mailbox (subscribe first with ``udp.subscribe``)."""
        out: list[bytes] = []
        while True:
            batch = self.call("udp.received", {"channel": channel, "max": 5000})["messages"]
            if not batch:
                return out
            out += [base64.b64decode(m["data_b64"]) for m in batch]

    def route_to(self, peer: str) -> str | None:
        """The transport's current route to ``peer`` (``HOST:PORT`` or ``via relay``), if any."""
        rows = self.call("udp.peers")["peers"]
        return next((row.get("route") for row in rows if row.get("peer") == peer), None)

    def relay_status(self) -> dict[str, Any]:
        return dict(self.call("relay.status"))

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        (self.state_dir / "control.sock").unlink(missing_ok=True)

    def stop(self) -> None:
        if self.process is not None:
            self.lab.stop_process(self.process)
