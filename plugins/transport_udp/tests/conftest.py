"""Fixtures shared by the udp transport tests: sans-IO pairs and a simple packet pump."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
from omerta_transport_udp.core import Delivered, Settings, TransportCore
from omerta_transport_udp.testing import UdpNode

from omerta_core.interfaces.common import Endpoint

ENDPOINT_A = Endpoint("198.18.0.1", 7700)
ENDPOINT_B = Endpoint("198.18.0.2", 7700)


class Pair:
    """Two cores joined by an in-memory network the test controls (for unit tests of the pure core)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.key_a = nacl.signing.SigningKey.generate()
        self.key_b = nacl.signing.SigningKey.generate()
        self.a = TransportCore(self.key_a, settings)
        self.b = TransportCore(self.key_b, settings)
        self.addr = {id(self.a): ENDPOINT_A, id(self.b): ENDPOINT_B}
        self.now = 0.0
        self.captured: list[tuple[str, bytes]] = []
        for core in (self.a, self.b):
            core.register_channel("chat")
            core.register_channel("ctl")

    def other(self, core: TransportCore) -> TransportCore:
        return self.b if core is self.a else self.a

    def pump(self, rounds: int = 20, mangle: Callable[[bytes], list[bytes]] | None = None) -> None:
        """Deliver every output to the other core until quiet (``mangle`` may drop, copy or alter)."""
        for _ in range(rounds):
            moved = False
            for core in (self.a, self.b):
                core.flush(self.now)
                outputs, core.outputs = core.outputs, []
                for _route, packet in outputs:
                    moved = True
                    self.captured.append(("a" if core is self.a else "b", packet))
                    for item in mangle(packet) if mangle else [packet]:
                        self.other(core).receive(item, self.addr[id(core)], self.now)
            if not moved:
                return

    def delivered(self, core: TransportCore) -> list[Delivered]:
        events, core.events = core.events, []
        return [e for e in events if isinstance(e, Delivered)]

    def connect(self) -> None:
        self.a.add_peer(self.b.peer_id, [ENDPOINT_B], self.now)
        self.pump()


@pytest.fixture
def pair() -> Pair:
    return Pair()


@pytest.fixture
def make_pair() -> Callable[..., Pair]:
    return Pair


# -- real node processes and network namespaces ----------------------------------


def collect(node: UdpNode, channel: str, want: int, timeout: float = 120.0) -> list[bytes]:
    """Poll ``node``'s mailbox until ``want`` messages arrived (or time runs out); return them all."""
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += node.received(channel)
        time.sleep(0.05)
    time.sleep(0.3)
    return got + node.received(channel)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Callable[..., UdpNode]]:
    made: list[UdpNode] = []

    def make(name: str, netns: str | None = None) -> UdpNode:
        node = UdpNode(tmp_path / name, netns=netns, log_level="debug")
        made.append(node)
        return node

    try:
        yield make
    finally:
        for node in made:
            node.stop()


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=60)


class Lab:
    """Two network namespaces joined by a veth pair: 198.18.1.1/24 (a) and 198.18.1.2/24 (b)."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.a = f"omudp{tag}a"
        self.b = f"omudp{tag}b"
        self.dev_a = f"ou{tag}a"
        self.dev_b = f"ou{tag}b"

    def create(self) -> None:
        run("ip", "netns", "add", self.a)
        run("ip", "netns", "add", self.b)
        run("ip", "link", "add", self.dev_a, "netns", self.a, "type", "veth", "peer", self.dev_b, "netns", self.b)
        for ns, dev, address in ((self.a, self.dev_a, "198.18.1.1/24"), (self.b, self.dev_b, "198.18.1.2/24")):
            run("ip", "-n", ns, "addr", "add", address, "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    def destroy(self) -> None:
        for ns in (self.a, self.b):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True, timeout=60)


@pytest.fixture
def lab() -> Iterator[Lab]:
    namespaces = Lab()
    try:
        namespaces.create()
        yield namespaces
    finally:
        namespaces.destroy()


@pytest.fixture(name="collect")
def collect_fixture() -> Callable[..., list[bytes]]:
    return collect


@pytest.fixture(name="run")
def run_fixture() -> Callable[..., None]:
    return run


class ImpairedLink:
    """A UDP forwarder that loses, duplicates, reorders and delays packets in both directions like `tc netem`.

    Used where the kernel has no sch_netem: the client talks to :attr:`front`, the
    forwarder talks to ``target`` from its own back socket.
    """

    def __init__(
        self, target: tuple[str, int], *, loss: float, duplicate: float, reorder: float, delay_s: float
    ) -> None:
        import random  # noqa: PLC0415
        import socket  # noqa: PLC0415
        import threading  # noqa: PLC0415

        self.random = random.Random(7)
        self.target = target
        self.loss, self.duplicate, self.reorder, self.delay_s = loss, duplicate, reorder, delay_s
        self.front_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front_sock.bind(("127.0.0.1", 0))
        self.back_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back_sock.bind(("127.0.0.1", 0))
        self.front = self.front_sock.getsockname()
        self.client: tuple[str, int] | None = None
        self.forwarded = 0
        self.captured: list[bytes] = []
        self._queue: list[tuple[float, int, Any, bytes, tuple[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _schedule(self, sock: Any, data: bytes, addr: tuple[str, int]) -> None:
        import heapq  # noqa: PLC0415

        self.captured.append(data)
        if self.random.random() < self.loss:
            return
        copies = 2 if self.random.random() < self.duplicate else 1
        for _ in range(copies):
            delay = 0.0 if self.random.random() < self.reorder else self.delay_s
            self.forwarded += 1
            heapq.heappush(self._queue, (time.monotonic() + delay, self.forwarded, sock, data, addr))

    def _run(self) -> None:
        import heapq  # noqa: PLC0415
        import select  # noqa: PLC0415

        while not self._stop.is_set():
            now = time.monotonic()
            while self._queue and self._queue[0][0] <= now:
                _, _, sock, data, addr = heapq.heappop(self._queue)
                sock.sendto(data, addr)
            timeout = min(0.05, max(0.0, self._queue[0][0] - now)) if self._queue else 0.05
            readable, _, _ = select.select([self.front_sock, self.back_sock], [], [], timeout)
            for sock in readable:
                data, addr = sock.recvfrom(65535)
                if sock is self.front_sock:
                    self.client = addr
                    self._schedule(self.back_sock, data, self.target)
                elif self.client is not None:
                    self._schedule(self.front_sock, data, self.client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.front_sock.close()
        self.back_sock.close()


@pytest.fixture
def impair() -> Iterator[Callable[..., ImpairedLink]]:
    links: list[ImpairedLink] = []

    def make(target: tuple[str, int], **impairments: float) -> ImpairedLink:
        link = ImpairedLink(target, **impairments)  # type: ignore[arg-type]
        links.append(link)
        return link

    try:
        yield make
    finally:
        for link in links:
            link.close()
