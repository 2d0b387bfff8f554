"""What a newcomer meets in the udp plugin: ping, --port, a port in use, identify progress, quiet rekeys."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omerta_transport_udp.core import Connected, Settings

from omerta_core.interfaces.transport import Delivery

pytestmark = pytest.mark.timeout(600)

LOCAL = ["plugins.udp.port=0", 'plugins.udp.host="127.0.0.1"']


def omerta(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMERTA_")}
    command = [sys.executable, "-m", "omerta_core", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_ping_by_prefix_reports_path_and_round_trips_and_delivers_a_test_message(nodes) -> None:
    a = nodes("a").start(*LOCAL)
    b = nodes("b").start(*LOCAL, f'plugins.udp.peers=["{a.peer_id}@127.0.0.1:{a.port}"]')
    result = omerta("ping", a.peer_id[:8], "--count", "2", "--message", "hello from b", "--state-dir", str(b.state_dir))
    assert result.returncode == 0, result.stderr
    first, second, third = result.stdout.splitlines()
    assert first == f"{a.peer_id}  direct (127.0.0.1:{a.port})"
    assert second.startswith("2 replies; round trip min ")
    assert "test message delivered: 'hello from b'" in third
    assert result.stderr.count(f"reply from {a.peer_id[:12]}") == 2  # progress, one plain line per reply
    deadline = time.monotonic() + 10
    while "hello from b" not in a.log_tail(100_000):
        assert time.monotonic() < deadline, "a never logged the test message"
        time.sleep(0.05)
    as_json = json.loads(omerta("ping", a.peer_id, "--count", "1", "--json", "--state-dir", str(b.state_dir)).stdout)
    assert as_json["peer"] == a.peer_id and as_json["relayed"] is False and len(as_json["rtt_ms"]) == 1
    unknown = omerta("ping", "zzzz", "--state-dir", str(b.state_dir))
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines()[-1] == "Error: no peer starts with 'zzzz'"


def test_port_flag_is_used_and_a_port_in_use_is_named(nodes, tmp_path: Path) -> None:
    port = free_udp_port()
    a = nodes("a").start('plugins.udp.host="127.0.0.1"', args=["--port", str(port)])
    assert a.port == port
    clash = omerta(
        "node", "--plugins", "udp", "--port", str(port), "--state-dir", str(tmp_path / "c"),
        "--set", 'plugins.udp.host="127.0.0.1"', "--log-level", "error",
    )  # fmt: skip
    assert clash.returncode == 1
    lines = clash.stderr.strip().splitlines()
    assert lines == [
        f"Error: UDP port {port} is already in use on 127.0.0.1 (another node?); "
        "choose another with `omerta node --port N`"
    ]


def test_identify_of_a_dead_port_shows_progress(nodes) -> None:
    a = nodes("a").start(*LOCAL)
    dead = free_udp_port()
    result = omerta("udp", "identify", f"127.0.0.1:{dead}", "--state-dir", str(a.state_dir))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[:-1] == [
        f"asking 127.0.0.1:{dead}: no answer from 127.0.0.1:{dead} yet (attempt 2 of 3)",
        f"asking 127.0.0.1:{dead}: no answer from 127.0.0.1:{dead} yet (attempt 3 of 3)",
    ]
    assert lines[-1] == f"Error: no omerta node answered at 127.0.0.1:{dead}"
    bad = omerta("udp", "identify", "foo", "--state-dir", str(a.state_dir))
    assert bad.stderr.strip() == "Error: expected HOST:PORT, got 'foo'"


def test_a_routine_rekey_is_marked_so_it_logs_at_debug(make_pair) -> None:
    pair = make_pair(Settings(rekey_after_s=10.0, reject_after_s=15.0))
    pair.connect()
    pair.a.events, pair.b.events = [], []  # the first session's events
    connected: list[Connected] = []
    for step in range(30):
        pair.now = float(step)
        pair.a.send(pair.b.peer_id, "ctl", b"x", Delivery.RELIABLE, pair.now)
        for core in (pair.a, pair.b):
            core.tick(pair.now)
        pair.pump()
        for core in (pair.a, pair.b):
            connected += [e for e in core.events if isinstance(e, Connected)]
            core.events = []
    assert len(connected) >= 3
    assert all(e.rekey and not e.restarted for e in connected)


def test_first_session_is_not_a_rekey(pair) -> None:
    pair.connect()
    events = [e for core in (pair.a, pair.b) for e in core.events if isinstance(e, Connected)]
    assert events and not any(e.rekey for e in events)


def test_a_node_logs_rekeys_at_debug_only(nodes) -> None:
    fast = ["plugins.udp.rekey_after_s=1.0", "plugins.udp.reject_after_s=3.0", "plugins.udp.keepalive_s=0.3"]
    a = nodes("a").start(*LOCAL, *fast)
    b = nodes("b").start(*LOCAL, *fast, f'plugins.udp.peers=["{a.peer_id}@127.0.0.1:{a.port}"]')
    deadline = time.monotonic() + 60
    while b.call("status")["services"]["transport"]["udp"]["counters"].get("rekeys", 0) < 2:
        assert time.monotonic() < deadline, "no rekeys"
        time.sleep(0.2)
    lines = [line for line in b.log_tail(500_000).splitlines() if "session established" in line]
    assert any("rekey=True" in line and "[debug" in line for line in lines), lines
    assert not any("rekey=True" in line and "[info" in line for line in lines), lines
