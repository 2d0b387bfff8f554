"""Real `omerta node --plugins udp` processes: status, kill -9 and restart on a new port."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.timeout(600)

LOCAL = ["plugins.udp.port=0", 'plugins.udp.host="127.0.0.1"']


def test_kill_9_and_restart_on_new_port_resumes(nodes, collect) -> None:
    a = nodes("a").start(*LOCAL)
    a_id = a.peer_id
    b = nodes("b").start(*LOCAL, f'plugins.udp.peers=["{a_id}@127.0.0.1:{a.port}"]')
    b_id, old_port = b.peer_id, b.port
    b.call("udp.subscribe", {"channel": "t"})
    assert a.call("udp.send", {"peer": b_id, "channel": "t", "text": "before-", "count": 100}) == {"sent": 100}
    assert collect(b, "t", 100) == [f"before-{i}".encode() for i in range(100)]

    b.kill9()
    # the application on a keeps sending while b is dead: no error
    assert a.call("udp.send", {"peer": b_id, "channel": "t", "text": "during-", "count": 20}) == {"sent": 20}

    b.start(*LOCAL, f'plugins.udp.peers=["{a_id}@127.0.0.1:{a.port}"]')
    assert b.port != old_port and b.peer_id == b_id
    b.call("udp.subscribe", {"channel": "t"})
    sent_at = time.monotonic()
    a.call("udp.send", {"peer": b_id, "channel": "t", "text": "after"})
    got = collect(b, "t", 21)
    elapsed = time.monotonic() - sent_at
    assert got == [f"during-{i}".encode() for i in range(20)] + [b"after"]
    print(f"restart: data flowing again {elapsed:.3f} s after the first send")
    status_a = a.call("status")["services"]["transport"]["udp"]
    assert status_a["counters"]["peer_restarts"] == 1
    (row,) = [p for p in status_a["peers"] if p["peer"] == b_id]
    assert row["route"] == f"127.0.0.1:{b.port}" and row["state"] == "connected"
    # the restarted node needed a single handshake: one round trip
    assert b.call("status")["services"]["transport"]["udp"]["counters"]["handshakes_initiated"] == 1


def test_status_shows_counters_and_identify_works(nodes) -> None:
    a = nodes("a").start(*LOCAL)
    b = nodes("b").start(*LOCAL)
    assert a.call("udp.identify", {"endpoint": f"127.0.0.1:{b.port}"}) == {"peer": b.peer_id}
    a.call("udp.add_peer", {"peer": b.peer_id, "endpoints": [f"127.0.0.1:{b.port}"]})
    b.call("udp.subscribe", {"channel": "d"})
    a.call("udp.send", {"peer": b.peer_id, "channel": "d", "text": "x", "delivery": "datagram"})
    deadline = time.monotonic() + 30
    while not b.received("d") and time.monotonic() < deadline:
        time.sleep(0.05)
    counters = a.call("status")["services"]["transport"]["udp"]["counters"]
    assert counters["sent_packets"] >= 2 and counters["handshakes_completed"] == 1


def test_cli_lists_peers_and_identifies(nodes) -> None:
    import json  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    a = nodes("a").start(*LOCAL)
    b = nodes("b").start(*LOCAL, f'plugins.udp.peers=["{a.peer_id}@127.0.0.1:{a.port}"]')

    def omerta(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", "from omerta_core.cli import run; run()", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = json.loads(omerta("udp", "peers", "--state-dir", str(b.state_dir), "--json").stdout)
        if rows and rows[0]["state"] == "connected":
            break
        time.sleep(0.1)
    assert rows[0]["peer"] == a.peer_id and rows[0]["route"] == f"127.0.0.1:{a.port}"
    table = omerta("udp", "peers", "--state-dir", str(b.state_dir)).stdout
    assert table.splitlines()[0].split()[:2] == ["PEER", "STATE"] and "connected" in table
    assert omerta("udp", "identify", f"127.0.0.1:{a.port}", "--state-dir", str(b.state_dir)).stdout.strip() == a.peer_id
    failed = omerta("udp", "identify", "127.0.0.1:9", "--state-dir", str(b.state_dir))
    errors = [line for line in failed.stderr.splitlines() if line.startswith("Error: ")]  # the rest is progress
    assert failed.returncode != 0 and errors == ["Error: no omerta node answered at 127.0.0.1:9"]
