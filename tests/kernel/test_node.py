"""The node runtime as a real process: start, status, lifecycle hooks, clean stop."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from omerta_core.control import client
from omerta_core.testing import NodeProcess, NodeStartError

from .conftest import lifecycle_plugin, run_cli, unusable_plugin

START_TIMEOUT_S = 30.0


@contextlib.contextmanager
def running_node(state: Path, *args: str) -> Iterator[Path]:
    """Run ``omerta node`` with ``state`` (and extra ``args``) until the block ends."""
    node = NodeProcess(state)
    try:
        node.spawn(args=args).wait_ready(START_TIMEOUT_S)
        yield state
    finally:
        node.stop()


def test_node_runs_selected_plugins_answers_status_and_stops_on_sigterm(plugin_site, tmp_path: Path) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    plugin_site("beta", lifecycle_plugin("beta"))
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "omerta_core", "node", "--plugins", "alpha", "--state-dir", str(state), "--log-json"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (state / "alpha-started").exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        status = client.call(state, "status")
        assert list(status["plugins"]) == ["alpha"]
        assert status["plugin_status"] == {"alpha": {"alive": True}}
        assert (state / "alpha-started").read_text() == "hello"
        assert not (state / "beta-started").exists()
        echo = client.call(state, "alpha.echo", {"text": "hi"})
        assert echo == {"echo": "hi", "peer": status["peer_id"]}

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=5)
        assert time.monotonic() - started < 2.0
    finally:
        if proc.poll() is None:
            proc.kill()
    logs = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 0
    assert '"event": "plugins loaded"' in logs
    assert '"alpha": "1.2.3"' in logs
    assert (state / "alpha-stopping").exists()
    assert not (state / "control.sock").exists()


def test_sigint_stops_the_node_too(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with running_node(state) as _:
        pid = client.call(state, "status")["pid"]
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 2.0
        while (state / "control.sock").exists():
            assert time.monotonic() < deadline, "node did not stop within 2 s"
            time.sleep(0.02)


def test_unknown_plugin_fails_with_its_name(tmp_path: Path) -> None:
    result = run_cli("node", "--plugins", "nosuch", "--state-dir", str(tmp_path))
    assert result.returncode != 0
    assert "Error: unknown plugin 'nosuch'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_env_selection_is_honoured(plugin_site, tmp_path: Path) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    result = run_cli("node", "--state-dir", str(tmp_path), env={"OMERTA_PLUGINS": "alpha,nosuch2"})
    assert result.returncode != 0
    assert "unknown plugin 'nosuch2'" in result.stderr
    assert "'alpha'" not in result.stderr.split("installed:")[0]


def test_plugin_for_another_platform_refuses_with_reason(plugin_site, tmp_path: Path) -> None:
    plugin_site("otheros", unusable_plugin("otheros"))
    result = run_cli("node", "--plugins", "otheros", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert "plugin 'otheros' cannot run here: otheros runs on plan9" in result.stderr
    assert "Traceback" not in result.stderr


def test_second_node_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with running_node(state):
        result = run_cli("node", "--state-dir", str(state))
        assert result.returncode == 1
        assert "another node is running" in result.stderr


def test_node_process_reports_a_node_that_cannot_start(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "state", "nosuch")
    with pytest.raises(NodeStartError, match="unknown plugin 'nosuch'"):
        node.start()


def test_node_process_survives_a_crash_and_restarts_with_the_same_identity(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "state").start()
    try:
        first = node.peer_id
        node.kill9()
        assert not node.running
        assert node.start().status()["peer_id"] == first
    finally:
        assert node.stop() == 0
