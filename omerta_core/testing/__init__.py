"""Real ``omerta node`` processes for tests, benchmarks and demos, driven over their control sockets.

What pytest's ``pytester`` is to pytest plugins: a plugin's tests start the same node a user
runs, with their own state directory, and talk to it as the CLI does. The process's
environment is isolated (no inherited ``OMERTA_*`` variables; an empty configuration file of its
own). Touches the state directory it is given, the process it starts and its control socket.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

from omerta_core.control import client
from omerta_core.errors import ControlError

#: A node on a busy two-core machine may take a while to import its plugins and bind.
START_TIMEOUT_S = 120.0
#: SIGTERM should stop a node within its 1.5 s shutdown budget; allow for a loaded machine.
STOP_TIMEOUT_S = 20.0
POLL_INTERVAL_S = 0.05
CONTROL_TIMEOUT_S = 60.0

#: Starts the node's argv; ``subprocess.Popen`` by default, or e.g. a lab's "run inside this namespace".
Launcher = Callable[..., "subprocess.Popen[bytes]"]


class NodeStartError(RuntimeError):
    """A node process exited before it answered, or never answered, on its control socket."""


class NodeProcess:
    """One ``omerta node`` process with its own state directory (``plugins=None``: every installed one)."""

    def __init__(
        self,
        state_dir: Path,
        plugins: str | None = None,
        *,
        log_path: Path | None = None,
        log_level: str | None = None,
        launcher: Launcher = subprocess.Popen,
        prefix: Sequence[str] = (),
    ) -> None:
        self.state_dir = state_dir
        self.plugins = plugins
        self.log_path = log_path or state_dir.with_suffix(".log")
        self.log_level = log_level
        self.config_path = state_dir.with_suffix(".toml")
        self.launcher = launcher
        self.prefix = list(prefix)
        self.process: subprocess.Popen[bytes] | None = None
        self._peer_id: str | None = None

    def argv(self, *sets: str, args: Sequence[str] = ()) -> list[str]:
        argv = [*self.prefix, sys.executable, "-m", "omerta_core", "node", "--state-dir", str(self.state_dir)]
        if self.plugins is not None:
            argv += ["--plugins", self.plugins]
        if self.log_level is not None:
            argv += ["--log-level", self.log_level]
        argv += args
        for item in sets:
            argv += ["--set", item]
        return argv

    def spawn(self, *sets: str, args: Sequence[str] = ()) -> Self:
        """Start the node with ``--set`` overrides and extra ``args``; return at once."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.config_path.exists():
            self.config_path.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMERTA_")}
        env.update(OMERTA_CONFIG=str(self.config_path), PYTHONUNBUFFERED="1")
        with self.log_path.open("ab") as log:
            self.process = self.launcher(self.argv(*sets, args=args), stdout=log, stderr=subprocess.STDOUT, env=env)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> Self:
        """Wait until the control socket answers ``status``."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise NodeStartError(f"node {self.state_dir.name} exited: {self.log_tail()}")
            try:
                self._peer_id = str(self.status()["peer_id"])
                return self
            except ControlError as exc:
                if time.monotonic() > deadline:
                    raise NodeStartError(f"node {self.state_dir.name} never answered: {exc}") from exc
            time.sleep(POLL_INTERVAL_S)

    def start(self, *sets: str, args: Sequence[str] = ()) -> Self:
        """Start the node and wait until it answers."""
        return self.spawn(*sets, args=args).wait_ready()

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = CONTROL_TIMEOUT_S) -> Any:
        return client.call(self.state_dir, method, params, timeout=timeout)

    def status(self) -> dict[str, Any]:
        return dict(self.call("status"))

    @property
    def peer_id(self) -> str:
        if self._peer_id is None:
            self._peer_id = str(self.status()["peer_id"])
        return self._peer_id

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """Kill the node without letting it clean up (a crash)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wait, SIGKILL if needed; return the exit code (``None`` if never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return self.process.returncode

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"
