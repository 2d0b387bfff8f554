"""Virtual time for sans-IO protocol cores: a clock, a seeded random source, an in-memory datagram network.

A :class:`Simulation` owns a :class:`VirtualClock`, a seeded
:class:`~omerta_core.randomness.RandomSource`, a :class:`DatagramNetwork` that delivers
datagrams between endpoints after a latency (with jitter) and loses a fraction of them, and the
participants it drives: anything with ``next_deadline()`` and ``on_timer(now)`` (a node made of
cores). Running jumps the clock straight to the next delivery or deadline, so minutes of protocol
time take milliseconds, with no sockets and no sleeping. Every delivery and whatever the
participants :meth:`Simulation.record` goes into an event log; the same seed gives the same log,
byte for byte. Touches nothing.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from omerta_core.interfaces.common import Endpoint
from omerta_core.randomness import RandomSource, child_random, seeded_random

#: Steps at one instant before a run is declared stuck (a deadline that stays due is a core's bug).
MAX_STEPS_AT_ONE_INSTANT = 100_000

#: Called with a datagram and the endpoint it came from.
DatagramReceiver = Callable[[bytes, Endpoint], None]


class SimulationStuckError(RuntimeError):
    """The simulation kept finding work due at one instant: some core's deadline never moves on."""


class VirtualClock:
    """Seconds of virtual time; only the simulation moves it, and only forward."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def time_ns(self) -> int:
        """The time in integer nanoseconds (for cores that stamp handshakes with a wall clock)."""
        return round(self.now * 1_000_000_000)

    def time_ms(self) -> int:
        return round(self.now * 1000)


class Participant(Protocol):
    """What the simulation drives besides datagram deliveries: a node's timers."""

    def next_deadline(self) -> float:
        """When this participant next has timed work to do (``inf``: none)."""

    def on_timer(self, now: float) -> None:
        """Do the work due at ``now``."""


@dataclass(order=True)
class _Scheduled:
    at: float
    seq: int
    callback: Callable[[], None] = field(compare=False)


class DatagramNetwork:
    """Endpoints exchanging datagrams after ``latency`` seconds (± ``jitter`` of it), losing ``loss`` of them."""

    def __init__(
        self, sim: Simulation, rng: RandomSource, *, latency: float = 0.01, jitter: float = 0.5, loss: float = 0.0
    ) -> None:
        self.sim = sim
        self.rng = rng
        self.latency = latency
        self.jitter = jitter
        self.loss = loss
        self.sent = 0
        self.lost = 0
        self.delivered = 0
        self._receivers: dict[Endpoint, DatagramReceiver] = {}

    def attach(self, endpoint: Endpoint, receiver: DatagramReceiver) -> None:
        self._receivers[endpoint] = receiver

    def detach(self, endpoint: Endpoint) -> None:
        """Take ``endpoint`` off the network: datagrams to it are lost from now on (a crash)."""
        self._receivers.pop(endpoint, None)

    def send(self, source: Endpoint, destination: Endpoint, data: bytes) -> None:
        self.sent += 1
        if self.loss and self.rng.random() < self.loss:
            self.lost += 1
            return
        delay = self.latency * (1.0 + self.jitter * (2.0 * self.rng.random() - 1.0))
        self.sim.call_at(self.sim.clock.now + delay, lambda: self._deliver(source, destination, data))

    def _deliver(self, source: Endpoint, destination: Endpoint, data: bytes) -> None:
        receiver = self._receivers.get(destination)
        if receiver is None:
            self.lost += 1
            return
        self.delivered += 1
        self.sim.record(f"datagram {source} -> {destination} {len(data)} {hashlib.sha256(data).hexdigest()[:16]}")
        receiver(data, source)


class Simulation:
    """A virtual clock, a seeded random source, a datagram network and the participants they drive."""

    def __init__(
        self, seed: int, *, start: float = 0.0, latency: float = 0.01, jitter: float = 0.5, loss: float = 0.0
    ) -> None:
        self.seed = seed
        self.clock = VirtualClock(start)
        self.rng = seeded_random(seed)
        self.network = DatagramNetwork(
            self, child_random(self.rng, "network"), latency=latency, jitter=jitter, loss=loss
        )
        self.participants: list[Participant] = []
        self.events: list[str] = []
        self._queue: list[_Scheduled] = []
        self._seq = 0

    def random_source(self, label: str) -> RandomSource:
        """A source of its own for one component, derived from the seed (draw them in a fixed order)."""
        return child_random(self.rng, label)

    def add(self, participant: Participant) -> None:
        self.participants.append(participant)

    def call_at(self, at: float, callback: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Scheduled(max(at, self.clock.now), self._seq, callback))

    def record(self, line: str) -> None:
        """Add ``line`` to the event log, stamped with the virtual time."""
        self.events.append(f"{self.clock.now:.6f} {line}")

    def event_log(self) -> bytes:
        return "\n".join(self.events).encode()

    # -- running -----------------------------------------------------------------------------

    def next_time(self) -> float:
        queued = self._queue[0].at if self._queue else float("inf")
        deadline = min((p.next_deadline() for p in self.participants), default=float("inf"))
        return max(min(queued, deadline), self.clock.now)

    def step(self, until: float = float("inf")) -> bool:
        """Jump to the next delivery or deadline (not beyond ``until``) and run it; False when none is left."""
        at = self.next_time()
        if at == float("inf") or at > until:
            return False
        self.clock.now = at
        while self._queue and self._queue[0].at <= at:
            heapq.heappop(self._queue).callback()
        for participant in self.participants:
            if participant.next_deadline() <= at:
                participant.on_timer(at)
        return True

    def run_for(self, duration: float) -> None:
        """Run ``duration`` seconds of virtual time."""
        self.run_until(lambda: False, duration, fail=False)

    def run_until(self, condition: Callable[[], bool], limit: float, *, fail: bool = True) -> float:
        """Run until ``condition()`` holds; return the virtual seconds it took (raise after ``limit`` if ``fail``)."""
        start = self.clock.now
        end = start + limit
        last, same = self.clock.now, 0
        while not condition():
            if not self.step(end):
                self.clock.now = max(self.clock.now, end)
                if fail:
                    raise TimeoutError(f"condition not reached within {limit} s of virtual time")
                break
            same = same + 1 if self.clock.now == last else 0
            last = self.clock.now
            if same > MAX_STEPS_AT_ONE_INSTANT:
                raise SimulationStuckError(f"work stays due at t={self.clock.now:.6f}")
        return self.clock.now - start
