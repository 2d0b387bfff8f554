"""The newcomer fixes against real nodes running the built-in plugins.

A command for a plugin the node did not load; the readable ``omerta status``;
plain ``omerta node`` on Linux leaving the macOS plugin out without a warning.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from omerta_core.testing import NodeProcess

pytestmark = pytest.mark.timeout(300)


def omerta(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMERTA_")}
    return subprocess.run(
        [sys.executable, "-m", "omerta_core", *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def test_relay_commands_on_a_node_without_relay_say_how_to_restart(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n", "udp").start("plugins.udp.port=0")
    try:
        commands = (["relay", "status"], ["relay", "peers"], ["vm", "hosted"], ["vm", "list"], ["ledger", "sync"])
        for command in commands:
            result = omerta(*command, "--state-dir", str(node.state_dir))
            assert result.returncode == 1, command
            (line,) = result.stderr.strip().splitlines()
            plugin = {"relay": "relay", "hosted": "kvm", "list": "rental", "sync": "omt"}.get(command[1], command[0])
            assert f"does not run plugin '{plugin}' (it runs udp)" in line, line
            assert f"`omerta node --plugins udp,{plugin}`" in line, line
            assert "no method" not in line and "." + command[1] not in line
        status = omerta("status", "--state-dir", str(node.state_dir))
    finally:
        node.stop()
    assert status.returncode == 0
    assert "{" not in status.stdout
    assert "transport: udp" in status.stdout
    assert "  counters: " in status.stdout


def test_plain_node_on_linux_leaves_the_macos_plugin_out_quietly(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n", log_level="info")
    node.start("plugins.udp.port=0", 'plugins.udp.host="127.0.0.1"')
    try:
        running = node.status()["plugins"]
    finally:
        node.stop()
    log = node.log_tail(200_000)
    assert "macos" not in running
    assert "udp" in running
    assert "macos" not in log
