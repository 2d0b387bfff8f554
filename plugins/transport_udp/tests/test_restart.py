"""Restarting the transport alone: its sockets close and reopen (same port, or a new one), its sessions go on."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import nacl.signing
import pytest
from omerta_transport_udp.errors import NotStartedError
from omerta_transport_udp.service import UdpTransport
from omerta_transport_udp.testing import wait_for

from omerta_core.interfaces.common import Endpoint
from omerta_core.interfaces.transport import RestartableTransport, TransportRestart

pytestmark = [pytest.mark.timeout(300)]

MESSAGES = 300


async def pair() -> tuple[UdpTransport, UdpTransport, list[bytes]]:
    """Two connected transports on IPv4 loopback; b keeps what arrives on channel ``x``."""
    a, b = (UdpTransport(nacl.signing.SigningKey.generate(), hosts=["127.0.0.1"], port=0) for _ in range(2))
    await a.start()
    await b.start()
    got: list[bytes] = []
    b.on_message("x", lambda peer, data: got.append(data))
    a.add_peer(b.peer_id, b.local_endpoints())
    await a.send(b.peer_id, "x", b"hello")
    await wait_for(lambda: got == [b"hello"])
    return a, b, got


async def restart_during_a_stream(restarted: str, *, new_port: bool) -> None:
    """a streams reliable messages to b while ``restarted`` (a or b) restarts; every one arrives, in order,
    on the session that was there before (no peer restart, no new incarnation)."""
    a, b, got = await pair()
    node = a if restarted == "a" else b
    seen: list[TransportRestart] = []
    node.on_restart(seen.append)
    try:
        before = node.local_endpoints()
        for index in range(MESSAGES // 2):
            await a.send(b.peer_id, "x", b"%d" % index)
        result = await node.restart(new_port=new_port)
        for index in range(MESSAGES // 2, MESSAGES):
            await a.send(b.peer_id, "x", b"%d" % index)
        await wait_for(lambda: len(got) == MESSAGES + 1)
        assert got == [b"hello"] + [b"%d" % index for index in range(MESSAGES)]
        assert seen == [result] and result.before == tuple(before) and result.after == tuple(node.local_endpoints())
        assert result.moved is new_port and result.resumed == 1
        # the other side follows the restarted one to where it listens now, on the same session
        other = b if node is a else a
        await wait_for(lambda: other.endpoint_of(node.peer_id) == node.local_endpoints()[0])
        assert other.core.counters["peer_restarts"] == 0 and node.core.counters["restarts"] == 1
    finally:
        await a.stop()
        await b.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize("restarted", ["a", "b"])
@pytest.mark.parametrize("new_port", [False, True], ids=["same-port", "new-port"])
async def test_a_stream_survives_a_restart_of_either_side(restarted: str, new_port: bool) -> None:
    await restart_during_a_stream(restarted, new_port=new_port)


@pytest.mark.asyncio
async def test_a_port_taken_while_restarting_moves_the_transport_to_a_new_one() -> None:
    a, b, got = await pair()
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert isinstance(b, RestartableTransport)
        old = b.local_endpoints()[0]
        b._close_sockets()  # as a laptop's stack does in its sleep: the socket is gone, another program takes the port
        squatter.bind(("127.0.0.1", old.port))
        result = await b.restart()
        assert result.moved and result.after[0] != old and result.after[0].host == "127.0.0.1"
        await a.send(b.peer_id, "x", b"after")
        await wait_for(lambda: got[-1:] == [b"after"])
    finally:
        squatter.close()
        await a.stop()
        await b.stop()


@pytest.mark.asyncio
async def test_a_stopped_transport_does_not_restart() -> None:
    transport = UdpTransport(nacl.signing.SigningKey.generate(), hosts=["127.0.0.1"], port=0)
    with pytest.raises(NotStartedError):
        await transport.restart()


def test_omerta_transport_restart_on_a_running_node(nodes, collect) -> None:
    """The kernel's command and control method restart a real node's transport; messages keep flowing."""
    local = ["plugins.udp.port=0", 'plugins.udp.host="127.0.0.1"']
    a = nodes("a").start(*local)
    b = nodes("b").start(*local, f'plugins.udp.peers=["{a.peer_id}@127.0.0.1:{a.port}"]')
    b.call("udp.subscribe", {"channel": "t"})
    a.call("udp.send", {"peer": b.peer_id, "channel": "t", "text": "before"})
    assert collect(b, "t", 1) == [b"before"]

    def omerta(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", "from omerta_core.cli import run; run()", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    old_port = b.port
    done = omerta("transport", "restart", "--new-port", "--json", "--state-dir", str(b.state_dir))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["before"] == [f"127.0.0.1:{old_port}"] and result["moved"] and result["resumed"] == 1
    new_port = Endpoint.parse(result["after"][0]).port
    assert new_port != old_port
    a.call("udp.send", {"peer": b.peer_id, "channel": "t", "text": "after"})
    assert collect(b, "t", 1) == [b"after"]
    plain = omerta("transport", "restart", "--state-dir", str(b.state_dir))
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith(f"transport restarted on the same port: listening on 127.0.0.1:{new_port};")
    status = a.call("status")["services"]["transport"]["udp"]
    (row,) = [p for p in status["peers"] if p["peer"] == b.peer_id]
    assert row["route"] == f"127.0.0.1:{new_port}" and status["counters"].get("peer_restarts", 0) == 0
