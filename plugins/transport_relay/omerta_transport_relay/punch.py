"""Coordinated hole punching, sans-IO: rendezvous signalling and a bounded probing schedule.

Signalling rides on the transport's reliable channel :data:`CHANNEL`, which
for two NATed peers runs through a relay, so the relay is the rendezvous and
the offer/answer are end-to-end authenticated. The initiator sends an OFFER
with its candidate endpoints and NAT behaviour; the responder answers with its
own and both start probing every candidate of the other at once (an OFFER that
crosses our own OFFER counts as an answer). Probes are the transport's
authenticated packets (``PacketPathHost.probe``): when one gets through and is
answered, the transport moves the session to the direct endpoint. An attempt
that sees no direct path by its deadline fails; the relay stays in place and
a later attempt is scheduled with a growing back-off. Touches nothing.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from omerta_core.interfaces.common import Endpoint
from omerta_core.interfaces.nat import NatFiltering, NatMapping
from omerta_core.randomness import RandomSource, system_random
from omerta_transport_relay import wire

#: The transport channel carrying offers and answers.
CHANNEL = "relay.punch"
#: Probes go to every candidate this often while an attempt runs.
PROBE_INTERVAL_S = 0.25
#: An attempt that has not produced a direct path after this long falls back to the relay.
ATTEMPT_TIMEOUT_S = 6.0
#: A responder that never answers: the initiator gives up after this long.
ANSWER_TIMEOUT_S = 5.0
#: After our side sees a direct path, probe it this many more times: the other side may still route
#: through the relay until one of our packets reaches it directly (a symmetric NAT's new port, say).
CONFIRMATION_PROBES = 4
#: First retry after a failed attempt, doubled per failure up to RETRY_MAX_S.
RETRY_MIN_S = 2.0
RETRY_MAX_S = 300.0
#: Candidates carried in one message (local, reflexive per family, per relay).
MAX_CANDIDATES = 8

ATTEMPT_ID_LEN = 8
_MAPPINGS = list(NatMapping)
_FILTERINGS = list(NatFiltering)


class PunchError(ValueError):
    """A malformed punch signalling message."""


class Kind(enum.IntEnum):
    OFFER = 1
    ANSWER = 2


@dataclass(frozen=True)
class Signal:
    """An OFFER or ANSWER: the sender's candidates and NAT behaviour."""

    kind: Kind
    attempt: bytes
    mapping: NatMapping
    filtering: NatFiltering
    candidates: tuple[Endpoint, ...]

    def encode(self) -> bytes:
        head = struct.pack(
            "!B8sBBB",
            self.kind,
            self.attempt,
            _MAPPINGS.index(self.mapping),
            _FILTERINGS.index(self.filtering),
            len(self.candidates),
        )
        return head + b"".join(wire.encode_endpoint(c) for c in self.candidates)

    @classmethod
    def decode(cls, data: bytes) -> Signal:
        try:
            kind, attempt, mapping, filtering, count = struct.unpack_from("!B8sBBB", data)
            rest = data[struct.calcsize("!B8sBBB") :]
            candidates = []
            for _ in range(min(count, MAX_CANDIDATES)):
                endpoint, rest = wire.decode_endpoint(rest)
                candidates.append(endpoint)
            return cls(Kind(kind), attempt, _MAPPINGS[mapping], _FILTERINGS[filtering], tuple(candidates))
        except (struct.error, ValueError, IndexError) as exc:
            raise PunchError(f"malformed punch signal: {exc}") from exc


class State(enum.Enum):
    OFFERED = "offered"
    PROBING = "probing"
    DIRECT = "direct"
    FAILED = "failed"


@dataclass
class Attempt:
    """One punch attempt towards one peer."""

    attempt: bytes
    started: float
    state: State = State.OFFERED
    remote: tuple[Endpoint, ...] = ()
    probing_since: float | None = None
    next_probe: float = 0.0
    probes_sent: int = 0
    finished: float | None = None
    confirmations_sent: int = 0

    @classmethod
    def offer(cls, now: float, rng: RandomSource | None = None) -> Attempt:
        return cls((rng or system_random()).randbytes(ATTEMPT_ID_LEN), now)

    def start_probing(self, remote: tuple[Endpoint, ...], now: float) -> None:
        self.remote = remote
        if self.state is not State.OFFERED:
            return
        self.state = State.PROBING
        self.probing_since = now
        self.next_probe = now

    def due_probes(self, now: float) -> list[Endpoint]:
        """Candidates to probe now (all of them, every PROBE_INTERVAL_S)."""
        if self.state is not State.PROBING or now < self.next_probe:
            return []
        self.next_probe = now + PROBE_INTERVAL_S
        self.probes_sent += len(self.remote)
        return list(self.remote)

    def confirmation_due(self, now: float) -> bool:
        """Whether to probe the direct endpoint once more (see CONFIRMATION_PROBES)."""
        if self.state is not State.DIRECT or self.confirmations_sent >= CONFIRMATION_PROBES or now < self.next_probe:
            return False
        self.confirmations_sent += 1
        self.next_probe = now + PROBE_INTERVAL_S
        return True

    def check(self, now: float, *, direct: bool) -> State:
        """Advance on the clock and on whether the transport now has a direct path."""
        if self.state in (State.DIRECT, State.FAILED):
            return self.state
        if direct:
            self.state, self.finished, self.next_probe = State.DIRECT, now, now
        elif (self.state is State.OFFERED and now - self.started >= ANSWER_TIMEOUT_S) or (
            self.probing_since is not None and now - self.probing_since >= ATTEMPT_TIMEOUT_S
        ):
            self.state, self.finished = State.FAILED, now
        return self.state


@dataclass
class PeerPunching:
    """Punching history towards one peer: the current attempt and the back-off."""

    current: Attempt | None = None
    failures: int = 0
    not_before: float = 0.0
    hopeless: bool = False
    remote_behaviour: tuple[NatMapping, NatFiltering] = field(
        default_factory=lambda: (NatMapping.UNKNOWN, NatFiltering.UNKNOWN)
    )

    def may_start(self, now: float) -> bool:
        busy = self.current is not None and self.current.state in (State.OFFERED, State.PROBING)
        return not busy and not self.hopeless and now >= self.not_before

    def record_failure(self, now: float) -> None:
        self.failures += 1
        self.not_before = now + min(RETRY_MAX_S, RETRY_MIN_S * 2 ** (self.failures - 1))

    def record_success(self) -> None:
        self.failures = 0
