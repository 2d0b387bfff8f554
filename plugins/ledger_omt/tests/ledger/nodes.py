"""Real ``omerta node`` processes with the udp transport and the omt ledger, for the multi-node tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from omerta_core.control import client
from omerta_core.errors import ControlError

CLI = "from omerta_core.cli import run; run()"
NODE_START_TIMEOUT_S = 90.0


class LedgerNode:
    """One ``omerta node --plugins udp,omt`` process on loopback."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = state_dir.with_suffix(".log")
        self.config_path = state_dir.with_suffix(".toml")

    @property
    def peer_id(self) -> str:
        result = subprocess.run(
            [sys.executable, "-c", CLI, "id", "--state-dir", str(self.state_dir)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout.strip()

    def start(self, config: dict[str, Any]) -> LedgerNode:
        lines = ["[plugins.udp]", 'host = "127.0.0.1"', "port = 0"]
        lines += [f"peers = {json.dumps(config.get('peers', []))}", "[plugins.omt]"]
        lines += [f"ledger_mint_authorities = {json.dumps(config.get('authorities', []))}"]
        lines += [f"ledger_sync_interval_s = {config.get('sync_interval_s', 0)}"]
        lines += [f"ledger_age_maturity_days = {config.get('age_maturity_days', 90.0)}"]
        self.config_path.write_text("\n".join(lines) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMERTA_")}
        env["OMERTA_CONFIG"] = str(self.config_path)
        plugins = config.get("plugins", "udp,omt")
        command = [sys.executable, "-c", CLI, "node", "--plugins", plugins, "--state-dir", str(self.state_dir)]
        for endpoint in config.get("bootstrap", []):
            command += ["--bootstrap", endpoint]
        for item in config.get("sets", []):
            command += ["--set", item]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited early: {self.log_path.read_text()[-2000:]}")
            try:
                self.call("status")
                return self
            except ControlError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 120.0) -> Any:
        return client.call(self.state_dir, method, params, timeout=timeout)

    @property
    def port(self) -> int:
        endpoint = self.call("status")["services"]["transport"]["udp"]["endpoints"][0]
        return int(endpoint.rsplit(":", 1)[1])

    def address(self) -> str:
        return f"{self.peer_id}@127.0.0.1:{self.port}"

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        (self.state_dir / "control.sock").unlink(missing_ok=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
