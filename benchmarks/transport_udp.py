"""UDP transport speed on loopback: encrypted datagrams and reliable messages against raw asyncio UDP,
handshakes per second, handshake latency, and recovery after a kill -9 and restart on a new port.

Run with no arguments (``python benchmarks/transport_udp.py``); prints the headline
figures last, one per line as ``name: value``. The raw baseline is asyncio's own
UDP (``create_datagram_endpoint`` with a ``DatagramProtocol``, 4 MiB socket buffers)
moving the same payloads between two sockets in the same process; a second,
harder floor (raw sockets read in batches exactly as the transport reads them)
is reported too.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nacl.signing
from omerta_transport_udp.core import Settings
from omerta_transport_udp.service import (
    RECEIVE_BATCH,
    SO_RCVBUFFORCE,
    SO_SNDBUFFORCE,
    SOCKET_BUFFER_BYTES,
    UdpTransport,
)

from omerta_core.control import client
from omerta_core.errors import ControlError
from omerta_core.interfaces.common import Endpoint
from omerta_core.interfaces.transport import Delivery

PAYLOAD_BYTES = 1000
DATAGRAMS = 200_000
RELIABLE_MESSAGES = 100_000
#: Packets in flight at most: every variant is paced by its own receiver, so none loses packets
#: to buffer overflow and each figure is a sustainable, loss-free rate.
WINDOW = 256
HANDSHAKES = 500
LOCALHOST = "127.0.0.1"


async def _drain(condition, timeout: float = 10.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition() and time.perf_counter() < deadline:
        await asyncio.sleep(0.001)


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for forced, option in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, forced, SOCKET_BUFFER_BYTES)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
    sock.setblocking(False)
    sock.bind((LOCALHOST, 0))
    return sock


class _Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.count += 1
        self.bytes += len(data)


async def raw_asyncio(count: int) -> tuple[float, float, int]:
    """(packets/s, MB/s, received) for raw asyncio UDP: ``create_datagram_endpoint`` and a ``DatagramProtocol``.

    The sockets get the same 4 MiB buffers as the transport's, so neither side loses packets to overflow.
    """
    loop = asyncio.get_running_loop()
    sink = _Sink()
    receiver, _ = await loop.create_datagram_endpoint(lambda: sink, sock=_socket())
    sender, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=_socket())
    target = receiver.get_extra_info("sockname")
    payload = b"r" * PAYLOAD_BYTES
    start = time.perf_counter()
    for sent in range(count):
        while sent - sink.count >= WINDOW:
            await asyncio.sleep(0)
        sender.sendto(payload, target)
    await _drain(lambda: sink.count >= count)
    elapsed = time.perf_counter() - start
    sender.close()
    receiver.close()
    return sink.count / elapsed, sink.bytes / elapsed / 1e6, sink.count


async def raw_batched_sockets(count: int) -> tuple[float, float, int]:
    """(packets/s, MB/s, received) for raw UDP handled as the transport handles its sockets.

    Same buffers, batched reads from ``loop.add_reader`` and pacing as the transport,
    minus encryption, sessions and framing: a floor no Python protocol can reach.
    """
    loop = asyncio.get_running_loop()
    receiver, sender = _socket(), _socket()
    received = [0, 0]

    def readable() -> None:
        for _ in range(RECEIVE_BATCH):
            try:
                data, _addr = receiver.recvfrom(65535)
            except BlockingIOError:
                return
            received[0] += 1
            received[1] += len(data)

    loop.add_reader(receiver.fileno(), readable)
    target = receiver.getsockname()
    payload = b"r" * PAYLOAD_BYTES
    start = time.perf_counter()
    for sent in range(count):
        while sent - received[0] >= WINDOW:
            await asyncio.sleep(0)
        sender.sendto(payload, target)
    await _drain(lambda: received[0] >= count)
    elapsed = time.perf_counter() - start
    loop.remove_reader(receiver.fileno())
    receiver.close()
    sender.close()
    return received[0] / elapsed, received[1] / elapsed / 1e6, received[0]


async def _pair(settings: Settings | None = None) -> tuple[UdpTransport, UdpTransport]:
    a = UdpTransport(nacl.signing.SigningKey.generate(), hosts=[LOCALHOST], settings=settings)
    b = UdpTransport(nacl.signing.SigningKey.generate(), hosts=[LOCALHOST], settings=settings)
    await a.start()
    await b.start()
    return a, b


async def encrypted(count: int, delivery: Delivery) -> tuple[float, float, int]:
    """(messages/s, MB/s of payload, received) through the encrypted transport."""
    a, b = await _pair()
    received = [0, 0]

    def sink(peer: object, data: bytes) -> None:
        received[0] += 1
        received[1] += len(data)

    b.on_message("bench", sink)
    a.add_peer(b.peer_id, [Endpoint(LOCALHOST, b.local_endpoints()[0].port)])
    await _drain(lambda: a.core.counters["handshakes_completed"] == 1)
    payload = b"e" * PAYLOAD_BYTES
    start = time.perf_counter()
    for sent in range(count):
        while sent - received[0] >= WINDOW:
            await asyncio.sleep(0)
        await a.send(b.peer_id, "bench", payload, delivery=delivery)
    await _drain(lambda: received[0] >= count, timeout=60.0)
    elapsed = time.perf_counter() - start
    await a.stop()
    await b.stop()
    return received[0] / elapsed, received[1] / elapsed / 1e6, received[0]


async def handshakes(count: int) -> tuple[float, list[float]]:
    """(handshakes/s, latencies in s) for sequential full handshakes over loopback.

    The responder's flood defence is set out of reach here, so this measures the
    protocol's cost rather than the rate limit.
    """
    a, b = await _pair(Settings(under_load_per_s=10**9))
    a.add_peer(b.peer_id, [Endpoint(LOCALHOST, b.local_endpoints()[0].port)])
    await _drain(lambda: a.core.counters["handshakes_completed"] == 1)
    latencies = []
    start = time.perf_counter()
    for done in range(2, count + 2):
        began = time.perf_counter()
        a.reconnect(b.peer_id)
        while a.core.counters["handshakes_completed"] < done:
            await asyncio.sleep(0)
        latencies.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - start
    await a.stop()
    await b.stop()
    return count / elapsed, latencies


def _node(state_dir: Path, *sets: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from omerta_core.cli import run; run()", "node", "--plugins", "udp"]
    command += ["--state-dir", str(state_dir), "--set", "plugins.udp.port=0", "--set", 'plugins.udp.host="127.0.0.1"']
    for item in sets:
        command += ["--set", item]
    config = state_dir.with_suffix(".toml")
    config.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMERTA_")} | {"OMERTA_CONFIG": str(config)}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.call(state_dir, "status")
            return process
        except ControlError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.02)


def restart_resume_s() -> float:
    """Seconds from a send to its delivery after the receiving node was killed (-9) and restarted on a new port.

    Counted from the moment the restarted node answers its control socket, so the
    figure is the transport's recovery, not the Python start-up.
    """
    with tempfile.TemporaryDirectory() as tmp:
        a_dir, b_dir = Path(tmp) / "a", Path(tmp) / "b"
        a = _node(a_dir)
        b: subprocess.Popen[bytes] | None = None
        try:
            status = client.call(a_dir, "status")
            a_id, a_port = status["peer_id"], status["services"]["transport"]["udp"]["endpoints"][0].rsplit(":", 1)[1]
            peers = f'plugins.udp.peers=["{a_id}@127.0.0.1:{a_port}"]'
            b = _node(b_dir, peers)
            b_id = client.call(b_dir, "status")["peer_id"]
            client.call(a_dir, "udp.send", {"peer": b_id, "channel": "t", "text": "warm-up"})
            time.sleep(0.5)
            b.kill()
            b.wait()
            (b_dir / "control.sock").unlink(missing_ok=True)
            b = _node(b_dir, peers)
            client.call(b_dir, "udp.subscribe", {"channel": "t"})
            start = time.monotonic()
            client.call(a_dir, "udp.send", {"peer": b_id, "channel": "t", "text": "after restart"})
            while not client.call(b_dir, "udp.received", {"channel": "t", "count_only": True})["count"]:
                time.sleep(0.005)
            return time.monotonic() - start
        finally:
            for process in (a, b):
                if process is not None:
                    process.terminate()
                    process.wait()


async def main() -> None:
    raw_pps, raw_mbs, raw_got = await raw_asyncio(DATAGRAMS)
    print(f"raw asyncio udp: {raw_pps:,.0f} packets/s, {raw_mbs:.1f} MB/s ({raw_got}/{DATAGRAMS} received)")
    floor_pps, floor_mbs, floor_got = await raw_batched_sockets(DATAGRAMS)
    print(f"raw batched sockets: {floor_pps:,.0f} packets/s, {floor_mbs:.1f} MB/s ({floor_got}/{DATAGRAMS} received)")
    dg_pps, dg_mbs, dg_got = await encrypted(DATAGRAMS, Delivery.DATAGRAM)
    print(f"encrypted datagrams: {dg_pps:,.0f} packets/s, {dg_mbs:.1f} MB/s ({dg_got}/{DATAGRAMS} received)")
    rel_pps, rel_mbs, rel_got = await encrypted(RELIABLE_MESSAGES, Delivery.RELIABLE)
    print(f"reliable messages: {rel_pps:,.0f} messages/s, {rel_mbs:.1f} MB/s ({rel_got}/{RELIABLE_MESSAGES})")
    hs_rate, latencies = await handshakes(HANDSHAKES)
    p50 = statistics.median(latencies) * 1000
    print(f"handshakes: {hs_rate:,.0f}/s, latency p50 {p50:.2f} ms, max {max(latencies) * 1000:.2f} ms")
    resume = restart_resume_s()
    print(f"kill -9 and restart on a new port: data delivered {resume * 1000:.0f} ms after the next send")
    print(f"payload_bytes: {PAYLOAD_BYTES}")
    print(f"udp_restart_resume_s: {resume:.3f}")
    print(f"raw_asyncio_pps: {raw_pps:.0f}")
    print(f"udp_encrypted_datagram_pps: {dg_pps:.0f}")
    print(f"udp_encrypted_datagram_mb_s: {dg_mbs:.1f}")
    print(f"udp_reliable_msgs_per_s: {rel_pps:.0f}")
    print(f"udp_reliable_mb_s: {rel_mbs:.1f}")
    print(f"udp_handshakes_per_s: {hs_rate:.0f}")
    print(f"udp_handshake_latency_ms: {p50:.2f}")
    print(f"raw_batched_socket_pps: {floor_pps:.0f}")
    print(f"udp_encrypted_vs_raw_batched_socket_pps_ratio: {dg_pps / floor_pps:.2f}")
    print(f"udp_reliable_vs_raw_pps_ratio: {rel_pps / raw_pps:.2f}")
    print(f"udp_encrypted_vs_raw_pps_ratio: {dg_pps / raw_pps:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
