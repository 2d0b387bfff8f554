"""Token buckets: the one rate-limiting primitive the relay uses. Pure; touches nothing."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """Allows ``rate`` units per second on average, bursts up to ``burst`` units."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    updated: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def allow(self, cost: float, now: float) -> bool:
        """Take ``cost`` units if available at ``now``; return whether they were taken."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True
