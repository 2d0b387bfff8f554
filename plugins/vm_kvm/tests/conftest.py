"""Fixtures: the test guest (built once per session), real `omerta node --plugins kvm` processes.

Every node's VMs are cleaned up in `finally`, also when a test fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from omerta_vm_kvm.cli import sweep_offline
from omerta_vm_kvm.guest_builder import build_test_guest

from omerta_core.control.client import call
from omerta_core.errors import ControlError

NODE_START_TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def images_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test guest's images directory; OMERTA_KVM_TEST_CACHE keeps it between sessions."""
    cache = os.environ.get("OMERTA_KVM_TEST_CACHE")
    cache_dir = Path(cache) if cache else tmp_path_factory.mktemp("omk-guest")
    return build_test_guest(cache_dir).parent


class NodeProcess:
    """One `omerta node --plugins kvm` subprocess with its own state directory."""

    def __init__(self, state_dir: Path, images_dir: Path, extra: tuple[str, ...] = ()) -> None:
        self.state_dir = state_dir
        self.images_dir = images_dir
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = state_dir.parent / f"{state_dir.name}-node.log"

    def start(self) -> float:
        """Start the node; return seconds from spawn until it answers on its control socket."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "control.sock").unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-c",
            "from omerta_core.cli import run; run()",
            "node",
            "--plugins",
            "kvm",
            "--state-dir",
            str(self.state_dir),
            "--log-json",
            "--set",
            f"plugins.kvm.images_dir={self.images_dir}",
            "--set",
            "node.shutdown_timeout_s=20",
            *self.extra,
        ]
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log)
        while time.monotonic() - started < NODE_START_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited: {self.log_path.read_text()[-3000:]}")
            try:
                call(self.state_dir, "status", timeout=5)
                return time.monotonic() - started
            except ControlError:
                time.sleep(0.1)
        raise RuntimeError("node did not start in time")

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 300) -> Any:
        return call(self.state_dir, method, params, timeout=timeout)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


@pytest.fixture
def node_factory(tmp_path: Path, images_dir: Path) -> Iterator[Any]:
    nodes: list[NodeProcess] = []

    def make(*extra: str, name: str = "state") -> NodeProcess:
        node = NodeProcess(tmp_path / name, images_dir, extra)
        nodes.append(node)
        return node

    try:
        yield make
    finally:
        for node in nodes:
            node.stop()
            sweep_offline(node.state_dir)


@pytest.fixture
def node(node_factory: Any) -> NodeProcess:
    started = node_factory("--set", "plugins.kvm.domain_type=qemu")
    started.start()
    return started
