"""A sliding replay window over 64-bit packet counters (RFC 6479 in spirit, one big int).

Pure; touches nothing.
"""

from __future__ import annotations

#: Counters this far behind the newest one are still accepted once; the issue asks for at least 2048.
WINDOW_BITS = 4096
_MASK = (1 << WINDOW_BITS) - 1


class ReplayWindow:
    """Remembers which of the last :data:`WINDOW_BITS` counters were seen."""

    __slots__ = ("bits", "top")

    def __init__(self) -> None:
        self.top = -1  # highest counter accepted so far
        self.bits = 0  # bit i set: counter (top - i) was accepted

    def fresh(self, counter: int) -> bool:
        """True when ``counter`` was not seen and is not too old (check before decrypting)."""
        if counter > self.top:
            return True
        behind = self.top - counter
        return behind < WINDOW_BITS and not (self.bits >> behind) & 1

    def accept(self, counter: int) -> bool:
        """Record ``counter`` (after it authenticated); True when it is the newest so far."""
        if counter > self.top:
            shift = counter - self.top
            self.bits = ((self.bits << shift) | 1) & _MASK if shift < WINDOW_BITS else 1
            self.top = counter
            return True
        self.bits |= 1 << (self.top - counter)
        return False
