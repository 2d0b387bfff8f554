"""Where protocol cores draw randomness: one small protocol, OS-backed in production, seeded in tests.

Every sans-IO core (transport sessions, the Noise handshake, cookies, SWIM, NAT traversal,
ledger transactions) takes a :class:`RandomSource` from its caller instead of calling
``secrets`` or ``nacl.utils.random`` itself, so a run under virtual time replays bit for bit
from a seed. The protocol is the subset of :class:`random.Random` the cores use, so
``random.SystemRandom()`` (``os.urandom`` underneath: fit for keys and nonces) is the
production source and ``random.Random(seed)`` the deterministic one. Touches nothing.
"""

from __future__ import annotations

import random
from collections.abc import MutableSequence, Sequence
from typing import Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


@runtime_checkable
class RandomSource(Protocol):
    """Random bytes, integers and choices (the methods of :class:`random.Random` the cores call)."""

    def randbytes(self, n: int) -> bytes:
        """``n`` random bytes (keys, nonces, transaction ids)."""

    def getrandbits(self, k: int) -> int:
        """A random integer of ``k`` bits."""

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        """A random integer from ``range(start, stop, step)``."""

    def randint(self, a: int, b: int) -> int:
        """A random integer in ``[a, b]``."""

    def random(self) -> float:
        """A random float in ``[0, 1)``."""

    def choice(self, seq: Sequence[T]) -> T:
        """One element of a non-empty sequence."""

    def shuffle(self, x: MutableSequence[T]) -> None:
        """Shuffle ``x`` in place."""

    def sample(self, population: Sequence[T], k: int) -> list[T]:
        """``k`` distinct elements of ``population``."""


def system_random() -> RandomSource:
    """The production source: the operating system's CSPRNG (``os.urandom``)."""
    return random.SystemRandom()


def seeded_random(seed: int | str | bytes) -> RandomSource:
    """A deterministic source for tests and simulation: the same seed gives the same draws.

    Never use it for keys that protect real traffic.
    """
    return random.Random(seed)


def child_random(parent: RandomSource, label: str) -> RandomSource:
    """A source derived from ``parent`` for one component: seeded from it when it is seeded, else the OS.

    Lets a host hand each core its own stream without the cores' draws interleaving, which keeps a
    seeded run reproducible when one core draws more than before.
    """
    if isinstance(parent, random.SystemRandom):
        return random.SystemRandom()
    return random.Random(f"{label}:{parent.getrandbits(64)}")
