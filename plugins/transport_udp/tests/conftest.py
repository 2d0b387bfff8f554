"""Fixtures shared by the udp transport tests: sans-IO pairs and a simple packet pump."""

from __future__ import annotations

from collections.abc import Callable

import nacl.signing
import pytest
from omerta_transport_udp.core import Delivered, Settings, TransportCore

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
